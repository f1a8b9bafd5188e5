"""Issuing CAs: generated or imported, the leaves they sign and the CRLs they publish."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from provisiond.domain.certificate_requests import check_csr
from provisiond.domain.issuing_ca import (
    CannotIssue,
    KeyType,
    build_crl,
    chain_pem,
    crl_distribution_points,
    generate_ca,
    import_ca,
    issue_leaf,
)
from provisiond.errors import InvalidInput
from tests.support.issuance import make_csr, verify_chain
from tests.support.pki import issue

NOW = datetime.now(UTC)


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.mark.parametrize("key_type", list(KeyType))
def test_a_generated_policy_signs_leaves_that_verify_up_to_its_root(key_type: KeyType) -> None:
    ca = generate_ca("fleet", key_type, NOW)
    leaf = issue_leaf(ca, check_csr(make_csr("dev-1").b64, "dev-1"), 30, None, NOW)
    certs = verify_chain([_b64(leaf), *(_b64(c) for c in ca.chain)], "dev-1")
    assert len(certs) == 3  # leaf, issuing CA, root
    assert certs[-1].issuer == certs[-1].subject


def test_a_generated_policy_carries_an_empty_root_crl_valid_as_long_as_the_root() -> None:
    ca = generate_ca("fleet", KeyType.EC_P256, NOW)
    [der] = ca.upper_crls
    crl = x509.load_der_x509_crl(der)
    root = ca.chain[-1]
    assert crl.issuer == root.subject and crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    assert list(crl) == [] and crl.next_update_utc == root.not_valid_after_utc


def test_a_leaf_carries_client_auth_the_policy_validity_a_random_serial_and_key_ids() -> None:
    ca = generate_ca("fleet", KeyType.EC_P384, NOW)
    request = check_csr(make_csr("dev-1").b64, "dev-1")
    first = issue_leaf(ca, request, 45, None, NOW)
    second = issue_leaf(ca, request, 45, None, NOW)
    assert first.serial_number != second.serial_number
    assert first.serial_number.bit_length() > 64
    ext = first.extensions
    assert ext.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert first.not_valid_after_utc - first.not_valid_before_utc == timedelta(days=45)
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert ext.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value == x509.SubjectKeyIdentifier.from_public_key(
        request.csr.public_key()  # type: ignore[arg-type]
    )
    with pytest.raises(x509.ExtensionNotFound):
        ext.get_extension_for_class(x509.CRLDistributionPoints)


def test_a_policy_with_a_crl_url_puts_it_in_every_leaf() -> None:
    ca = generate_ca("fleet", KeyType.EC_P256, NOW)
    leaf = issue_leaf(ca, check_csr(make_csr("d").b64, "d"), 7, "https://pki.example/crl/fleet.crl", NOW)
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name == [x509.UniformResourceIdentifier("https://pki.example/crl/fleet.crl")]


def test_the_crl_lists_revoked_serials_and_is_signed_by_the_issuing_ca() -> None:
    ca = generate_ca("fleet", KeyType.EC_P384, NOW)
    crl = build_crl(ca, [(12345, NOW)], 7, NOW, NOW + timedelta(days=7))
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(12345) is not None
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    assert crl.next_update_utc == (NOW + timedelta(days=7)).replace(microsecond=0)  # X.509 time: seconds


def test_an_operators_intermediate_with_its_root_is_imported_and_signs() -> None:
    root = issue("operator root", ca=True, days=365)
    intermediate = issue("operator intermediate", root, ca=True, days=365)
    ca = import_ca((intermediate.pem + root.pem).encode(), intermediate.key_pem.encode(), NOW, 30)
    leaf = issue_leaf(ca, check_csr(make_csr("dev-9").b64, "dev-9"), 30, None, NOW)
    verify_chain([_b64(leaf), *(_b64(c) for c in ca.chain)], "dev-9")
    assert chain_pem(ca.chain) == intermediate.pem + root.pem
    assert ca.upper_crls == ()  # the operator's CAs above publish their own CRLs


def test_an_imported_ca_must_bring_its_chain_up_to_the_root() -> None:
    root = issue("operator root", ca=True, days=365)
    intermediate = issue("operator intermediate", root, ca=True, days=365)
    with pytest.raises(InvalidInput, match="up to and including the root"):
        import_ca(intermediate.pem.encode(), intermediate.key_pem.encode(), NOW, 30)


def test_an_imported_ca_refuses_a_key_of_another_certificate_or_a_non_ca() -> None:
    root = issue("operator root", ca=True, days=365)
    other = ec.generate_private_key(ec.SECP256R1())
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InvalidInput, match="does not belong"):
        import_ca(root.pem.encode(), other_pem, NOW, 30)
    device = issue("device", root)
    with pytest.raises(InvalidInput, match="is not a CA certificate"):
        import_ca((device.pem + root.pem).encode(), device.key_pem.encode(), NOW, 30)


def test_an_imported_chain_out_of_order_is_refused() -> None:
    root = issue("operator root", ca=True, days=365)
    intermediate = issue("operator intermediate", root, ca=True, days=365)
    other_root = issue("another root", ca=True, days=365)
    with pytest.raises(InvalidInput, match="is not signed by"):
        import_ca((intermediate.pem + other_root.pem).encode(), intermediate.key_pem.encode(), NOW, 30)


@pytest.mark.parametrize(
    ("root_days", "intermediate", "message"),
    [
        (365, {"expired": True}, "is not valid now"),
        (365, {"days": 20}, "within the policy's 30-day certificate validity"),
        (20, {"days": 365}, "within the policy's 30-day certificate validity"),  # the root ends first
        (365, {"days": 365, "crl_sign": False}, "must have keyUsage keyCertSign and cRLSign"),
    ],
    ids=["expired", "ends-within-validity", "root-ends-within-validity", "no-crl-sign"],
)
def test_an_imported_ca_that_could_not_sign_for_the_policys_validity_is_refused_at_import(
    root_days: int, intermediate: dict[str, object], message: str
) -> None:
    """An expired CA once passed create and made every CSR registration a 500."""
    root = issue("operator root", ca=True, days=root_days)
    ca = issue("operator intermediate", root, ca=True, **intermediate)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=message):
        import_ca((ca.pem + root.pem).encode(), ca.key_pem.encode(), NOW, 30)


def test_an_imported_chain_whose_path_length_forbids_the_issuing_ca_is_refused() -> None:
    root = issue("operator root", ca=True, days=365, path_length=0)
    intermediate = issue("operator intermediate", root, ca=True, days=365)
    with pytest.raises(InvalidInput, match="pathLen 0, but 1 CA"):
        import_ca((intermediate.pem + root.pem).encode(), intermediate.key_pem.encode(), NOW, 30)


def test_a_crl_url_that_is_no_ascii_uri_is_refused_as_input() -> None:
    with pytest.raises(InvalidInput, match="not an ASCII URI"):
        crl_distribution_points("https://crl.exämple.com/fleet.crl")
    point = crl_distribution_points("https://crl.example.com/fleet.crl")
    assert point[0].full_name == [x509.UniformResourceIdentifier("https://crl.example.com/fleet.crl")]


def test_a_ca_past_its_end_cannot_issue_and_says_so() -> None:
    ca = generate_ca("fleet", KeyType.EC_P256, NOW)
    later = ca.certificate.not_valid_after_utc + timedelta(days=1)
    with pytest.raises(CannotIssue, match="replace the credential policy"):
        issue_leaf(ca, check_csr(make_csr("dev-1").b64, "dev-1"), 30, None, later)


def test_a_crl_starts_five_minutes_in_the_past_like_a_leaf() -> None:
    """A broker whose clock runs a little slow must not refuse a fresh CRL as not yet valid."""
    ca = generate_ca("fleet", KeyType.EC_P256, NOW)
    now = NOW.replace(microsecond=0)
    crl = build_crl(ca, [], 2, now, now + timedelta(days=7))
    assert crl.last_update_utc == now - timedelta(minutes=5)
