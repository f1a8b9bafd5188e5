"""X.509 certificates as enrollments carry them: parsing the accepted encodings and describing them.

DPS clients send certificates three ways (PEM text, base64 of the PEM text as the C SDK does,
or base64 DER), so all three are accepted here. The ``info`` block DPS returns is always computed
from the certificate itself, never taken from the request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from provisiond.errors import InvalidInput

__all__ = ["CertificateInfo", "EnrolledCertificate", "parse_certificate"]


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What DPS reports about an enrolled certificate."""

    subject_name: str
    sha1_thumbprint: str
    sha256_thumbprint: str
    issuer_name: str
    not_before: datetime
    not_after: datetime
    serial_number: str
    version: int


@dataclass(frozen=True, slots=True)
class EnrolledCertificate:
    """A certificate kept in DER form, with its computed description."""

    der: bytes
    info: CertificateInfo


def _load(text: str) -> x509.Certificate:
    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            return x509.load_pem_x509_certificate(stripped.encode())
        raw = base64.b64decode("".join(stripped.split()), validate=True)
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput("certificate is not PEM, base64 PEM or base64 DER X.509") from exc


def describe(cert: x509.Certificate) -> CertificateInfo:
    """Compute the DPS ``info`` block of a parsed certificate."""
    der = cert.public_bytes(Encoding.DER)
    return CertificateInfo(
        subject_name=cert.subject.rfc4514_string(),
        sha1_thumbprint=hashlib.sha1(der, usedforsecurity=False).hexdigest().upper(),
        sha256_thumbprint=hashlib.sha256(der).hexdigest().upper(),
        issuer_name=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial_number=format(cert.serial_number, "X"),
        version=cert.version.value + 1,
    )


def parse_certificate(text: object) -> EnrolledCertificate:
    """Parse a certificate in any accepted encoding into DER plus its description."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("certificate must be a non-empty string")
    cert = _load(text)
    return EnrolledCertificate(der=cert.public_bytes(Encoding.DER), info=describe(cert))
