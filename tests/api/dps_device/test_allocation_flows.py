"""Re-registration by reprovision policy, geoLatency, and custom-allocation webhooks (in-process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from provisiond.services.enrollments import EnrollmentService, WebhookRules
from provisiond.services.hubs import HubService
from provisiond.store import registrations as registrations_repo
from tests.api.conftest import DpsApi, running_app
from tests.api.dps_device.conftest import KEY, Device, enroll, enroll_group, group_device
from tests.support.webhook import Webhook, serve_webhook


@pytest.fixture
async def hubs(dps: DpsApi) -> list[str]:
    for name, region in (("hub-a.example", "europe"), ("hub-b.example", "us")):
        await HubService(dps.db).add(name, region=region)
    return ["hub-a.example", "hub-b.example"]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with serve_webhook() as hook:
        yield hook


async def move(dps: DpsApi, rid: str, hub: str, **policy: bool) -> None:
    current = (await dps.call("GET", f"/enrollments/{rid}")).json()
    current["iotHubs"] = [hub]
    if policy:
        current["reprovisionPolicy"] = {"updateHubAssignment": True, "migrateDeviceData": True, **policy}
    assert (await dps.call("PUT", f"/enrollments/{rid}", json=current)).status_code == 200


@pytest.mark.parametrize(
    ("policy", "hub", "substatus"),
    [
        ({"updateHubAssignment": True, "migrateDeviceData": True}, "hub-b.example", "deviceDataMigrated"),
        ({"updateHubAssignment": True, "migrateDeviceData": False}, "hub-b.example", "deviceDataReset"),
        (
            {"updateHubAssignment": False, "migrateDeviceData": True},
            "hub-a.example",
            "reprovisionedToInitialAssignment",
        ),
        (
            {"updateHubAssignment": False, "migrateDeviceData": False},
            "hub-a.example",
            "reprovisionedToInitialAssignment",
        ),
    ],
)
async def test_reregistration_after_the_enrollment_moves(
    dps: DpsApi, hubs: list[str], policy: dict[str, bool], hub: str, substatus: str
) -> None:
    await enroll(dps, "dev-1", iotHubs=["hub-a.example"], reprovisionPolicy=policy)
    device = Device(dps, "dev-1", KEY)
    first = (await device.run())["registrationState"]
    assert (first["assignedHub"], first["substatus"]) == ("hub-a.example", "initialAssignment")
    await move(dps, "dev-1", "hub-b.example", **policy)
    again = (await device.run())["registrationState"]
    assert (again["assignedHub"], again["substatus"]) == (hub, substatus)
    assert again["createdDateTimeUtc"] == first["createdDateTimeUtc"]


async def test_reregistration_to_the_same_hub(dps: DpsApi, hubs: list[str]) -> None:
    await enroll(dps, "dev-1", iotHubs=["hub-a.example"])
    device = Device(dps, "dev-1", KEY)
    await device.run()
    state = (await device.run())["registrationState"]
    assert (state["assignedHub"], state["substatus"]) == ("hub-a.example", "reprovisionedToInitialAssignment")


async def test_enrollment_policy_overrides_the_instance_default(dps: DpsApi, hubs: list[str]) -> None:
    await HubService(dps.db).set_allocation("static")
    await enroll(dps, "static-1", iotHubHostName="hub-b.example")
    assert (await Device(dps, "static-1", KEY).run())["registrationState"]["assignedHub"] == "hub-b.example"
    await enroll(dps, "hashed-1", allocationPolicy="hashed")  # static would fail: no iotHubHostName
    assert (await Device(dps, "hashed-1", KEY).run())["status"] == "assigned"
    await enroll(dps, "static-2")
    assert (await Device(dps, "static-2", KEY).run())["registrationState"]["errorCode"] == 400206


async def test_geo_latency_uses_the_region_of_the_client_network(dps: DpsApi, hubs: list[str]) -> None:
    """The in-process client connects from 10.1.2.3."""
    await HubService(dps.db).add_region("10.0.0.0/8", "us")
    await enroll_group(dps, "geo", allocationPolicy="geoLatency")
    for n in range(10):
        state = (await group_device(dps, f"geo-{n}").run())["registrationState"]
        assert state["assignedHub"] == "hub-b.example"


# -- custom allocation -------------------------------------------------------------------------


def custom(url: str) -> dict[str, Any]:
    return {
        "allocationPolicy": "custom",
        "customAllocationDefinition": {"webhookUrl": url, "apiVersion": "2021-10-01"},
    }


async def test_webhook_chooses_the_hub_and_its_payload_reaches_the_device(
    dps: DpsApi, hubs: list[str], webhook: Webhook
) -> None:
    await enroll(dps, "dev-1", iotHubs=hubs, **custom(webhook.url))
    webhook.answer(
        200,
        {"iotHubHostName": "hub-b.example", "initialTwin": {"tags": {"t": 1}}, "payload": {"config": "blue"}},
    )
    result = await Device(dps, "dev-1", KEY).run({"model": "toaster"})
    state = result["registrationState"]
    assert (result["status"], state["assignedHub"], state["payload"]) == (
        "assigned",
        "hub-b.example",
        {"config": "blue"},
    )
    sent = webhook.requests[0]
    assert sent["individualEnrollment"]["registrationId"] == "dev-1"
    assert sent["individualEnrollment"]["attestation"] == {"type": "symmetricKey"}  # no keys leave the server
    assert sent["individualEnrollment"]["customAllocationDefinition"]["webhookUrl"].endswith("?****")
    assert sent["deviceRuntimeContext"] == {
        "registrationId": "dev-1",
        "symmetricKey": {},
        "payload": {"model": "toaster"},
    }
    assert sent["linkedHubs"] == hubs


async def test_webhook_sees_the_current_assignment_on_reregistration(
    dps: DpsApi, hubs: list[str], webhook: Webhook
) -> None:
    await enroll_group(dps, "g", **custom(webhook.url))
    webhook.answer(200, {"iotHubHostName": "hub-a.example"})
    device = group_device(dps, "member-1")
    await device.run()
    webhook.answer(200, {"iotHubHostName": "hub-b.example"})
    state = (await device.run())["registrationState"]
    assert (state["assignedHub"], state["substatus"]) == ("hub-b.example", "deviceDataMigrated")
    again = webhook.requests[1]
    assert "enrollmentGroup" in again
    assert again["deviceRuntimeContext"]["currentIotHubHostName"] == "hub-a.example"
    assert again["deviceRuntimeContext"]["currentDeviceId"] == "member-1"


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (200, {"iotHubHostName": "unknown-hub.example"}, 400207),
        (200, {"iotHubHostName": ""}, 400208),
        (200, {"payload": {}}, 400208),
        (200, b"not json", 400207),
        (200, [1, 2], 400207),
        (401, {"error": "no"}, 400209),
        (500, {"error": "boom"}, 400207),
        (400, "unknown device", 400207),
    ],
)
async def test_webhook_answers_that_fail_the_registration(
    dps: DpsApi, hubs: list[str], webhook: Webhook, status: int, body: Any, code: int
) -> None:
    await enroll(dps, "dev-1", **custom(webhook.url))
    webhook.answer(status, body)
    result = await Device(dps, "dev-1", KEY).run()
    state = result["registrationState"]
    assert (result["status"], state["status"], state["errorCode"]) == ("failed", "failed", code)
    assert state["errorMessage"]


async def test_slow_webhook_times_out_and_fails(dps: DpsApi, hubs: list[str], webhook: Webhook) -> None:
    """The fixture's timeout is 2 s; the webhook takes 4."""
    await enroll(dps, "dev-1", **custom(webhook.url))
    webhook.answer(200, {"iotHubHostName": "hub-a.example"}, delay=4)
    state = (await Device(dps, "dev-1", KEY).run())["registrationState"]
    assert state["errorCode"] == 400207 and "within 2 s" in state["errorMessage"]


