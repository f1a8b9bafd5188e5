"""Throwaway certificates and chains for tests (devices, intermediates, CAs, broken ones)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Issued", "issue", "self_signed"]


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def write(self, directory: Path, name: str, *chain: Issued) -> tuple[Path, Path]:
        """Write ``name.pem`` (this certificate, then ``chain``) and ``name.key``; return both paths."""
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        cert_path.write_text(self.pem + "".join(c.pem for c in chain))
        key_path.write_text(self.key_pem)
        return cert_path, key_path


def issue(
    common_name: str,
    issuer: Issued | None = None,
    *,
    ca: bool = False,
    days: int = 30,
    expired: bool = False,
    key: ec.EllipticCurvePrivateKey | None = None,
    client_auth: bool = True,
    path_length: int | None = None,
    crl_sign: bool | None = None,
) -> Issued:
    """A certificate for ``common_name`` signed by ``issuer`` (self-signed when ``None``).

    Device (non-CA) certificates carry no subjectAltName, like most real ones. A CA has
    keyCertSign and cRLSign unless ``crl_sign=False``, and ``path_length`` as its pathLen.
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    start, end = (
        (now - timedelta(days=60), now - timedelta(days=1))
        if expired
        else (now - timedelta(days=1), now + timedelta(days=days))
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca if crl_sign is None else crl_sign,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if not ca and client_auth:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return Issued(builder.sign((issuer or Issued(None, key)).key, hashes.SHA256()), key)  # type: ignore[arg-type]


def self_signed(common_name: str, *, days: int = 30) -> x509.Certificate:
    return issue(common_name, days=days).cert
