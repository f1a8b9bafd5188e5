"""The rules a device's CSR must pass before anything is signed or written."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from provisiond.domain.certificate_requests import MAX_CSR_BYTES, CsrRejected, check_csr
from tests.support.issuance import make_csr

RID = "dev-001"


@pytest.mark.parametrize(
    "key",
    [
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP384R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ],
    ids=["p256", "p384", "rsa2048"],
)
def test_a_csr_with_an_allowed_key_and_the_registration_id_as_cn_passes(key: object) -> None:
    request = check_csr(make_csr(RID, key=key).b64, RID)  # type: ignore[arg-type]
    assert request.registration_id == RID


def _refused(text: object, rid: str = RID) -> str:
    with pytest.raises(CsrRejected) as caught:
        check_csr(text, rid)
    return caught.value.message


def test_empty_or_non_string_csrs_are_refused() -> None:
    assert "non-empty string" in _refused("")
    assert "non-empty string" in _refused(42)


def test_pem_armour_is_refused_with_a_message_saying_to_send_der() -> None:
    pem = "-----BEGIN CERTIFICATE REQUEST-----\n" + make_csr(RID).b64 + "\n-----END CERTIFICATE REQUEST-----"
    assert "without PEM armour" in _refused(pem)


def test_text_that_is_not_base64_is_refused() -> None:
    assert "not valid base64" in _refused("not*base64!")


def test_bytes_that_are_not_a_pkcs10_request_are_refused() -> None:
    assert "not a DER PKCS#10" in _refused(base64.b64encode(b"\x30\x03\x02\x01\x00").decode())


def test_a_csr_of_another_version_than_v1_is_refused_not_a_fault() -> None:
    """``cryptography`` raises ``InvalidVersion`` (no ValueError) for it: once a 500."""
    der = bytearray(base64.b64decode(make_csr(RID).b64))
    version = der.find(b"\x02\x01\x00")  # INTEGER 0 (v1), the first field of the request info
    der[version + 2] = 1
    assert "not a DER PKCS#10" in _refused(base64.b64encode(bytes(der)).decode())


def test_a_csr_whose_signature_does_not_verify_is_refused() -> None:
    der = bytearray(base64.b64decode(make_csr(RID).b64))
    der[-5] ^= 0xFF  # inside the signature value
    assert "self-signature does not verify" in _refused(base64.b64encode(bytes(der)).decode())


def test_a_csr_for_another_registration_id_is_refused() -> None:
    assert "must equal the registration id 'dev-001'" in _refused(make_csr("dev-002").b64)
    assert "it has none" in _refused(make_csr(None).b64)
    assert "must equal" in _refused(make_csr(RID, extra_cn="other").b64)


def test_the_cn_must_match_exactly_not_case_insensitively() -> None:
    assert "must equal" in _refused(make_csr("DEV-001").b64)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (ec.generate_private_key(ec.SECP521R1()), "secp521r1; use P-256 or P-384"),
        # A weak key on purpose: the rule under test refuses it.
        (rsa.generate_private_key(public_exponent=65537, key_size=1024), "1024 bits; use 2048 to 4096"),  # noqa: S505
        (ed25519.Ed25519PrivateKey.generate(), "must be EC"),
    ],
    ids=["p521", "rsa1024", "ed25519"],
)
def test_keys_outside_ec_p256_p384_and_rsa_2048_to_4096_are_refused(key: object, message: str) -> None:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, RID)])
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(key, algorithm)  # type: ignore[arg-type]
    assert message in _refused(base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode())


def test_an_rsa_key_with_another_exponent_than_65537_is_refused() -> None:
    key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    assert "public exponent 3; use 65537" in _refused(make_csr(RID, key=key).b64)


def test_a_csr_asking_for_ca_rights_is_refused() -> None:
    assert "basicConstraints CA:TRUE" in _refused(make_csr(RID, ca=True).b64)
    assert "keyCertSign or cRLSign" in _refused(make_csr(RID, cert_sign=True).b64)


def test_a_csr_over_8_kb_is_refused_before_it_is_decoded() -> None:
    assert f"larger than {MAX_CSR_BYTES} bytes" in _refused("A" * (MAX_CSR_BYTES * 2))


def test_a_well_formed_csr_over_8_kb_of_der_is_refused() -> None:
    rid = "r" * 64
    big = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    names = [x509.DNSName(f"n{i:05d}.example.com") for i in range(400)]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, rid)]))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(big, hashes.SHA256())
    )
    der = csr.public_bytes(serialization.Encoding.DER)
    assert len(der) > MAX_CSR_BYTES
    assert "larger than" in _refused(base64.b64encode(der).decode(), rid)