async def test_webhook_down_fails(dps: DpsApi, hubs: list[str], webhook: Webhook) -> None:
    dead = webhook.url.rsplit(":", 1)[0] + ":9/api/none"  # port 9 (discard): nothing listens
    await enroll(dps, "dev-1", **custom(dead))
    state = (await Device(dps, "dev-1", KEY).run())["registrationState"]
    assert state["errorCode"] == 400207 and "could not be reached" in state["errorMessage"]


async def test_webhook_outside_the_allow_list_at_registration_time_fails(
    dps: DpsApi, hubs: list[str], webhook: Webhook
) -> None:
    """An enrollment written under laxer rules is refused when the device registers."""
    lax = EnrollmentService(dps.db, dps.clock, WebhookRules(("*",), True))
    body = {
        "registrationId": "dev-1",
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}},
        **custom("http://10.9.9.9/hook"),
    }
    from provisiond.api.dps_service.mapping import enrollment_from_wire
    from provisiond.domain.enrollments import EnrollmentKind

    await lax.put(enrollment_from_wire(EnrollmentKind.INDIVIDUAL, body), None)
    state = (await Device(dps, "dev-1", KEY).run())["registrationState"]
    assert state["errorCode"] == 400207 and "allow-list" in state["errorMessage"]
    assert webhook.requests == []


