"""DPS service API: enrollment and group records over HTTP, on both database engines."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from provisiond.services.cas import CaService
from provisiond.services.hubs import HubService
from tests.api.conftest import DpsApi
from tests.support.pki import issue, self_signed
from tests.support.tpm import fake_ek, fake_srk

KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="


def sym(rid: str, **extra: object) -> dict[str, object]:
    return {
        "registrationId": rid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}},
        **extra,
    }


async def test_put_applies_dps_defaults_and_server_fields(dps: DpsApi) -> None:
    r = await dps.call(
        "PUT", "/enrollments/dev-1", json={"registrationId": "dev-1", "attestation": {"type": "symmetricKey"}}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["provisioningStatus"] == "enabled"
    assert body["reprovisionPolicy"] == {"updateHubAssignment": True, "migrateDeviceData": True}
    assert body["capabilities"] == {"iotEdge": False}
    keys = body["attestation"]["symmetricKey"]
    assert len(base64.b64decode(keys["primaryKey"])) == 64 and keys["primaryKey"] != keys["secondaryKey"]
    assert body["etag"].startswith('"') and body["createdDateTimeUtc"].endswith("Z")
    assert body["createdDateTimeUtc"] == body["lastUpdatedDateTimeUtc"]


async def test_every_field_round_trips_with_its_exact_name(dps: DpsApi) -> None:
    await HubService(dps.db).add("hub1.example")
    twin = {"tags": {"floor": 3}, "properties": {"desired": {"interval": 5, "$metadata": {"x": 1}}}}
    sent = sym(
        "dev-full",
        deviceId="device-one",
        optionalDeviceInformation={"tags": {"k": "v"}},
        capabilities={"iotEdge": True},
        iotHubHostName="hub1.example",
        initialTwin=twin,
        provisioningStatus="disabled",
        reprovisionPolicy={"updateHubAssignment": False, "migrateDeviceData": False},
        allocationPolicy="custom",
        iotHubs=["hub1.example"],
        customAllocationDefinition={"webhookUrl": "https://hook.example/a", "apiVersion": "2021-10-01"},
    )
    put = (await dps.call("PUT", "/enrollments/dev-full", json=sent)).json()
    got = (await dps.call("GET", "/enrollments/dev-full")).json()
    assert got == put
    for name, value in sent.items():
        assert got[name] == value, name


async def test_read_only_and_unknown_fields_are_ignored_and_created_time_is_kept(dps: DpsApi) -> None:
    first = (await dps.call("PUT", "/enrollments/dev-1", json=sym("dev-1"))).json()
    dps.clock.advance(60)
    echoed = {
        **first,
        "deviceId": "changed",
        "registrationState": {"x": 1},
        "somethingNew": 5,
        "createdDateTimeUtc": "2000-01-01T00:00:00Z",
    }
    r = await dps.call("PUT", "/enrollments/dev-1", json=echoed, headers={"If-Match": first["etag"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["deviceId"] == "changed" and "somethingNew" not in second
    assert second["createdDateTimeUtc"] == first["createdDateTimeUtc"]
    assert second["lastUpdatedDateTimeUtc"] > first["lastUpdatedDateTimeUtc"]
    assert second["etag"] != first["etag"]


@pytest.mark.parametrize("if_match", ["quoted", "bare", "*"])
async def test_if_match_accepts_quoted_bare_and_star(dps: DpsApi, if_match: str) -> None:
    etag = (await dps.call("PUT", "/enrollments/dev-1", json=sym("dev-1"))).json()["etag"]
    value = {"quoted": etag, "bare": etag.strip('"'), "*": "*"}[if_match]
    r = await dps.call(
        "PUT", "/enrollments/dev-1", json=sym("dev-1", deviceId="x"), headers={"If-Match": value}
    )
    assert r.status_code == 200


async def test_if_match_mismatch_is_412_and_changes_nothing(dps: DpsApi) -> None:
    before = (await dps.call("PUT", "/enrollments/dev-1", json=sym("dev-1"))).json()
    r = await dps.call(
        "PUT", "/enrollments/dev-1", json=sym("dev-1", deviceId="x"), headers={"If-Match": '"stale"'}
    )
    assert r.status_code == 412
    assert r.json()["errorCode"] == 412201 and r.headers["x-ms-error-code"] == "412201"
    r = await dps.call("DELETE", "/enrollments/dev-1", headers={"If-Match": '"stale"'})
    assert r.status_code == 412
    assert (await dps.call("GET", "/enrollments/dev-1")).json() == before


async def test_delete_answers_204_then_the_record_is_gone(dps: DpsApi) -> None:
    etag = (await dps.call("PUT", "/enrollments/dev-1", json=sym("dev-1"))).json()["etag"]
    r = await dps.call("DELETE", "/enrollments/dev-1", headers={"If-Match": etag})
    assert (r.status_code, r.content) == (204, b"")
    r = await dps.call("GET", "/enrollments/dev-1")
    assert r.status_code == 404 and r.json()["errorCode"] == 404201
    assert (await dps.call("DELETE", "/enrollments/dev-1")).status_code == 404


async def test_paths_are_case_insensitive_with_or_without_trailing_slash(dps: DpsApi) -> None:
    group = {"enrollmentGroupId": "Grp-1", "attestation": {"type": "symmetricKey"}}
    assert (await dps.call("PUT", "/EnrollmentGroups/grp-1/", json=group)).status_code == 200
    got = await dps.call("GET", "/enrollmentgroups/GRP-1")
    assert got.status_code == 200 and got.json()["enrollmentGroupId"] == "Grp-1"
    att = await dps.call("POST", "/enrollmentgroups/grp-1/AttestationMechanism")
    assert att.status_code == 200 and att.json()["type"] == "symmetricKey"


async def test_ids_are_percent_decoded(dps: DpsApi) -> None:
    await dps.call("PUT", "/enrollments/dev:1", json=sym("dev:1"))
    r = await dps.call("GET", "/enrollments/dev%3A1")
    assert r.status_code == 200 and r.json()["registrationId"] == "dev:1"


async def test_attestation_mechanism_of_an_individual_enrollment(dps: DpsApi) -> None:
    await dps.call("PUT", "/enrollments/dev-1", json=sym("dev-1"))
    r = await dps.call("POST", "/enrollments/dev-1/attestationmechanism")
    assert r.json() == {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}}


@pytest.mark.parametrize("encoding", ["pem", "base64-pem", "base64-der"])
async def test_x509_certificates_in_every_encoding_get_computed_info(dps: DpsApi, encoding: str) -> None:
    cert = self_signed("dev-x509")
    pem = cert.public_bytes(Encoding.PEM)
    der = cert.public_bytes(Encoding.DER)
    text = {
        "pem": pem.decode(),
        "base64-pem": base64.b64encode(pem).decode(),
        "base64-der": base64.b64encode(der).decode(),
    }[encoding]
    body = {
        "registrationId": "dev-x509",
        "attestation": {
            "type": "x509",
            "x509": {
                "clientCertificates": {"primary": {"certificate": text, "info": {"subjectName": "lies"}}}
            },
        },
    }
    r = await dps.call("PUT", "/enrollments/dev-x509", json=body)
    assert r.status_code == 200, r.text
    info = r.json()["attestation"]["x509"]["clientCertificates"]["primary"]["info"]
    assert info["subjectName"] == "CN=dev-x509" and info["issuerName"] == "CN=dev-x509"
    assert info["sha256Thumbprint"] == hashlib.sha256(der).hexdigest().upper()
    assert info["sha1Thumbprint"] == hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - DPS reports SHA-1 thumbprints
    assert (info["serialNumber"], info["version"]) == (format(cert.serial_number, "X"), 3)
    assert info["notAfterUtc"].endswith("Z")


async def test_group_with_signing_certificate_and_ca_references(dps: DpsApi) -> None:
    pem = self_signed("my-ca").public_bytes(Encoding.PEM).decode()
    signing = {
        "enrollmentGroupId": "g1",
        "attestation": {"type": "x509", "x509": {"signingCertificates": {"primary": {"certificate": pem}}}},
    }
    r = await dps.call("PUT", "/enrollmentGroups/g1", json=signing)
    assert (
        r.status_code == 200
        and r.json()["attestation"]["x509"]["signingCertificates"]["primary"]["info"]["subjectName"]
        == "CN=my-ca"
    )
    refs = {
        "enrollmentGroupId": "g2",
        "attestation": {"type": "x509", "x509": {"caReferences": {"primary": "ca-1", "secondary": "ca-2"}}},
    }
    r = await dps.call("PUT", "/enrollmentGroups/g2", json=refs)
    assert r.status_code == 400 and "ca-1" in r.json()["message"]  # unknown CA names are refused
    cas = CaService(dps.db)
    await cas.add("ca-1", issue("CA one", ca=True).pem)
    await cas.add("CA-2", issue("CA two", ca=True).pem)
    r = await dps.call("PUT", "/enrollmentGroups/g2", json=refs)
    assert r.json()["attestation"]["x509"] == {"caReferences": {"primary": "ca-1", "secondary": "ca-2"}}


async def test_tpm_attestation_keeps_endorsement_and_storage_root_keys(dps: DpsApi) -> None:
    tpm = {"endorsementKey": fake_ek(), "storageRootKey": fake_srk()}
    body = {"registrationId": "tpm-1", "attestation": {"type": "tpm", "tpm": tpm}}
    assert (await dps.call("PUT", "/enrollments/tpm-1", json=body)).status_code == 200
    r = await dps.call("POST", "/enrollments/tpm-1/attestationmechanism")
    assert r.json() == {"type": "tpm", "tpm": tpm}


def _tpm_enrollment(ek: str, srk: str | None = None) -> dict[str, object]:
    tpm = {"endorsementKey": ek} | ({"storageRootKey": srk} if srk else {})
    return {"registrationId": "tpm-1", "attestation": {"type": "tpm", "tpm": tpm}}


@pytest.mark.parametrize(
    ("ek", "srk", "said"),
    [
        ("AToAAQALAAMAsgAgg3GXZ0SEs", None, "base64"),  # the fake EK this test once stored
        (base64.b64encode(base64.b64decode(fake_ek())[:100]).decode(), None, "truncated"),
        (fake_srk(), None, "attributes"),  # an SRK is no EK: not the EK template
        (fake_ek(), "AAA=", "storageRootKey"),
    ],
)
async def test_tpm_enrollment_refuses_a_key_that_is_no_tpm_ek(
    dps: DpsApi, ek: str, srk: str | None, said: str
) -> None:
    """Only an RSA-2048 EK with the TCG default template can register, so nothing else is stored."""
    r = await dps.call("PUT", "/enrollments/tpm-1", json=_tpm_enrollment(ek, srk))
    assert r.status_code == 400 and r.json()["errorCode"] == 400201, r.text
    assert said in r.json()["message"]
    assert await dps.count() == 0


async def test_tpm_enrollment_groups_are_refused(dps: DpsApi) -> None:
    """DPS has no TPM enrollment groups: a TPM device is enrolled one by one, by its EK."""
    body = {"enrollmentGroupId": "g1", "attestation": {"type": "tpm", "tpm": {"endorsementKey": fake_ek()}}}
    r = await dps.call("PUT", "/enrollmentGroups/g1", json=body)
    assert r.status_code == 400 and r.json()["errorCode"] == 400201
    assert "enrollment groups" in r.json()["message"]


async def test_iot_hubs_must_be_linked_hubs(dps: DpsApi) -> None:
    r = await dps.call("PUT", "/enrollments/dev-1", json=sym("dev-1", iotHubs=["unlinked.example"]))
    assert r.status_code == 400 and "unlinked.example" in r.json()["message"]
    r = await dps.call("PUT", "/enrollments/dev-1", json=sym("dev-1", iotHubHostName="unlinked.example"))
    assert r.status_code == 400
    await HubService(dps.db).add("Linked.Example")
    r = await dps.call("PUT", "/enrollments/dev-1", json=sym("dev-1", iotHubs=["linked.example"]))
    assert r.status_code == 200
    assert await dps.count() == 1


@pytest.mark.parametrize("url", ["http://hook.example/a", "ftp://hook.example/a", "not a url"])
async def test_webhook_urls_outside_the_allow_list_are_refused(dps: DpsApi, url: str) -> None:
    """The default allow-list is https only."""
    custom = {"allocationPolicy": "custom", "customAllocationDefinition": {"webhookUrl": url}}
    r = await dps.call("PUT", "/enrollments/dev-1", json=sym("dev-1", **custom))
    assert r.status_code == 400 and r.json()["errorCode"] == 400201
    assert await dps.count() == 0


@pytest.mark.parametrize("device_id", ["+", "a/b", "dev#1", "x" * 129, ""])
async def test_a_device_id_outside_iot_hubs_characters_is_a_400(dps: DpsApi, device_id: str) -> None:
    """Hubs and brokers name a device's topics by its deviceId: '/', '+' or '#' would reach into
    other devices' topics (an MQTT wildcard in a Mosquitto role's ACLs)."""
    r = await dps.call("PUT", "/enrollments/dev-1", json=sym("dev-1", deviceId=device_id))
    assert r.status_code == 400 and r.json()["errorCode"] == 400201, r.text
    assert (await dps.call("GET", "/enrollments/dev-1")).status_code == 404


async def test_a_device_id_of_iot_hubs_characters_is_kept(dps: DpsApi) -> None:
    r = await dps.call("PUT", "/enrollments/dev-1", json=sym("dev-1", deviceId="Dev-1.a_b:c=d@e$f!(g)'h"))
    assert r.status_code == 200 and r.json()["deviceId"] == "Dev-1.a_b:c=d@e$f!(g)'h"
