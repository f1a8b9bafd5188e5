"""Certificate issuance helpers for tests: CSRs of every kind, chain checks, a real mutual-TLS peer."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store

from tests.support.pki import issue

__all__ = ["Csr", "handshake", "make_csr", "tls_server_context", "verify_chain"]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Csr:
    """A CSR as a device sends it (base64 DER) and the key it holds."""

    b64: str
    key: PrivateKey

    def write_identity(self, directory: Path, leaf_b64: str, name: str = "device") -> tuple[Path, Path]:
        """The issued leaf (PEM) and this key (PEM), as files a TLS client loads."""
        leaf = x509.load_der_x509_certificate(base64.b64decode(leaf_b64))
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert_path, key_path


def make_csr(
    common_name: str | None,
    *,
    key: PrivateKey | None = None,
    ca: bool = False,
    cert_sign: bool = False,
    extra_cn: str | None = None,
) -> Csr:
    """A CSR for ``common_name`` (none when ``None``); ``ca``/``cert_sign`` ask for CA rights."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    if extra_cn:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, extra_cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    if cert_sign:
        usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    csr = builder.sign(key, hashes.SHA256())
    return Csr(base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode(), key)


def verify_chain(chain_b64: list[str], registration_id: str) -> list[x509.Certificate]:
    """Check an ``issuedCertificateChain`` with ``cryptography``'s verifier, trusting only its last
    element (the policy's root); returns the certificates, leaf first."""
    certs = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in chain_b64]
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store([certs[-1]]))
        .time(datetime.now(UTC))
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
        .build_client_verifier()
    )
    verified = verifier.verify(certs[0], certs[1:-1])
    assert verified.chain[-1] == certs[-1]
    cn = certs[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == registration_id
    return certs


def tls_server_context(
    directory: Path, chain_file: Path, crl_file: Path | None, *, whole_chain: bool = True
) -> ssl.SSLContext:
    """A TLS server that requires a client certificate and trusts only ``chain_file``, and checks
    ``crl_file`` when given: for every CA of the chain (``whole_chain``, as nginx's ``ssl_crl``
    does) or for the leaf only (as Mosquitto's ``crlfile`` does)."""
    server = issue("localhost")
    cert, key = server.write(directory, "tls-server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(chain_file))
    if crl_file is not None:
        context.load_verify_locations(cafile=str(crl_file))
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN if whole_chain else ssl.VERIFY_CRL_CHECK_LEAF
    return context


def handshake(server_context: ssl.SSLContext, cert: Path, key: Path) -> str | None:
    """One mutual-TLS handshake of a client presenting ``cert`` (only its leaf) against a server
    with ``server_context``; ``None`` when it succeeds, else the server's verification error."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    outcome: list[str | None] = []

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")
                outcome.append(None)
        except ssl.SSLError as exc:
            outcome.append(exc.verify_message if isinstance(exc, ssl.SSLCertVerificationError) else str(exc))
        finally:
            conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE  # the test is about the server checking the device
    client.load_cert_chain(cert, key)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, client.wrap_socket(raw) as tls:
            tls.recv(2)
    except (ssl.SSLError, OSError):
        pass  # the server refused: its side says why
    thread.join(10)
    listener.close()
    assert outcome, "the TLS server saw no handshake"
    return outcome[0]
