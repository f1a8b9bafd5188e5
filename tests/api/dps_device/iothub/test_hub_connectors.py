"""The assigned IoT hub learns the device before the registration reports ``assigned``.

Each test links a hub with the ``iothub`` connector pointed at the contract double of IoT Hub's
registry API (tests/support/iothub_double.py; no IoT Hub runs here), registers a device over
the DPS device API in process, and checks what the double was told and what the device saw.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from provisiond import wiring
from provisiond.domain.sas import derive_device_key
from tests.api.conftest import DpsApi
from tests.api.dps_device.conftest import KEY, KEY2, Device, enroll, enroll_group, group_device
from tests.api.dps_device.iothub.conftest import HUB
from tests.support.iothub_double import IotHubDouble
from tests.support.webhook import serve_webhook

TWIN = {"tags": {"site": {"region": "eu"}}, "properties": {"desired": {"telemetryInterval": 30}}}


async def link(api: DpsApi, hub: IotHubDouble, host: str = HUB, rights: set[str] | None = None) -> None:
    """Link ``host`` with the iothub connector aimed at the double, as `dps hub add` does."""
    secret = hub.add_policy("provisioning", rights) if rights else hub.add_policy("provisioning")
    await wiring.hub_connections(api.ctx.settings, api.db).link(
        host, 1, None, "iothub", secret, hub.endpoint, hub.ca_pem
    )


def puts(hub: IotHubDouble) -> list[dict[str, str]]:
    return [headers for _m, path, headers, _b in hub.calls("PUT") if path.startswith("/devices/")]


async def test_a_symmetric_key_device_is_created_at_its_hub_with_its_keys_twin_and_edge_capability(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "sym-1", initialTwin=TWIN, capabilities={"iotEdge": True})
    result = await Device(dps, "sym-1", KEY).run()
    assert result["status"] == "assigned", result
    assert result["registrationState"]["assignedHub"] == HUB
    device = hub.devices["sym-1"]
    assert device["authentication"] == {
        "type": "sas",
        "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY2},
    }
    assert device["capabilities"] == {"iotEdge": True}
    twin = hub.twins["sym-1"]
    assert twin["tags"] == TWIN["tags"]
    assert twin["properties"]["desired"]["telemetryInterval"] == 30
    assert "if-match" not in puts(hub)[0]  # a create sends no If-Match (§2.3)


async def test_a_group_member_gets_the_keys_derived_from_both_group_keys(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll_group(dps, "grp-1")
    result = await group_device(dps, "member-1").run()
    assert result["status"] == "assigned", result
    assert hub.devices["member-1"]["authentication"]["symmetricKey"] == {
        "primaryKey": derive_device_key(KEY, "member-1"),
        "secondaryKey": derive_device_key(KEY2, "member-1"),
    }
    assert hub.devices["member-1"]["capabilities"] == {"iotEdge": False}


async def test_registering_again_updates_the_identity_instead_of_duplicating_it(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "again-1")
    assert (await Device(dps, "again-1", KEY).run())["status"] == "assigned"
    etag = hub.devices["again-1"]["etag"]
    assert (await Device(dps, "again-1", KEY).run())["status"] == "assigned"
    assert list(hub.devices) == ["again-1"]
    assert hub.devices["again-1"]["etag"] != etag  # replaced
    assert [h.get("if-match") for h in puts(hub)] == [None, None, '"*"']  # create, 409, forced update


async def test_a_hub_that_refuses_fails_the_registration_with_400209_and_its_error_body(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "refused-1")
    hub.refuse(401, "IotHubUnauthorizedAccess", "Unauthorized")
    result = await Device(dps, "refused-1", KEY).run()
    assert result["status"] == "failed"
    state = result["registrationState"]
    assert state["errorCode"] == 400209
    assert state["errorMessage"].startswith('{"Message": "ErrorCode:IotHubUnauthorizedAccess;Unauthorized"')
    assert "assignedHub" not in state
    assert hub.devices == {}
    # The next attempt retries cleanly.
    assert (await Device(dps, "refused-1", KEY).run())["status"] == "assigned"
    assert list(hub.devices) == ["refused-1"]


async def test_a_policy_without_registry_write_is_a_401_the_device_sees(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub, rights={"RegistryRead", "ServiceConnect"})
    await enroll(dps, "norights-1")
    result = await Device(dps, "norights-1", KEY).run()
    assert result["status"] == "failed"
    assert "IotHubUnauthorizedAccess" in result["registrationState"]["errorMessage"]


async def test_an_unreachable_hub_fails_the_registration(
    dps: DpsApi, hub: IotHubDouble, tmp_path: Path
) -> None:
    secret = hub.add_policy("provisioning")
    await wiring.hub_connections(dps.ctx.settings, dps.db).link(
        HUB, 1, None, "iothub", secret, "https://127.0.0.1:9", hub.ca_pem
    )
    await enroll(dps, "unreachable-1")
    result = await Device(dps, "unreachable-1", KEY).run()
    assert result["status"] == "failed"
    assert result["registrationState"]["errorCode"] == 400209
    assert "could not be reached" in result["registrationState"]["errorMessage"]


async def test_a_throttling_hub_is_retried_and_the_device_assigned(dps: DpsApi, hub: IotHubDouble) -> None:
    await link(dps, hub)
    await enroll(dps, "throttled-1", initialTwin=TWIN)
    hub.throttle(1, retry_after="0")  # waited for at least the 1 s first backoff
    result = await Device(dps, "throttled-1", KEY).run()
    assert result["status"] == "assigned", result
    assert len(puts(hub)) == 2  # a 429, then the create
    assert hub.twins["throttled-1"]["tags"] == TWIN["tags"]


async def test_a_hub_throttling_past_the_retry_window_fails_the_registration(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "throttled-2")
    hub.throttle(1000, retry_after="1")
    result = await Device(dps, "throttled-2", KEY).run()
    assert result["status"] == "failed"
    assert result["registrationState"]["errorCode"] == 400209
    assert "ThrottlingException" in result["registrationState"]["errorMessage"]
    assert 2 <= len(puts(hub)) <= 5  # retried within the 3 s window, then given up


async def test_a_registration_interrupted_before_the_hub_answered_is_resumed_without_a_duplicate(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "resumed-1")
    hub.throttle(1000, retry_after="1")
    device = Device(dps, "resumed-1", KEY)
    r = await device.register()
    operation_id = r.json()["operationId"]
    calls = dps.ctx.custom_allocations
    for _ in range(500):  # until the connector runs: the operation is committed `assigning`
        if puts(hub):
            break
        await asyncio.sleep(0.01)
    calls.cancel()  # what a stop does (a kill -9 leaves the same committed state)
    await calls.drain()
    dps.clock.advance(5)
    assert (await device.poll(operation_id)).json()["status"] == "assigning"
    hub.faults.clear()
    assert await calls.resume_pending() == 1
    await calls.drain()
    dps.clock.advance(5)
    final: dict[str, Any] = (await device.poll(operation_id)).json()
    assert final["status"] == "assigned"
    assert list(hub.devices) == ["resumed-1"]


async def test_a_hub_chosen_by_a_custom_allocation_webhook_learns_the_device_with_its_twin(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    with serve_webhook() as webhook:
        webhook.answer(200, {"iotHubHostName": HUB, "initialTwin": {"tags": {"chosen": "by-webhook"}}})
        await enroll(
            dps,
            "custom-1",
            allocationPolicy="custom",
            customAllocationDefinition={"webhookUrl": webhook.url, "apiVersion": "2021-10-01"},
            initialTwin=TWIN,
        )
        result = await Device(dps, "custom-1", KEY).run()
    assert result["status"] == "assigned", result
    assert len(webhook.requests) == 1
    assert hub.devices["custom-1"]["authentication"]["symmetricKey"]["primaryKey"] == KEY
    assert hub.twins["custom-1"]["tags"] == {"chosen": "by-webhook"}  # the webhook's twin wins
