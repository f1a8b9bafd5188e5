"""TPM attestation over HTTPS (in-process, both engines): the challenge, the signed call, the rules.

The device here is software (``SoftwareKeys``: an EK and SRK whose private halves open the blob
the way a TPM does); the same flow against a real TPM (swtpm) and the official Node client is in
tests/e2e/test_tpm_tools.py and tests/compat/test_node_tpm_sdk.py.
"""

from __future__ import annotations

import base64
import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from provisiond.domain.registrations import RegistrationOperation
from provisiond.domain.sas import build_sas
from provisiond.errors import Unauthorized
from provisiond.services.device_auth import Credentials
from provisiond.services.hubs import HubService
from tests.api.conftest import DpsApi
from tests.api.dps_device.conftest import DEVICE_API, KEY, enroll_group, group_device
from tests.support.issuance import make_csr, verify_chain
from tests.support.tpm import SoftwareKeys
from tests.support.webhook import Webhook, serve_webhook

PREVIEW = "2025-07-01-preview"


@pytest.fixture
async def hubs(dps: DpsApi) -> list[str]:
    names = ["hub-a.example", "hub-b.example"]
    for name in names:
        await HubService(dps.db).add(name)
    return names


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with serve_webhook() as hook:
        yield hook


@dataclass
class TpmDevice:
    """A TPM device as the Node SDK drives one over HTTPS, with its TPM in software."""

    api: DpsApi
    registration_id: str
    keys: SoftwareKeys
    key: bytes | None = None  # the key of the last challenge taken

    @property
    def path(self) -> str:
        return f"/{self.api.init.id_scope}/registrations/{self.registration_id}"

    def body(self) -> dict[str, Any]:
        tpm = {"endorsementKey": self.keys.ek, "storageRootKey": self.keys.srk}
        return {"registrationId": self.registration_id, "tpm": tpm}

    def token(self, key: bytes | None = None, ttl: int = 3600) -> str:
        sr = urllib.parse.quote(f"{self.api.init.id_scope}/registrations/{self.registration_id}", safe="")
        signing = base64.b64encode(key or self.key or b"").decode()
        return build_sas(signing, sr, int(self.api.clock().timestamp()) + ttl, "registration")

    async def register(self, authorization: str | None = None) -> httpx.Response:
        headers = {"Authorization": authorization} if authorization else {}
        return await self.api.http.put(
            f"{self.path}/register", params={"api-version": DEVICE_API}, json=self.body(), headers=headers
        )

    async def take_challenge(self) -> bytes:
        r = await self.register()
        assert r.status_code == 401, r.text
        self.key = self.keys.open_blob(r.json()["authenticationKey"])
        return self.key

    async def poll(self, operation_id: str, authorization: str | None = None) -> httpx.Response:
        return await self.api.http.get(
            f"{self.path}/operations/{operation_id}",
            params={"api-version": DEVICE_API},
            headers={"Authorization": authorization or self.token()},
        )

    async def run(self) -> dict[str, Any]:
        """Challenge, signed register, polls after each retry-after until the status is final."""
        await self.take_challenge()
        r = await self.register(self.token())
        assert r.status_code == 202, r.text
        op = r.json()["operationId"]
        for _ in range(50):
            self.api.clock.advance(int(r.headers["retry-after"]))
            r = await self.poll(op)
            if r.status_code == 200:
                result: dict[str, Any] = r.json()
                return result
            assert r.status_code == 202, r.text
            await self.api.ctx.custom_allocations.drain()
        raise AssertionError("registration never finished")


async def enroll_tpm(api: DpsApi, rid: str, keys: SoftwareKeys, **fields: Any) -> None:
    body = {
        "registrationId": rid,
        "attestation": {"type": "tpm", "tpm": {"endorsementKey": keys.ek}},
        **fields,
    }
    r = await api.call("PUT", f"/enrollments/{rid}", json=body)
    assert r.status_code == 200, r.text


