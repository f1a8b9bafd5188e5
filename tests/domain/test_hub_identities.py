"""What a hub is told: the credential per attestation type (in its order), the twin patch, the
connection string's parts."""

from __future__ import annotations

import base64

import pytest

from provisiond.domain.certificates import parse_certificate
from provisiond.domain.enrollments import (
    Attestation,
    AttestationType,
    Enrollment,
    EnrollmentKind,
    SymmetricKeyAttestation,
    TpmAttestation,
    X509Attestation,
)
from provisiond.domain.hub_identities import (
    ConnectorKind,
    HubAuthentication,
    HubAuthKind,
    HubConnection,
    hub_authentication,
    parse_iothub_connection_string,
    twin_patch,
)
from provisiond.domain.sas import derive_device_key
from provisiond.errors import InvalidInput
from tests.support.pki import issue

K1 = base64.b64encode(b"1" * 32).decode()
K2 = base64.b64encode(b"2" * 32).decode()


def _symmetric(kind: EnrollmentKind) -> Enrollment:
    return Enrollment(
        kind, "e-1", Attestation(AttestationType.SYMMETRIC_KEY, symmetric_key=SymmetricKeyAttestation(K1, K2))
    )


def test_individual_keys_are_given_as_they_are_and_group_keys_derived_for_the_device() -> None:
    assert hub_authentication(
        _symmetric(EnrollmentKind.INDIVIDUAL), "symmetricKey", "dev-1"
    ) == HubAuthentication(HubAuthKind.SAS, K1, K2)
    assert hub_authentication(_symmetric(EnrollmentKind.GROUP), "symmetricKey", "dev-1") == HubAuthentication(
        HubAuthKind.SAS, derive_device_key(K1, "dev-1"), derive_device_key(K2, "dev-1")
    )


def test_an_issued_certificate_wins_over_the_onboarding_credential() -> None:
    auth = hub_authentication(
        _symmetric(EnrollmentKind.INDIVIDUAL),
        "symmetricKey",
        "dev-1",
        issued_thumbprints=("AA" * 32, "BB" * 32),
    )
    assert auth == HubAuthentication(HubAuthKind.SELF_SIGNED, "AA" * 32, "BB" * 32)
    only = hub_authentication(
        _symmetric(EnrollmentKind.GROUP), "symmetricKey", "d", issued_thumbprints=("AA" * 32,)
    )
    assert only == HubAuthentication(HubAuthKind.SELF_SIGNED, "AA" * 32, None)


def test_tpm_devices_get_their_hub_key_and_none_is_refused() -> None:
    tpm = Enrollment(
        EnrollmentKind.INDIVIDUAL, "t", Attestation(AttestationType.TPM, tpm=TpmAttestation("ek"))
    )
    assert hub_authentication(tpm, "tpm", "t", tpm_hub_key=b"h" * 32) == HubAuthentication(
        HubAuthKind.SAS, base64.b64encode(b"h" * 32).decode(), base64.b64encode(b"h" * 32).decode()
    )
    with pytest.raises(InvalidInput):
        hub_authentication(tpm, "tpm", "t")


def test_x509_individual_devices_are_self_signed_and_group_members_certificate_authority() -> None:
    primary, secondary = parse_certificate(issue("d").pem), parse_certificate(issue("d").pem)
    individual = Enrollment(
        EnrollmentKind.INDIVIDUAL,
        "d",
        Attestation(
            AttestationType.X509, x509=X509Attestation(client_primary=primary, client_secondary=secondary)
        ),
    )
    assert hub_authentication(individual, "x509", "d") == HubAuthentication(
        HubAuthKind.SELF_SIGNED, primary.info.sha256_thumbprint, secondary.info.sha256_thumbprint
    )
    root = parse_certificate(issue("root", ca=True).pem)
    group = Enrollment(
        EnrollmentKind.GROUP,
        "g",
        Attestation(AttestationType.X509, x509=X509Attestation(signing_primary=root)),
    )
    assert hub_authentication(group, "x509", "d") == HubAuthentication(HubAuthKind.CERTIFICATE_AUTHORITY)


def test_the_twin_patch_takes_tags_and_desired_without_hub_metadata() -> None:
    twin = {
        "tags": {"site": "eu"},
        "properties": {"desired": {"interval": 30, "$version": 4, "$metadata": {}}, "reported": {"x": 1}},
        "etag": "AAAA",
    }
    patch = twin_patch(twin)
    assert patch is not None and patch.tags == {"site": "eu"} and patch.desired == {"interval": 30}
    assert twin_patch(None) is None
    assert twin_patch({"tags": {}, "properties": {"desired": {"$version": 1}}}) is None


def test_a_connection_string_is_parsed_and_a_bad_one_refused_without_echoing_it() -> None:
    parsed = parse_iothub_connection_string(
        f" HostName=h.example;SharedAccessKeyName=p;SharedAccessKey={K1}\n"
    )
    assert (parsed.host_name, parsed.key_name, parsed.key) == ("h.example", "p", K1)
    with pytest.raises(InvalidInput, match="lacks SharedAccessKey") as missing:
        parse_iothub_connection_string("HostName=h.example;SharedAccessKeyName=p")
    with pytest.raises(InvalidInput, match="not base64") as bad:
        parse_iothub_connection_string("HostName=h;SharedAccessKeyName=p;SharedAccessKey=not*base64!")
    assert "not*base64!" not in bad.value.message and "h.example" not in missing.value.message


def test_an_individual_enrollment_with_only_a_secondary_certificate_is_self_signed_with_it() -> None:
    secondary = parse_certificate(issue("d").pem)
    only_secondary = Enrollment(
        EnrollmentKind.INDIVIDUAL,
        "d",
        Attestation(AttestationType.X509, x509=X509Attestation(client_secondary=secondary)),
    )
    assert hub_authentication(only_secondary, "x509", "d") == HubAuthentication(
        HubAuthKind.SELF_SIGNED, secondary.info.sha256_thumbprint, None
    )


def test_no_repr_of_a_connection_shows_its_key() -> None:
    text = f"HostName=h.example;SharedAccessKeyName=p;SharedAccessKey={K1}"
    connection = HubConnection("h.example", ConnectorKind.IOTHUB, text)
    assert K1 not in repr(connection)
    assert K1 not in repr(parse_iothub_connection_string(text))
