"""Issuing CAs: generating or importing one, signing device certificates and CRLs.

Everything here is ``cryptography`` and no I/O: the service hands in the CA's key (opened from
its sealed column) and stores what comes out. A generated policy gets a root CA and an issuing CA
under it; the root's private key signs the issuing CA and is then dropped, never stored, so the
only key that can sign for the policy is the issuing CA's, and the root cannot be misused later.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisiond.domain.certificate_requests import CertificateRequest
from provisiond.errors import InvalidInput, ProvisiondError

__all__ = [
    "CaKey",
    "CannotIssue",
    "IssuingCa",
    "KeyType",
    "build_crl",
    "chain_pem",
    "crl_distribution_points",
    "generate_ca",
    "import_ca",
    "issue_leaf",
    "key_type_of",
    "load_key",
    "private_key_pem",
]

CaKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_ROOT_YEARS, _ISSUING_YEARS = 20, 10
# Certificates and CRLs start 5 minutes in the past: a device or broker whose clock runs a little
# slow would otherwise refuse a fresh one as "not yet valid".
_BACKDATE = timedelta(minutes=5)


class CannotIssue(ProvisiondError):
    """The policy's CA cannot sign now (it expired, or is not valid yet): the operator must
    replace the policy. Not the device's fault, so no 400; not a bug either, so no 500."""


class KeyType(StrEnum):
    """The key of a policy's CAs (``--key-type``); P-384 is what Azure's preview issues with."""

    EC_P384 = "ec-p384"
    EC_P256 = "ec-p256"
    RSA_2048 = "rsa-2048"


@dataclass(frozen=True, slots=True)
class IssuingCa:
    """The CA a policy signs with: its key, its certificate, and every CA above it to the root."""

    key: CaKey
    chain: tuple[x509.Certificate, ...]  # issuing CA first, root last
    # CRLs of the CAs above the issuing CA (DER), signed once at creation: verifiers that check
    # every CA of the chain (nginx's ssl_crl) need one per CA, and a generated root's key is gone.
    upper_crls: tuple[bytes, ...] = ()

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]


def _new_key(key_type: KeyType) -> CaKey:
    if key_type is KeyType.RSA_2048:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP384R1() if key_type is KeyType.EC_P384 else ec.SECP256R1())


def _hash(key: CaKey) -> hashes.SHA256 | hashes.SHA384:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return hashes.SHA384()
    return hashes.SHA256()


def key_type_of(key: CaKey) -> KeyType:
    """The policy key type of an operator's CA key; other keys are refused."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise InvalidInput(f"the CA's RSA key has {key.key_size} bits; at least 2048 are needed")
        return KeyType.RSA_2048
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in ("secp384r1", "secp256r1"):
        return KeyType.EC_P384 if key.curve.name == "secp384r1" else KeyType.EC_P256
    raise InvalidInput("the CA key must be EC P-256, EC P-384 or RSA (2048 bits or more)")


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_cert(
    name: str,
    key: CaKey,
    issuer: x509.Certificate | None,
    issuer_key: CaKey,
    path_length: int,
    years: int,
    now: datetime,
) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "provisiond"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    return builder.sign(issuer_key, _hash(issuer_key))


def generate_ca(policy_name: str, key_type: KeyType, now: datetime) -> IssuingCa:
    """A new root CA and an issuing CA under it; the root's key is not kept."""
    root_key = _new_key(key_type)
    root = _ca_cert(f"provisiond {policy_name} root CA", root_key, None, root_key, 1, _ROOT_YEARS, now)
    key = _new_key(key_type)
    issuing = _ca_cert(f"provisiond {policy_name} issuing CA", key, root, root_key, 0, _ISSUING_YEARS, now)
    # The root's CRL, empty, valid as long as the root: nothing the root signed can ever be
    # revoked (its key is dropped now); retiring the issuing CA means deleting the policy.
    root_ca = IssuingCa(root_key, (root,))
    root_crl = build_crl(root_ca, (), 1, now.replace(microsecond=0), root.not_valid_after_utc)
    return IssuingCa(key, (issuing, root), (root_crl.public_bytes(serialization.Encoding.DER),))


def load_key(pem: bytes) -> CaKey:
    """A CA private key from unencrypted PEM (an operator's file, or the opened sealed column)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"the CA key is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InvalidInput("the CA key must be EC or RSA")
    key_type_of(key)
    return key


def private_key_pem(key: CaKey) -> str:
    """The key as PKCS#8 PEM text, for sealing (never written anywhere in the clear)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def import_ca(cert_pem: bytes, key_pem: bytes, now: datetime, validity_days: int) -> IssuingCa:
    """The operator's issuing CA: ``cert_pem`` holds it first, then every CA above it to the root.

    The whole chain is needed so that ``issuingChainPem`` lets a broker verify a device that
    presents only its leaf. Every CA must be valid now and for ``validity_days`` more (an expired
    CA would fail every registration later), be a CA whose path length allows the CAs under it,
    and the issuing CA must have keyCertSign and cRLSign (it signs the leaves and the CRL).
    """
    try:
        chain = tuple(x509.load_pem_x509_certificates(cert_pem))
    except ValueError as exc:
        raise InvalidInput(f"the CA certificate file holds no PEM certificates: {exc}") from None
    key = load_key(key_pem)
    if chain[0].public_key() != key.public_key():
        raise InvalidInput("the CA key does not belong to the first certificate of the CA file")
    for below, cert in enumerate(chain):  # the CAs before it in the list are the ones under it
        _check_ca(cert, below, issuing=below == 0)
        _check_dates(cert, now, validity_days)
    for child, parent in itertools.pairwise(chain):
        _check_issued_by(child, parent)
    root = chain[-1]
    if root.issuer != root.subject:
        raise InvalidInput(
            "the CA file must hold the issuing CA and every CA above it, up to and including the root"
        )
    _check_issued_by(root, root)
    return IssuingCa(key, chain)