async def test_the_first_register_is_answered_401_with_a_blob_only_this_tpm_opens(
    dps: DpsApi, hubs: list[str]
) -> None:
    keys = SoftwareKeys()
    await enroll_tpm(dps, "tpm-1", keys)
    r = await TpmDevice(dps, "tpm-1", keys).register()
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["keyName"] == "registration" and body["message"]
    assert len(keys.open_blob(body["authenticationKey"])) == 32
    with pytest.raises(ValueError):
        SoftwareKeys().open_blob(body["authenticationKey"])


async def test_a_tpm_device_registers_and_is_given_its_hub_key(dps: DpsApi, hubs: list[str]) -> None:
    keys = SoftwareKeys()
    await enroll_tpm(dps, "tpm-1", keys, deviceId="tpm-device", iotHubs=["hub-b.example"])
    device = TpmDevice(dps, "tpm-1", keys)
    result = await device.run()
    state = result["registrationState"]
    assert (result["status"], state["assignedHub"], state["deviceId"]) == (
        "assigned",
        "hub-b.example",
        "tpm-device",
    )
    hub_key = keys.open_blob(state["tpm"]["authenticationKey"])
    assert len(hub_key) == 32 and hub_key != device.key  # a second, fresh key
    listed = await dps.call("GET", "/registrations/tpm-1")
    assert listed.status_code == 200 and listed.json()["status"] == "assigned"
    assert listed.json()["assignedHub"] == "hub-b.example"


async def test_another_tpms_ek_under_the_registration_id_is_refused_and_replaces_nothing(
    dps: DpsApi, hubs: list[str]
) -> None:
    keys = SoftwareKeys()
    await enroll_tpm(dps, "tpm-1", keys)
    genuine = TpmDevice(dps, "tpm-1", keys)
    await genuine.take_challenge()
    r = await TpmDevice(dps, "tpm-1", SoftwareKeys()).register()
    assert r.status_code == 401 and r.json()["errorCode"] == 401000
    assert "authenticationKey" not in r.json() and "endorsementKey" in r.json()["message"]
    assert (await genuine.register(genuine.token())).status_code == 202  # its challenge still holds


@pytest.mark.parametrize("forgery", ["random key", "expired", "other resource", "no token yet"])
async def test_forged_or_expired_tokens_are_refused(dps: DpsApi, hubs: list[str], forgery: str) -> None:
    keys = SoftwareKeys()
    await enroll_tpm(dps, "tpm-1", keys)
    device = TpmDevice(dps, "tpm-1", keys)
    if forgery != "no token yet":
        await device.take_challenge()
    tokens = {
        "random key": lambda: device.token(secrets.token_bytes(32)),
        "expired": lambda: device.token(ttl=-1),
        "other resource": lambda: device.token().replace("tpm-1", "tpm-2"),
        "no token yet": lambda: device.token(secrets.token_bytes(32)),
    }
    r = await device.register(tokens[forgery]())
    assert r.status_code == 401 and r.json()["errorCode"] == 401000, r.text
    assert "authenticationKey" not in r.json()


async def test_a_new_challenge_replaces_the_old_key(dps: DpsApi, hubs: list[str]) -> None:
    keys = SoftwareKeys()
    await enroll_tpm(dps, "tpm-1", keys)
    device = TpmDevice(dps, "tpm-1", keys)
    first = await device.take_challenge()
    second = await device.take_challenge()
    assert first != second
    assert (await device.register(device.token(first))).status_code == 401
    assert (await device.register(device.token(second))).status_code == 202


async def test_a_deleted_enrollment_takes_its_tpm_keys_with_it(dps: DpsApi, hubs: list[str]) -> None:
    """Enrolled again under the same id, the device's old challenge key opens nothing."""
    keys = SoftwareKeys()
    await enroll_tpm(dps, "tpm-1", keys)
    device = TpmDevice(dps, "tpm-1", keys)
    old = await device.take_challenge()
    r = await dps.call("DELETE", "/enrollments/tpm-1")
    assert r.status_code == 204, r.text
    await enroll_tpm(dps, "tpm-1", keys)
    assert (await device.register(device.token(old))).status_code == 401


