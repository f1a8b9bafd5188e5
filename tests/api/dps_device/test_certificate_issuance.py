"""Certificate issuance at registration (api-version 2025-07-01-preview), in-process on both engines.

The device sends ``csr``; an assigned operation carries ``issuedCertificateChain``. Every refusal
of a CSR is a 400 with the DPS error body, and leaves nothing written.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography import x509

from provisiond.errors import NotFound
from provisiond.services.hubs import HubService
from tests.api.conftest import DpsApi
from tests.api.dps_device.conftest import KEY, KEY2, Device, group_device
from tests.support.issuance import make_csr, verify_chain
from tests.support.webhook import Webhook, serve_webhook

PREVIEW = "2025-07-01-preview"


@pytest.fixture
async def hub(dps: DpsApi) -> str:
    await HubService(dps.db).add("hub-a.example")
    return "hub-a.example"


@pytest.fixture
async def policy(dps: DpsApi) -> str:
    await dps.ctx.credential_policies.create("fleet", validity_days=14)
    return "fleet"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with serve_webhook() as hook:
        yield hook


async def enroll(api: DpsApi, rid: str, version: str = PREVIEW, **fields: Any) -> dict[str, Any]:
    body = {
        "registrationId": rid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY2}},
        **fields,
    }
    r = await api.call("PUT", f"/enrollments/{rid}", json=body, version=version)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def enroll_group(api: DpsApi, gid: str, **fields: Any) -> None:
    body = {
        "enrollmentGroupId": gid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY2}},
        **fields,
    }
    r = await api.call("PUT", f"/enrollmentGroups/{gid}", json=body, version=PREVIEW)
    assert r.status_code == 200, r.text


async def register(device: Device, body: dict[str, Any], version: str = PREVIEW) -> httpx.Response:
    return await device.api.http.put(
        f"/{device.id_scope}/registrations/{device.registration_id}/register",
        params={"api-version": version},
        json=body,
        headers={"Authorization": device.token()},
    )


async def run(device: Device, body: dict[str, Any], version: str = PREVIEW) -> dict[str, Any]:
    """Register and poll (moving the clock) until final; the final operation body."""
    r = await register(device, body, version)
    assert r.status_code == 202, r.text
    op = r.json()["operationId"]
    for _ in range(20):
        await device.api.ctx.custom_allocations.drain()
        device.api.clock.advance(1)
        r = await device.api.http.get(
            f"/{device.id_scope}/registrations/{device.registration_id}/operations/{op}",
            params={"api-version": version},
            headers={"Authorization": device.token()},
        )
        if r.status_code == 200:
            result: dict[str, Any] = r.json()
            return result
    raise AssertionError("registration never finished")


async def status_lookup(device: Device, body: dict[str, Any]) -> httpx.Response:
    return await device.api.http.post(
        f"/{device.id_scope}/registrations/{device.registration_id}",
        params={"api-version": PREVIEW},
        json=body,
        headers={"Authorization": device.token()},
    )


# -- the device API --------------------------------------------------------------------------------


async def test_a_csr_without_registration_id_gets_a_chain_that_verifies_to_the_policy_root(
    dps: DpsApi, hub: str, policy: str
) -> None:
    await enroll(dps, "dev-1", credentialPolicyName=policy)
    csr = make_csr("dev-1")
    result = await run(Device(dps, "dev-1", KEY), {"csr": csr.b64})
    assert result["status"] == "assigned"
    chain = result["registrationState"]["issuedCertificateChain"]
    certs = verify_chain(chain, "dev-1")
    assert len(certs) == 3 and certs[0].public_key() == csr.key.public_key()
    assert (certs[0].not_valid_after_utc - certs[0].not_valid_before_utc).days == 14
    listed = await dps.ctx.credential_policies.certificates("dev-1")
    assert [c.serial for c in listed] == [f"{certs[0].serial_number:X}"]
    state = await dps.ctx.registration_states.get("dev-1")
    assert (state.issuance, state.issued_serial) == ("issued", listed[0].serial)


async def test_a_group_member_gets_a_certificate_from_its_groups_policy(
    dps: DpsApi, hub: str, policy: str
) -> None:
    await enroll_group(dps, "grp", credentialPolicyName=policy)
    result = await run(
        group_device(dps, "member-1"), {"registrationId": "member-1", "csr": make_csr("member-1").b64}
    )
    verify_chain(result["registrationState"]["issuedCertificateChain"], "member-1")


async def test_the_status_lookup_never_carries_the_chain_and_refuses_a_csr(
    dps: DpsApi, hub: str, policy: str
) -> None:
    await enroll(dps, "dev-1", credentialPolicyName=policy)
    device = Device(dps, "dev-1", KEY)
    await run(device, {"csr": make_csr("dev-1").b64})
    r = await status_lookup(device, {"registrationId": "dev-1"})
    assert r.status_code == 200 and r.json()["status"] == "assigned"
    assert "issuedCertificateChain" not in r.json()
    r = await status_lookup(device, {"registrationId": "dev-1", "csr": make_csr("dev-1").b64})
    assert r.status_code == 400
    assert r.json()["errorCode"] == 400201 and "status lookup" in r.json()["message"]
    assert r.headers["x-ms-error-code"] == "400201"


async def test_the_service_api_registration_state_never_carries_the_chain(
    dps: DpsApi, hub: str, policy: str
) -> None:
    await enroll(dps, "dev-1", credentialPolicyName=policy)
    await run(Device(dps, "dev-1", KEY), {"csr": make_csr("dev-1").b64})
    r = await dps.call("GET", "/registrations/dev-1")
    assert r.status_code == 200 and "issuedCertificateChain" not in r.json()


async def test_an_enrollment_without_a_policy_assigns_issues_nothing_and_records_why(
    dps: DpsApi, hub: str, policy: str
) -> None:
    await enroll(dps, "dev-1")
    result = await run(Device(dps, "dev-1", KEY), {"csr": make_csr("dev-1").b64})
    assert result["status"] == "assigned"
    assert "issuedCertificateChain" not in result["registrationState"]
    assert (await dps.ctx.registration_states.get("dev-1")).issuance == "noCredentialPolicy"
    assert await dps.ctx.credential_policies.certificates() == []


async def test_registering_again_with_a_new_csr_renews_and_keeps_the_old_certificate_valid(
    dps: DpsApi, hub: str, policy: str
) -> None:
    await enroll(dps, "dev-1", credentialPolicyName=policy)
    device = Device(dps, "dev-1", KEY)
    first = await run(device, {"csr": make_csr("dev-1").b64})
    second = await run(device, {"csr": make_csr("dev-1").b64})
    assert (
        first["registrationState"]["issuedCertificateChain"][0]
        != second["registrationState"]["issuedCertificateChain"][0]
    )
    listed = await dps.ctx.credential_policies.certificates("dev-1")
    assert len(listed) == 2 and all(c.revoked is None for c in listed)


async def test_before_the_preview_api_version_a_csr_is_an_ignored_unknown_field(
    dps: DpsApi, hub: str, policy: str
) -> None:
    await enroll(dps, "dev-1", credentialPolicyName=policy)
    result = await run(Device(dps, "dev-1", KEY), {"csr": "not even base64!"}, version="2021-10-01")
    assert result["status"] == "assigned" and "issuedCertificateChain" not in result["registrationState"]
    assert await dps.ctx.credential_policies.certificates() == []


REFUSALS = {
    "pem armour": (
        lambda: "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----",
        "PEM armour",
    ),
    "not base64": (lambda: "%%%", "not valid base64"),
    "not pkcs10": (lambda: base64.b64encode(b"hello world").decode(), "PKCS#10"),
    "bad signature": (lambda: _tampered(make_csr("dev-1").b64), "self-signature"),
    "other cn": (lambda: make_csr("dev-2").b64, "must equal the registration id"),
    "ca rights": (lambda: make_csr("dev-1", ca=True).b64, "CA:TRUE"),
    "too large": (lambda: "A" * 20000, "larger than 8192 bytes"),
    "not a string": (lambda: 12, "non-empty string"),
}


def _tampered(b64: str) -> str:
    der = bytearray(base64.b64decode(b64))
    der[-5] ^= 0xFF
    return base64.b64encode(bytes(der)).decode()


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_every_bad_csr_is_a_400_with_the_dps_error_body_and_writes_nothing(
    dps: DpsApi, hub: str, policy: str, case: str
) -> None:
    await enroll(dps, "dev-1", credentialPolicyName=policy)
    csr, message = REFUSALS[case]
    r = await register(Device(dps, "dev-1", KEY), {"registrationId": "dev-1", "csr": csr()})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["errorCode"] == 400037 and message in body["message"]
    assert r.headers["x-ms-error-code"] == "400037" and body["trackingId"] and body["timestampUtc"]
    with pytest.raises(NotFound):
        await dps.ctx.registration_states.get("dev-1")
    assert await dps.ctx.credential_policies.certificates() == []


async def test_a_csr_is_checked_only_after_the_device_is_authenticated(
    dps: DpsApi, hub: str, policy: str
) -> None:
    await enroll(dps, "dev-1", credentialPolicyName=policy)
    r = await register(Device(dps, "dev-1", "d3JvbmdrZXl3cm9uZ2tleXdyb25na2V5d3Jvbmc="), {"csr": "%%%"})
    assert r.status_code == 401


async def test_a_custom_allocation_that_ends_failed_revokes_the_certificate_it_issued(
    dps: DpsApi, hub: str, policy: str, webhook: Webhook
) -> None:
    custom = {"webhookUrl": webhook.url, "apiVersion": "2021-10-01"}
    await enroll(
        dps,
        "dev-1",
        credentialPolicyName=policy,
        allocationPolicy="custom",
        customAllocationDefinition=custom,
    )
    webhook.answer(401, {})
    before = await dps.ctx.credential_policies.crl(policy)
    result = await run(Device(dps, "dev-1", KEY), {"csr": make_csr("dev-1").b64})
    assert result["status"] == "failed" and "issuedCertificateChain" not in result["registrationState"]
    [cert] = await dps.ctx.credential_policies.certificates("dev-1")
    assert cert.revoked is not None
    after = await dps.ctx.credential_policies.crl(policy)
    assert after.number == before.number + 1
    crl = x509.load_pem_x509_crl(after.pem.encode())
    assert crl.get_revoked_certificate_by_serial_number(int(cert.serial, 16)) is not None


async def test_a_custom_allocation_that_assigns_hands_over_the_certificate_issued_before(
    dps: DpsApi, hub: str, policy: str, webhook: Webhook
) -> None:
    custom = {"webhookUrl": webhook.url, "apiVersion": "2021-10-01"}
    await enroll(
        dps,
        "dev-1",
        credentialPolicyName=policy,
        allocationPolicy="custom",
        customAllocationDefinition=custom,
    )
    webhook.answer(200, {"iotHubHostName": hub})
    result = await run(Device(dps, "dev-1", KEY), {"csr": make_csr("dev-1").b64})
    assert result["status"] == "assigned"
    certs = verify_chain(result["registrationState"]["issuedCertificateChain"], "dev-1")
    [cert] = await dps.ctx.credential_policies.certificates("dev-1")
    assert cert.serial == f"{certs[0].serial_number:X}" and cert.revoked is None
    assert (await dps.ctx.registration_states.get("dev-1")).issued_serial == cert.serial


async def test_a_pending_registration_interrupted_by_a_restart_keeps_its_one_recorded_certificate(
    dps: DpsApi, hub: str, policy: str, webhook: Webhook
) -> None:
    """The certificate is recorded with the pending operation; the webhook call dies with the
    process (cancelled here); the resumed operation hands over that certificate, not a new one."""
    custom = {"webhookUrl": webhook.url, "apiVersion": "2021-10-01"}
    await enroll(
        dps,
        "dev-1",
        credentialPolicyName=policy,
        allocationPolicy="custom",
        customAllocationDefinition=custom,
    )
    webhook.answer(200, {"iotHubHostName": hub}, delay=5)
    device = Device(dps, "dev-1", KEY)
    r = await register(device, {"csr": make_csr("dev-1").b64})
    assert r.status_code == 202
    dps.ctx.custom_allocations.cancel()
    await dps.ctx.custom_allocations.drain()
    [recorded] = await dps.ctx.credential_policies.certificates("dev-1")
    webhook.answer(200, {"iotHubHostName": hub})
    assert await dps.ctx.custom_allocations.resume_pending() == 1
    await dps.ctx.custom_allocations.drain()
    dps.clock.advance(1)
    r = await dps.http.get(
        f"/{device.id_scope}/registrations/dev-1/operations/{r.json()['operationId']}",
        params={"api-version": PREVIEW},
        headers={"Authorization": device.token()},
    )
    assert r.status_code == 200 and r.json()["status"] == "assigned"
    leaf = verify_chain(r.json()["registrationState"]["issuedCertificateChain"], "dev-1")[0]
    assert f"{leaf.serial_number:X}" == recorded.serial
    assert len(await dps.ctx.credential_policies.certificates("dev-1")) == 1


async def test_a_policy_whose_ca_expired_answers_a_clear_503_and_writes_nothing(
    dps: DpsApi, hub: str, policy: str
) -> None:
    """An issuing CA past its end cannot sign: the operator's fault, not the device's (no 400)
    nor a bug (once a 500); the device may retry once the policy is replaced."""
    await enroll(dps, "dev-1", credentialPolicyName=policy)
    dps.clock.advance(11 * 366 * 86400)  # the generated issuing CA is valid 10 years
    r = await register(Device(dps, "dev-1", KEY), {"csr": make_csr("dev-1").b64})
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["errorCode"] == 503001 and r.headers["x-ms-error-code"] == "503001"
    assert "credential policy 'fleet' cannot issue" in body["message"]
    with pytest.raises(NotFound):
        await dps.ctx.registration_states.get("dev-1")
    assert await dps.ctx.credential_policies.certificates() == []


def _cn(result: dict[str, Any]) -> str:
    leaf = x509.load_der_x509_certificate(
        base64.b64decode(result["registrationState"]["issuedCertificateChain"][0])
    )
    return str(leaf.subject.rfc4514_string())


async def test_a_device_registering_in_another_case_gets_its_enrolled_id_as_cn(
    dps: DpsApi, hub: str, policy: str
) -> None:
    """Ids compare case-insensitively, so "DEV-1" is dev-1: its CSR names the id as sent (exact
    match), its leaf the id as enrolled, never a second name for a broker's username."""
    await enroll(dps, "dev-1", credentialPolicyName=policy)
    upper = Device(dps, "DEV-1", KEY)
    refused = await register(upper, {"csr": make_csr("dev-1").b64})
    assert refused.status_code == 400 and refused.json()["errorCode"] == 400037
    assert _cn(await run(upper, {"csr": make_csr("DEV-1").b64})) == "CN=dev-1"
    assert _cn(await run(Device(dps, "dev-1", KEY), {"csr": make_csr("dev-1").b64})) == "CN=dev-1"
    assert {c.registration_id for c in await dps.ctx.credential_policies.certificates("dev-1")} == {"dev-1"}


async def test_a_group_member_keeps_the_cn_of_its_first_certificate_in_any_case(
    dps: DpsApi, hub: str, policy: str
) -> None:
    await enroll_group(dps, "grp", credentialPolicyName=policy)
    first = await run(group_device(dps, "member-1"), {"csr": make_csr("member-1").b64})
    again = await run(group_device(dps, "MEMBER-1"), {"csr": make_csr("MEMBER-1").b64})
    assert _cn(first) == _cn(again) == "CN=member-1"
