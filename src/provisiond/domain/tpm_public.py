"""TPM 2.0 public areas: the endorsement key (EK) and storage root key (SRK) a device sends.

A TPM device identifies itself by its EK and names its SRK, both as base64 of a marshaled
``TPM2B_PUBLIC`` (TPM 2.0 Library Part 2, big-endian). This module reads exactly the shapes the
DPS flow supports: RSA-2048 with SHA-256 as name algorithm and AES-128-CFB as the symmetric
algorithm of a storage key (the EK with the TCG default template the SDKs create, and an SRK
able to receive an imported key). Anything else is refused with ``InvalidInput`` naming why,
because the activation blob (``domain/tpm_activation.py``) can only be built for these.

Hand-written on purpose: no maintained pure-Python TPM library exists that a wheel could depend
on (tpm2-pytss needs the system's libtss2 and has no wheel), and these few fields are all the
flow reads (docs/architecture.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from provisiond.errors import InvalidInput

__all__ = [
    "ALG_AES",
    "ALG_CFB",
    "ALG_KEYEDHASH",
    "ALG_NULL",
    "ALG_RSA",
    "ALG_SHA256",
    "EK_ATTRIBUTES",
    "EK_AUTH_POLICY",
    "RsaPublic",
    "check_endorsement_key",
    "decode_public_b64",
    "object_name",
    "parse_public",
    "registration_id_of",
]

ALG_RSA = 0x0001
ALG_KEYEDHASH = 0x0008
ALG_SHA256 = 0x000B
ALG_AES = 0x0006
ALG_CFB = 0x0043
ALG_NULL = 0x0010

# TPMA_OBJECT bits.
_FIXED_TPM = 1 << 1
_FIXED_PARENT = 1 << 4
_SENSITIVE_DATA_ORIGIN = 1 << 5
_ADMIN_WITH_POLICY = 1 << 7
_RESTRICTED = 1 << 16
_DECRYPT = 1 << 17

# The TCG EK Credential Profile's default RSA template (template L-1), which the C, C# and Node
# SDKs all create: its attributes and its PolicySecret(TPM_RH_ENDORSEMENT) policy digest.
EK_ATTRIBUTES = (
    _FIXED_TPM | _FIXED_PARENT | _SENSITIVE_DATA_ORIGIN | _ADMIN_WITH_POLICY | _RESTRICTED | _DECRYPT
)
EK_AUTH_POLICY = bytes.fromhex("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa")

_DEFAULT_EXPONENT = 65537  # TPM writes 0 for it


@dataclass(frozen=True, slots=True)
class RsaPublic:
    """An RSA storage key's public area: what the flow reads from an EK or an SRK.

    ``marshaled`` is the TPMT_PUBLIC exactly as received: a key's Name is the hash of those bytes,
    and the device's TPM computes it from its own copy, so it is never re-encoded.
    """

    attributes: int
    auth_policy: bytes
    exponent: int
    modulus: bytes
    marshaled: bytes

    @property
    def name(self) -> bytes:
        """The key's TPM Name: the name algorithm's id, then the hash of its public area."""
        return object_name(self.marshaled)

    def public_key(self) -> rsa.RSAPublicKey:
        """The key as ``cryptography`` uses it, for RSA-OAEP."""
        n = int.from_bytes(self.modulus, "big")
        return rsa.RSAPublicNumbers(self.exponent, n).public_key()

    def same_key(self, other: RsaPublic) -> bool:
        """Whether two public areas describe the same key (what an enrollment compares).

        The decoded fields are compared, not the bytes: the exponent may be written as 0 or as
        65537, which are the same key.
        """
        return (
            self.modulus == other.modulus
            and self.exponent == other.exponent
            and self.attributes == other.attributes
            and self.auth_policy == other.auth_policy
        )


def object_name(tpmt_public: bytes) -> bytes:
    """Name(object) = ``00 0B`` (SHA-256) followed by SHA-256 of the marshaled TPMT_PUBLIC."""
    return struct.pack(">H", ALG_SHA256) + hashlib.sha256(tpmt_public).digest()


class _Reader:
    """Big-endian reads that raise ``InvalidInput`` instead of running past the end."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.at = 0
        self.what = what

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise InvalidInput(f"{self.what} is truncated")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def sized(self) -> bytes:
        return self.take(self.u16())