def _check_ca(cert: x509.Certificate, below: int, *, issuing: bool) -> None:
    """``cert`` is a CA whose pathLen allows the ``below`` CAs under it in the chain."""
    name = cert.subject.rfc4514_string()
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise InvalidInput(f"{name} is not a CA certificate (basicConstraints CA:TRUE)")
    if constraints.path_length is not None and constraints.path_length < below:
        raise InvalidInput(
            f"{name} has pathLen {constraints.path_length}, but {below} CA(s) are under it in the chain"
        )
    try:
        usage: x509.KeyUsage | None = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if issuing and (usage is None or not usage.key_cert_sign or not usage.crl_sign):
        raise InvalidInput(
            f"{name} must have keyUsage keyCertSign and cRLSign: it signs the device certificates and the CRL"
        )
    if usage is not None and not usage.key_cert_sign:
        raise InvalidInput(f"{name} has a keyUsage without keyCertSign: it cannot sign CA certificates")


def _check_dates(cert: x509.Certificate, now: datetime, validity_days: int) -> None:
    name = cert.subject.rfc4514_string()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise InvalidInput(
            f"{name} is not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d %H:%M} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC)"
        )
    if cert.not_valid_after_utc < now + timedelta(days=validity_days):
        raise InvalidInput(
            f"{name} expires {cert.not_valid_after_utc:%Y-%m-%d}, within the policy's {validity_days}-day "
            "certificate validity: use a CA valid for longer (or a shorter --validity-days)"
        )


def _check_issued_by(child: x509.Certificate, parent: x509.Certificate) -> None:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        raise InvalidInput(
            f"{child.subject.rfc4514_string()} is not signed by {parent.subject.rfc4514_string()}: "
            "list the CAs from the issuing CA up to the root, in order"
        ) from None


def chain_pem(chain: Sequence[x509.Certificate]) -> str:
    """``issuingChainPem``: the PEM text of the issuing CA and every CA above it, root last."""
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)


def issue_leaf(
    ca: IssuingCa, request: CertificateRequest, validity_days: int, crl_url: str | None, now: datetime
) -> x509.Certificate:
    """A device certificate: CN = registration id, clientAuth, the policy's validity, a random
    serial, key identifiers, and the CRL distribution point when the policy has one."""
    issuer = ca.certificate
    start = now - _BACKDATE
    ca_end = min(c.not_valid_after_utc for c in ca.chain)
    if not issuer.not_valid_before_utc <= now < ca_end:
        raise CannotIssue(
            f"the issuing chain of this policy is not valid now (the CA {issuer.subject.rfc4514_string()} "
            f"is valid from {issuer.not_valid_before_utc:%Y-%m-%d}; the chain until {ca_end:%Y-%m-%d}): "
            "the operator must replace the credential policy"
        )
    end = min(start + timedelta(days=validity_days), ca_end)
    public_key = request.csr.public_key()
    rsa_key = isinstance(public_key, rsa.RSAPublicKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, request.registration_id)]))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=rsa_key,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(issuer), critical=False)
    )
    if crl_url:
        builder = builder.add_extension(crl_distribution_points(crl_url), critical=False)
    return builder.sign(ca.key, _hash(ca.key))


def crl_distribution_points(crl_url: str) -> x509.CRLDistributionPoints:
    """The CRL Distribution Point extension for ``crl_url``; built when the policy is created too,
    so that a URL X.509 cannot carry (non-ASCII: an IRI, not a URI) is refused there, not at
    every registration."""
    try:
        uri = x509.UniformResourceIdentifier(crl_url)
    except ValueError:
        raise InvalidInput(
            f"--crl-url {crl_url!r} is not an ASCII URI (encode an international host name as "
            "its xn-- form, other characters with %-escapes)"
        ) from None
    return x509.CRLDistributionPoints([x509.DistributionPoint([uri], None, None, None)])


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def build_crl(
    ca: IssuingCa, revoked: Sequence[tuple[int, datetime]], number: int, now: datetime, next_update: datetime
) -> x509.CertificateRevocationList:
    """The policy's CRL: every revoked serial with its revocation time, numbered ``number``.

    Its thisUpdate is backdated like a leaf's notBefore: a broker with a slow clock refuses a CRL
    from its future, and then every device of the policy with it."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now - _BACKDATE)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(_authority_key_id(ca.certificate), critical=False)
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(ca.key, _hash(ca.key))