async def test_a_disabled_tpm_enrollment_ends_disabled_without_a_hub_key(
    dps: DpsApi, hubs: list[str]
) -> None:
    keys = SoftwareKeys()
    await enroll_tpm(dps, "tpm-1", keys, provisioningStatus="disabled")
    state = (await TpmDevice(dps, "tpm-1", keys).run())["registrationState"]
    assert state["status"] == "disabled" and state["errorCode"] == 401006 and "tpm" not in state
    assert (await dps.call("GET", "/registrations/tpm-1")).json()["status"] == "disabled"


async def test_the_tpm_enrollment_alone_decides_for_its_registration_id(dps: DpsApi, hubs: list[str]) -> None:
    """A group's key does not open a TPM device's registration id; a disabled TPM enrollment
    disenrolls that id from the group too (the precedence rule of every attestation type)."""
    keys = SoftwareKeys()
    await enroll_group(dps, "group-1")
    await enroll_tpm(dps, "tpm-1", keys)
    member = group_device(dps, "tpm-1")
    r = await member.register()
    assert r.status_code == 401
    await enroll_tpm(dps, "tpm-1", keys, provisioningStatus="disabled")
    assert (await member.run())["registrationState"]["status"] == "disabled"


async def test_polls_are_throttled_and_need_the_signed_token(dps: DpsApi, hubs: list[str]) -> None:
    keys = SoftwareKeys()
    await enroll_tpm(dps, "tpm-1", keys)
    device = TpmDevice(dps, "tpm-1", keys)
    await device.take_challenge()
    op = (await device.register(device.token())).json()["operationId"]
    assert (await device.poll(op)).status_code == 429
    dps.clock.advance(1)
    assert (await device.poll(op, device.token(secrets.token_bytes(32)))).status_code == 401
    unsigned = await dps.http.get(
        f"{device.path}/operations/{op}", params={"api-version": DEVICE_API}
    )  # a poll is no place for a challenge
    assert unsigned.status_code == 401 and "authenticationKey" not in unsigned.json()
    assert (await device.poll(op)).status_code == 200


async def test_a_first_register_without_the_tpm_keys_is_a_400(dps: DpsApi, hubs: list[str]) -> None:
    keys = SoftwareKeys()
    await enroll_tpm(dps, "tpm-1", keys)
    r = await dps.http.put(
        f"/{dps.init.id_scope}/registrations/tpm-1/register",
        params={"api-version": DEVICE_API},
        json={"registrationId": "tpm-1"},
    )
    assert r.status_code == 400 and r.json()["errorCode"] == 400201


async def test_reregistration_follows_the_reprovision_policy_and_gives_a_new_hub_key(
    dps: DpsApi, hubs: list[str]
) -> None:
    keys = SoftwareKeys()
    await enroll_tpm(dps, "tpm-1", keys, iotHubs=["hub-a.example"])
    device = TpmDevice(dps, "tpm-1", keys)
    first = (await device.run())["registrationState"]
    await enroll_tpm(dps, "tpm-1", keys, iotHubs=["hub-b.example"])
    again = (await device.run())["registrationState"]
    assert (first["assignedHub"], again["assignedHub"], again["substatus"]) == (
        "hub-a.example",
        "hub-b.example",
        "deviceDataMigrated",
    )
    assert keys.open_blob(first["tpm"]["authenticationKey"]) != keys.open_blob(
        again["tpm"]["authenticationKey"]
    )


async def test_a_custom_allocation_gives_the_hub_key_when_the_webhook_answers(
    dps: DpsApi, hubs: list[str], webhook: Webhook
) -> None:
    keys = SoftwareKeys()
    custom = {"webhookUrl": webhook.url, "apiVersion": "2021-10-01"}
    await enroll_tpm(
        dps, "tpm-1", keys, iotHubs=hubs, allocationPolicy="custom", customAllocationDefinition=custom
    )
    webhook.answer(200, {"iotHubHostName": "hub-b.example"})
    result = await TpmDevice(dps, "tpm-1", keys).run()
    assert result["status"] == "assigned" and result["registrationState"]["assignedHub"] == "hub-b.example"
    assert len(keys.open_blob(result["registrationState"]["tpm"]["authenticationKey"])) == 32
    assert webhook.requests[0]["deviceRuntimeContext"]["tpm"] == {}