def parse_public(tpm2b: bytes, what: str) -> RsaPublic:
    """Read a marshaled TPM2B_PUBLIC of an RSA-2048 storage key (SHA-256, AES-128-CFB).

    ``what`` names the key in messages (``endorsementKey``, ``storageRootKey``).
    """
    outer = _Reader(tpm2b, what)
    area = outer.sized()
    if outer.at != len(tpm2b):
        raise InvalidInput(f"{what} has {len(tpm2b) - outer.at} bytes after its TPM2B_PUBLIC")
    r = _Reader(area, what)
    if r.u16() != ALG_RSA:
        raise InvalidInput(f"{what} is not an RSA key (only RSA-2048 TPM keys are supported)")
    if r.u16() != ALG_SHA256:
        raise InvalidInput(f"{what} does not use SHA-256 as its name algorithm")
    attributes = r.u32()
    auth_policy = r.sized()
    symmetric = r.u16()
    if symmetric != ALG_AES or r.u16() != 128 or r.u16() != ALG_CFB:
        raise InvalidInput(f"{what} is not a storage key with AES-128-CFB")
    scheme = r.u16()
    if scheme != ALG_NULL:
        r.u16()  # the scheme's hash algorithm: a storage key has none, but reading it is harmless
        raise InvalidInput(f"{what} has a signing scheme; a storage key has none")
    if r.u16() != 2048:
        raise InvalidInput(f"{what} is not a 2048-bit RSA key")
    exponent = r.u32() or _DEFAULT_EXPONENT
    modulus = r.sized()
    if len(modulus) != 256 or modulus[0] == 0:
        raise InvalidInput(f"{what} does not hold a 2048-bit modulus")
    # An RSA modulus is odd and its exponent odd and at least 3; anything else is no key, and
    # cryptography would refuse it only later, when the blob is built (a 500, not this 400).
    if not modulus[-1] & 1 or exponent < 3 or not exponent & 1:
        raise InvalidInput(f"{what} is not a valid RSA public key (modulus and exponent must be odd)")
    if r.at != len(area):
        raise InvalidInput(f"{what} has bytes after its public area")
    return RsaPublic(attributes, auth_policy, exponent, modulus, area)


def decode_public_b64(value: str, what: str) -> RsaPublic:
    """``parse_public`` of a base64 value, as enrollments and devices send keys."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{what} is not base64") from exc
    return parse_public(raw, what)


def check_endorsement_key(value: str) -> RsaPublic:
    """An enrollment's ``endorsementKey``: an RSA-2048 EK with the TCG default template.

    The attributes and the policy are what make it an EK: a restricted decryption key fixed to
    its TPM, usable only through the endorsement hierarchy's policy, which the device's
    ActivateCredential satisfies.
    """
    ek = decode_public_b64(value, "endorsementKey")
    if ek.attributes != EK_ATTRIBUTES:
        raise InvalidInput(
            f"endorsementKey has object attributes 0x{ek.attributes:08x}; the TCG default EK "
            f"template has 0x{EK_ATTRIBUTES:08x}"
        )
    if ek.auth_policy != EK_AUTH_POLICY:
        raise InvalidInput("endorsementKey does not have the TCG default EK policy")
    return ek


def registration_id_of(endorsement_key: str) -> str:
    """The registration id the SDKs derive from an EK when none is given.

    Lower-case base32 (RFC 4648, no padding) of SHA-256 over the EK bytes as sent (the marshaled
    TPM2B_PUBLIC): 52 characters. Operators use it to enroll such a device.
    """
    raw = base64.b64decode(endorsement_key, validate=True)
    digest = hashlib.sha256(raw).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()
