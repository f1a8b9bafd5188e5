"""TPM public areas and the activation blob, checked without a TPM.

That a real TPM takes the blob (ActivateCredential, Import, HMAC) is checked end to end with
swtpm in tests/e2e/test_tpm_tools.py; here: parsing, the refusals, the layout, and that the
wrapping can be undone with the seeds the server chose (the same recipes read backwards).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from provisiond.domain.tpm_activation import activation_blob, kdf_a
from provisiond.domain.tpm_public import (
    EK_ATTRIBUTES,
    check_endorsement_key,
    decode_public_b64,
    parse_public,
    registration_id_of,
)
from provisiond.errors import InvalidInput
from tests.support.tpm import SoftwareKeys, fake_ek, fake_srk, split_blob


def test_an_ek_with_the_default_template_is_read() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ek = check_endorsement_key(fake_ek(key))
    assert ek.attributes == EK_ATTRIBUTES
    assert int.from_bytes(ek.modulus, "big") == key.public_key().public_numbers().n
    assert ek.exponent == 65537  # written as 0 by the TPM
    assert ek.name[:2] == b"\x00\x0b" and ek.name[2:] == hashlib.sha256(ek.marshaled).digest()


def test_the_same_key_is_recognised_whatever_the_exponent_encoding() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raw = bytearray(base64.b64decode(fake_ek(key)))
    zero = check_endorsement_key(base64.b64encode(raw).decode())
    exponent_at = len(raw) - 2 - 256 - 4
    raw[exponent_at : exponent_at + 4] = struct.pack(">I", 65537)
    explicit = check_endorsement_key(base64.b64encode(raw).decode())
    assert zero.same_key(explicit)
    assert not zero.same_key(check_endorsement_key(fake_ek()))


@pytest.mark.parametrize(
    ("mutate", "said"),
    [
        (lambda raw: raw[:100], "truncated"),
        (lambda raw: raw + b"\x00", "after"),
        (lambda raw: raw[:2] + b"\x00\x23" + raw[4:], "not an RSA key"),  # ECC
        (lambda raw: raw[:4] + b"\x00\x04" + raw[6:], "SHA-256"),  # SHA-1 name algorithm
    ],
)
def test_public_areas_the_flow_cannot_use_are_refused(mutate: object, said: str) -> None:
    raw = base64.b64decode(fake_ek())
    with pytest.raises(InvalidInput, match=said):
        parse_public(mutate(raw), "endorsementKey")  # type: ignore[operator]


@pytest.mark.parametrize("exponent", [1, 2, 65536])
def test_an_exponent_no_rsa_key_has_is_refused_on_write_not_when_the_blob_is_built(exponent: int) -> None:
    raw = bytearray(base64.b64decode(fake_ek()))
    exponent_at = len(raw) - 2 - 256 - 4
    raw[exponent_at : exponent_at + 4] = struct.pack(">I", exponent)
    with pytest.raises(InvalidInput, match="not a valid RSA public key"):
        check_endorsement_key(base64.b64encode(raw).decode())


def test_an_even_modulus_is_refused() -> None:
    raw = bytearray(base64.b64decode(fake_srk()))
    raw[-1] &= 0xFE
    with pytest.raises(InvalidInput, match="not a valid RSA public key"):
        parse_public(bytes(raw), "storageRootKey")


def test_a_storage_root_key_is_not_accepted_as_an_ek() -> None:
    srk = fake_srk()
    decode_public_b64(srk, "storageRootKey")  # a fine SRK
    with pytest.raises(InvalidInput, match="attributes"):
        check_endorsement_key(srk)


def test_the_registration_id_is_lower_case_base32_of_the_ek_hash() -> None:
    ek = fake_ek()
    expected = base64.b32encode(hashlib.sha256(base64.b64decode(ek)).digest()).decode()
    rid = registration_id_of(ek)
    assert rid == expected.rstrip("=").lower() and len(rid) == 52


def test_kdf_a_is_counter_mode_hmac_with_label_context_and_length() -> None:
    key = b"k" * 32
    one = hmac.new(key, b"\x00\x00\x00\x01STORAGE\x00uv\x00\x00\x01\x00", hashlib.sha256).digest()
    two = hmac.new(key, b"\x00\x00\x00\x02STORAGE\x00uv\x00\x00\x01\x00", hashlib.sha256).digest()
    assert kdf_a(key, b"STORAGE", b"u", b"v", 256) == one
    assert kdf_a(key, b"STORAGE", b"u", b"v", 128) != one[:16]  # the length is part of the input
    assert len(kdf_a(key, b"STORAGE", b"u", b"v", 512)) == 64
    assert kdf_a(key, b"STORAGE", b"u", b"v", 512)[32:] != two  # bits=512 changes every block


def test_the_blob_has_the_layout_the_sdks_parse_and_opens_with_the_private_keys() -> None:
    """Undo both wrappings with the EK's and SRK's private keys, as the TPM would."""
    keys = SoftwareKeys()
    ek = check_endorsement_key(keys.ek)
    srk = decode_public_b64(keys.srk, "storageRootKey")
    device_key = b"d" * 32
    blob = bytes(activation_blob(ek, srk, device_key))
    assert [len(p) for p in split_blob(blob)] == [54, 258, 144, 258, 50, 2]
    assert keys.open_blob(base64.b64encode(blob).decode()) == device_key


def test_a_blob_for_another_tpm_does_not_open() -> None:
    keys, other = SoftwareKeys(), SoftwareKeys()
    ek = check_endorsement_key(other.ek)
    srk = decode_public_b64(keys.srk, "storageRootKey")
    blob = base64.b64encode(bytes(activation_blob(ek, srk, b"d" * 32))).decode()
    with pytest.raises(ValueError):  # RSA-OAEP refuses a seed encrypted to another EK
        keys.open_blob(blob)