async def test_a_symmetric_key_device_is_not_offered_a_challenge(dps: DpsApi, hubs: list[str]) -> None:
    """Only a registration id enrolled for TPM gets a challenge (and has its body parsed)."""
    await enroll_group(dps, "group-1", KEY)
    r = await TpmDevice(dps, "member-1", SoftwareKeys()).register()
    assert r.status_code == 401 and "authenticationKey" not in r.json()


async def test_a_tpm_signed_token_proves_nothing_over_mqtt(dps: DpsApi, hubs: list[str]) -> None:
    """MQTT's credentials are not TPM-capable (DPS has no TPM over MQTT): the same token that
    registers over HTTPS is refused at an MQTT CONNECT (tests/e2e/test_tpm_tools.py drives it)."""
    keys = SoftwareKeys()
    await enroll_tpm(dps, "tpm-1", keys)
    device = TpmDevice(dps, "tpm-1", keys)
    await device.take_challenge()
    scope = dps.init.id_scope
    with pytest.raises(Unauthorized):
        await dps.ctx.registrations.authenticate(scope, "tpm-1", Credentials(device.token()))
    await dps.ctx.registrations.authenticate(scope, "tpm-1", Credentials(device.token(), tpm_capable=True))


async def test_a_disabled_tpm_enrollment_disenrolls_its_id_from_a_group_over_mqtt_too(
    dps: DpsApi, hubs: list[str]
) -> None:
    keys = SoftwareKeys()
    await enroll_group(dps, "group-1")
    await enroll_tpm(dps, "tpm-1", keys, provisioningStatus="disabled")
    member = group_device(dps, "tpm-1")
    op = await dps.ctx.registrations.register(
        dps.init.id_scope, "tpm-1", Credentials(member.token()), lambda: None, None
    )
    assert isinstance(op, RegistrationOperation) and op.state is not None
    assert op.state.status == "disabled" and op.state.enrollment_group_id is None


async def test_a_tpm_devices_csr_rides_on_its_signed_call_and_gets_a_certificate(
    dps: DpsApi, hubs: list[str]
) -> None:
    """Certificate issuance (2025-07-01-preview) for every attestation: a TPM device sends its
    ``csr`` with the second, signed ``register`` and leaves with a chain to the policy's root."""
    await dps.ctx.credential_policies.create("fleet", validity_days=14)
    keys = SoftwareKeys()
    r = await dps.call(
        "PUT",
        "/enrollments/tpm-cert",
        json={
            "registrationId": "tpm-cert",
            "attestation": {"type": "tpm", "tpm": {"endorsementKey": keys.ek}},
            "credentialPolicyName": "fleet",
        },
        version=PREVIEW,
    )
    assert r.status_code == 200, r.text
    device = TpmDevice(dps, "tpm-cert", keys)
    await device.take_challenge()
    signed = await dps.http.put(
        f"{device.path}/register",
        params={"api-version": PREVIEW},
        json={**device.body(), "csr": make_csr("tpm-cert").b64},
        headers={"Authorization": device.token()},
    )
    assert signed.status_code == 202, signed.text
    operation = signed.json()["operationId"]
    for _ in range(50):
        dps.clock.advance(int(signed.headers["retry-after"]))
        polled = await dps.http.get(
            f"{device.path}/operations/{operation}",
            params={"api-version": PREVIEW},
            headers={"Authorization": device.token()},
        )
        if polled.status_code == 200:
            break
    state = polled.json()["registrationState"]
    assert state["status"] == "assigned" and state["tpm"]["authenticationKey"]
    verify_chain(state["issuedCertificateChain"], "tpm-cert")
