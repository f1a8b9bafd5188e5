"""The activation blob: an HMAC key only the TPM holding a given EK can import and use.

DPS answers a TPM device's first register call (and its ``assigned`` result) with
``authenticationKey``: a key for the device, wrapped so that only its TPM can take it in. The
server builds it in software, with TPM 2.0's own recipes (Library Part 1, "Credential
Protection" and "Duplication"), from ``cryptography``'s primitives (RSA-OAEP, AES-CFB, HMAC):

1. The key becomes an HMAC-SHA256 *ID key* (a keyed-hash object), wrapped for the SRK by
   Duplication with an inner AES-128 wrapper ``W``: the TPM imports it under its SRK.
2. ``W`` is sealed by MakeCredential to the EK, bound to the SRK's Name: only ActivateCredential
   on that EK (with that SRK) gives it back, so the blob is useless to any other TPM.

Blob layout (``docs/tpm.md``), concatenated: TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET (to the
EK), TPM2B_PRIVATE, TPM2B_ENCRYPTED_SECRET (to the SRK), TPM2B_PUBLIC of the ID key, and an empty
``u16`` trailer the C, C# and Node parsers all read. Hand-written for the reason
``domain/tpm_public.py`` gives; no I/O here.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # cryptography before CFB moved among the "decrepit" (legacy) primitives
    from cryptography.hazmat.primitives.ciphers.modes import CFB

from provisiond.domain.tpm_public import ALG_KEYEDHASH, ALG_SHA256, RsaPublic, object_name

__all__ = ["ActivationBlob", "activation_blob", "id_key_public", "kdf_a", "new_device_key"]

_HMAC_SCHEME = 0x0005
_USER_WITH_AUTH = 1 << 6
_SIGN = 1 << 18
_ZERO_IV = bytes(16)


@dataclass(frozen=True, slots=True)
class ActivationBlob:
    """The marshaled parts, in wire order; ``bytes(blob)`` is what the device is sent."""

    credential: bytes
    credential_secret: bytes
    duplicate: bytes
    import_seed: bytes
    id_key_public: bytes

    def __bytes__(self) -> bytes:
        return (
            self.credential
            + self.credential_secret
            + self.duplicate
            + self.import_seed
            + self.id_key_public
            + b"\x00\x00"
        )


def new_device_key() -> bytes:
    """A fresh 32-byte HMAC key (SHA-256's block-friendly size, the one the SDKs sign with)."""
    return os.urandom(32)


def _b2(data: bytes) -> bytes:
    """A TPM2B: a big-endian u16 size, then the bytes."""
    return struct.pack(">H", len(data)) + data


def kdf_a(key: bytes, label: bytes, context_u: bytes, context_v: bytes, bits: int) -> bytes:
    """TPM 2.0 KDFa with HMAC-SHA256 (SP 800-108 counter mode, as Part 1 defines it)."""
    out = b""
    counter = 0
    while len(out) * 8 < bits:
        counter += 1
        data = struct.pack(">I", counter) + label + b"\x00" + context_u + context_v + struct.pack(">I", bits)
        out += hmac.new(key, data, hashlib.sha256).digest()
    return out[: bits // 8]


def _aes_cfb(key: bytes, data: bytes) -> bytes:
    """AES-CFB with a zero IV: the TPM's parameter and credential encryption."""
    encryptor = Cipher(algorithms.AES(key), CFB(_ZERO_IV)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def _oaep(key: RsaPublic, seed: bytes, label: bytes) -> bytes:
    """The seed encrypted to an RSA storage key: OAEP with SHA-256 and the TPM's label."""
    pad = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=label)
    return key.public_key().encrypt(seed, pad)


def id_key_public(seed_value: bytes, key: bytes) -> bytes:
    """The ID key's TPMT_PUBLIC: an HMAC-SHA256 keyed-hash object that may sign.

    ``fixedTPM`` and ``fixedParent`` stay clear (TPM2_Import refuses them); ``unique`` binds the
    public area to the key: SHA-256(seedValue ‖ key).
    """
    return (
        struct.pack(">HHI", ALG_KEYEDHASH, ALG_SHA256, _USER_WITH_AUTH | _SIGN)
        + _b2(b"")
        + struct.pack(">HH", _HMAC_SCHEME, ALG_SHA256)
        + _b2(hashlib.sha256(seed_value + key).digest())
    )


def _make_credential(ek: RsaPublic, credential: bytes, object_name: bytes) -> tuple[bytes, bytes]:
    """TPM2_MakeCredential in software: (TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET)."""
    seed = os.urandom(32)
    secret = _oaep(ek, seed, b"IDENTITY\x00")
    sym = kdf_a(seed, b"STORAGE", object_name, b"", 128)
    enc_identity = _aes_cfb(sym, _b2(credential))
    hmac_key = kdf_a(seed, b"INTEGRITY", b"", b"", 256)
    integrity = hmac.new(hmac_key, enc_identity + object_name, hashlib.sha256).digest()
    return _b2(_b2(integrity) + enc_identity), _b2(secret)


def _duplicate(
    srk: RsaPublic, public: bytes, seed_value: bytes, key: bytes, wrapper: bytes
) -> tuple[bytes, bytes]:
    """Duplication of the ID key to the SRK with an inner wrapper: (TPM2B_PRIVATE, seed)."""
    name = object_name(public)
    sensitive = _b2(struct.pack(">H", ALG_KEYEDHASH) + _b2(b"") + _b2(seed_value) + _b2(key))
    inner = _aes_cfb(wrapper, _b2(hashlib.sha256(sensitive + name).digest()) + sensitive)
    seed = os.urandom(32)
    secret = _oaep(srk, seed, b"DUPLICATE\x00")
    dup_sensitive = _aes_cfb(kdf_a(seed, b"STORAGE", name, b"", 128), inner)
    hmac_key = kdf_a(seed, b"INTEGRITY", b"", b"", 256)
    outer = hmac.new(hmac_key, dup_sensitive + name, hashlib.sha256).digest()
    return _b2(_b2(outer) + dup_sensitive), _b2(secret)


def activation_blob(ek: RsaPublic, srk: RsaPublic, key: bytes) -> ActivationBlob:
    """``key`` wrapped for the TPM with this EK and SRK (MakeCredential + Duplication).

    The credential is bound to Name(SRK) because every SDK activates it with the SRK as the
    object (``ActivateCredential(SRK, EK)``).
    """
    seed_value = os.urandom(32)
    wrapper = os.urandom(16)
    public = id_key_public(seed_value, key)
    credential, credential_secret = _make_credential(ek, wrapper, srk.name)
    duplicate, import_seed = _duplicate(srk, public, seed_value, key, wrapper)
    return ActivationBlob(credential, credential_secret, duplicate, import_seed, _b2(public))
