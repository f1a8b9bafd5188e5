"""A device's certificate signing request (``csr``), checked before anything is written.

The device API of api-version 2025-07-01-preview carries a PKCS#10 request as base64 of its DER
bytes. Every rule here is a reason to refuse the register call with a 400 (``CsrRejected``)
rather than to issue something the device did not mean or the fleet must not trust: a request
that does not parse, whose self-signature fails (the device does not hold the key), that names
another device, that uses a key brokers may refuse (or an RSA exponent other than 65537), or that asks for CA
rights.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from provisiond.errors import InvalidInput

__all__ = ["MAX_CSR_BYTES", "CertificateRequest", "CsrRejected", "check_csr"]

MAX_CSR_BYTES = 8 * 1024  # IoT Hub's own CSR limit; DPS publishes none
_MAX_TEXT = 4 * ((MAX_CSR_BYTES + 2) // 3)  # the base64 text of the largest allowed request
_CURVES = {"secp256r1", "secp384r1"}
_RSA_BITS = (2048, 4096)
_RSA_EXPONENT = 65537  # small exponents (e=3) invite signature forgeries on lax verifiers


class CsrRejected(InvalidInput):
    """The ``csr`` cannot be signed: the message says which rule it broke."""


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """A request that passed every check: the key to certify, for this registration id."""

    registration_id: str
    csr: x509.CertificateSigningRequest


def check_csr(text: object, registration_id: str) -> CertificateRequest:
    """The request in ``text`` (base64 DER PKCS#10) if it may be signed for ``registration_id``."""
    der = _der(text)
    try:
        csr = x509.load_der_x509_csr(der)
    except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError (not v1)
        raise CsrRejected(f"csr is not a DER PKCS#10 certificate signing request: {exc}") from None
    try:
        valid = csr.is_signature_valid
    except (UnsupportedAlgorithm, ValueError):
        valid = False
    if not valid:
        raise CsrRejected("the csr's self-signature does not verify (it must be signed with its own key)")
    _check_subject(csr, registration_id)
    _check_key(csr)
    _check_no_ca_rights(csr)
    return CertificateRequest(registration_id, csr)


def _der(text: object) -> bytes:
    if not isinstance(text, str) or not text:
        raise CsrRejected("csr must be a non-empty string: base64 of the DER request")
    if "-----BEGIN" in text:
        raise CsrRejected("csr must be base64 of the DER request, without PEM armour")
    if len(text) > _MAX_TEXT:
        raise CsrRejected(f"csr is larger than {MAX_CSR_BYTES} bytes")
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CsrRejected("csr is not valid base64") from None
    if len(der) > MAX_CSR_BYTES:
        raise CsrRejected(f"csr is larger than {MAX_CSR_BYTES} bytes")
    return der


def _check_subject(csr: x509.CertificateSigningRequest, registration_id: str) -> None:
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or names[0].value != registration_id:
        shown = ", ".join(repr(n.value) for n in names) or "none"
        raise CsrRejected(
            f"the csr's subject common name must equal the registration id {registration_id!r} "
            f"(it has {shown})"
        )


def _check_key(csr: x509.CertificateSigningRequest) -> None:
    try:
        key = csr.public_key()
    except (UnsupportedAlgorithm, ValueError):
        raise CsrRejected("the csr's public key is of an unsupported type") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVES:
            raise CsrRejected(f"the csr's EC key is on {key.curve.name}; use P-256 or P-384")
        return
    if isinstance(key, rsa.RSAPublicKey):
        if not _RSA_BITS[0] <= key.key_size <= _RSA_BITS[1]:
            raise CsrRejected(f"the csr's RSA key has {key.key_size} bits; use 2048 to 4096")
        exponent = key.public_numbers().e
        if exponent != _RSA_EXPONENT:
            raise CsrRejected(f"the csr's RSA key has the public exponent {exponent}; use 65537")
        return
    raise CsrRejected("the csr's key must be EC (P-256 or P-384) or RSA (2048 to 4096 bits)")


def _check_no_ca_rights(csr: x509.CertificateSigningRequest) -> None:
    try:
        extensions = csr.extensions
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise CsrRejected(f"the csr's requested extensions do not parse: {exc}") from None
    for ext in extensions:
        value = ext.value
        if isinstance(value, x509.BasicConstraints) and value.ca:
            raise CsrRejected("the csr asks for a CA certificate (basicConstraints CA:TRUE)")
        if isinstance(value, x509.KeyUsage) and (value.key_cert_sign or value.crl_sign):
            raise CsrRejected(
                "the csr asks for keyCertSign or cRLSign: a device certificate signs no certificates"
            )