async def test_pending_custom_allocation_finishes_after_a_restart_and_is_recorded_once(
    dps: DpsApi, hubs: list[str], webhook: Webhook
) -> None:
    await enroll(dps, "dev-1", **custom(webhook.url))
    webhook.answer(200, {"iotHubHostName": "hub-a.example"}, delay=1.0)
    device = Device(dps, "dev-1", KEY)
    op = (await device.register()).json()["operationId"]
    dps.ctx.custom_allocations.cancel()  # the process "dies" while the webhook call is in flight
    await dps.ctx.custom_allocations.drain()
    async with dps.db.read() as conn:
        pending = await registrations_repo.get_operation(conn, op)
    assert pending is not None and pending.status.value == "assigning"
    dps.clock.advance(1)
    assert (await device.poll(op)).json()["status"] == "assigning"
    webhook.answer(200, {"iotHubHostName": "hub-b.example"})
    async with running_app(dps.db, dps.init.data_dir, dps.clock) as restarted:
        await restarted.ctx.custom_allocations.drain()  # the restart resumed the pending operation
        restarted.clock.advance(1)
        r = await Device(restarted, "dev-1", KEY).poll(op)
        assert r.status_code == 200 and r.json()["registrationState"]["assignedHub"] == "hub-b.example"
        # A late finisher of the same operation (the first call, had it survived) is not recorded.
        webhook.answer(200, {"iotHubHostName": "hub-a.example"})
        await restarted.ctx.custom_allocations.finish(pending)
        assert webhook.requests[-1]["deviceRuntimeContext"]["registrationId"] == "dev-1"
        dps.clock.advance(1)
        again = await Device(restarted, "dev-1", KEY).poll(op)
        assert again.json()["registrationState"]["assignedHub"] == "hub-b.example"
    state = (await dps.call("GET", "/registrations/dev-1")).json()
    assert state["assignedHub"] == "hub-b.example"


@pytest.mark.parametrize("change", ["group disabled", "member disenrolled"])
async def test_a_device_disabled_while_its_webhook_answers_is_not_assigned(
    dps: DpsApi, hubs: list[str], webhook: Webhook, change: str
) -> None:
    """What the enrollments say when the result is recorded decides, not what they said when the
    device registered: the webhook can take seconds, and a restart can come between."""
    await enroll_group(dps, "grp", iotHubs=hubs, **custom(webhook.url))
    webhook.answer(200, {"iotHubHostName": "hub-a.example"}, delay=0.5)
    device = group_device(dps, "member-1")
    r = await device.register()
    assert r.status_code == 202 and r.json()["status"] == "assigning"
    if change == "group disabled":
        await enroll_group(dps, "grp", iotHubs=hubs, provisioningStatus="disabled", **custom(webhook.url))
    else:
        await enroll(
            dps, "member-1", key="b3RoZXJrZXlvdGhlcmtleW90aGVya2V5b3RoZXJrZXk=", provisioningStatus="disabled"
        )
    await dps.ctx.custom_allocations.drain()
    dps.clock.advance(2)
    done = await device.poll(r.json()["operationId"])
    assert done.status_code == 200, done.text
    state = done.json()["registrationState"]
    assert (state["status"], state["errorCode"], state.get("assignedHub")) == ("disabled", 401006, None)
    assert len(webhook.requests) == 1  # it was asked; its answer was not used
