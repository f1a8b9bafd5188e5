"""What the hub connector does when things go wrong around it (the security review of issue 18).

Against the contract double of IoT Hub's registry API (tests/support/iothub_double.py): a
connection that cannot be called is refused at ``hub add`` and, if one was stored anyway, fails
the registration instead of leaving it ``assigning``; ``deprovision`` deletes the identity
wherever it was last written, whatever the registration's status; an identity written for a
registration that then does not end ``assigned`` is deleted again; a deprovision or a newer
register supersedes a registration still waiting for its hub.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest

from provisiond import wiring
from provisiond.adapters.hub_connectors import connector_for
from provisiond.domain.hub_identities import ConnectorKind, HubConnection
from provisiond.errors import InvalidInput
from provisiond.services.hub_sync import HubConnector
from provisiond.services.hubs import HubService
from provisiond.store import hub_connections as connection_repo
from provisiond.store import registrations as registration_repo
from tests.api.conftest import DpsApi
from tests.api.dps_device.conftest import KEY, Device, enroll
from tests.api.dps_device.iothub.test_hub_connectors import HUB, TWIN, link, puts
from tests.api.dps_device.test_certificate_issuance import PREVIEW, register, run
from tests.api.dps_device.test_certificate_issuance import enroll as enroll_preview
from tests.api.dps_device.test_hub_identities import _thumbprint
from tests.support.iothub_double import IotHubDouble
from tests.support.issuance import make_csr


async def store_connection(dps: DpsApi, hub: IotHubDouble, endpoint: str, ca_pem: str | None) -> None:
    """A connection as an older version could store it, unchecked (the store does not check)."""
    await link(dps, hub)
    async with dps.db.write() as conn:
        secret = hub.add_policy("other")
        connection = HubConnection(HUB, ConnectorKind.IOTHUB, secret, endpoint, ca_pem)
        await connection_repo.set_connection(conn, HUB, connection)


# Finding 2: nothing leaves a registration `assigning` for ever.


@pytest.mark.parametrize(
    ("endpoint", "ca_pem"),
    [("https://h:abc", None), ("https://h", "not a certificate"), ("ftp://h", None), ("https://", None)],
)
async def test_hub_add_refuses_an_endpoint_or_ca_file_that_cannot_be_used(
    dps: DpsApi, hub: IotHubDouble, endpoint: str, ca_pem: str | None
) -> None:
    secret = hub.add_policy("provisioning")
    with pytest.raises(InvalidInput):
        await wiring.hub_connections(dps.ctx.settings, dps.db).link(
            HUB, 1, None, "iothub", secret, endpoint, ca_pem
        )


@pytest.mark.parametrize(
    ("endpoint", "ca_pem"), [("https://h:abc", None), ("https://127.0.0.1:9", "not a certificate")]
)
async def test_a_stored_connection_that_cannot_be_called_fails_the_registration(
    dps: DpsApi, hub: IotHubDouble, endpoint: str, ca_pem: str | None
) -> None:
    await store_connection(dps, hub, endpoint, ca_pem)
    await enroll(dps, "broken-1")
    result = await Device(dps, "broken-1", KEY).run()
    assert result["status"] == "failed", result
    assert result["registrationState"]["errorCode"] == 400209


async def test_an_operation_that_cannot_be_finished_is_recorded_failed_not_left_pending(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "bug-1")
    hub.throttle(1000, retry_after="1")
    device = Device(dps, "bug-1", KEY)
    r = await device.register()
    operation_id = r.json()["operationId"]
    calls = dps.ctx.custom_allocations
    calls.cancel()
    await calls.drain()
    async with dps.db.read() as conn:
        op = await registration_repo.get_operation(conn, operation_id)
    assert op is not None
    broken = replace(op, context={**op.context, "kind": "?"})
    await calls.finish(broken)  # an unexpected error (here: a context it cannot read)
    dps.clock.advance(5)
    final: dict[str, Any] = (await device.poll(operation_id)).json()
    assert final["status"] == "failed", final
    assert final["registrationState"]["errorCode"] == 400209


async def deprovision(dps: DpsApi, rid: str) -> Any:
    return await wiring.hub_connections(dps.ctx.settings, dps.db).deprovision(rid)


async def until_put(hub: IotHubDouble, count: int = 1) -> None:
    """Wait until the connector has called the hub (the operation is committed ``assigning``)."""
    for _ in range(500):
        if len(puts(hub)) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the connector never called the hub")


# Finding 1: deprovision deletes the identity wherever it was last written.


async def test_deprovision_after_a_disabled_registration_still_deletes_the_identity(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "dis-1")
    assert (await Device(dps, "dis-1", KEY).run())["status"] == "assigned"
    await enroll(dps, "dis-1", provisioningStatus="disabled")
    assert (await Device(dps, "dis-1", KEY).run())["registrationState"]["status"] == "disabled"
    assert "dis-1" in hub.devices  # DPS leaves it, as it does; deprovision is the cleanup
    done = await deprovision(dps, "dis-1")
    assert done.identity_deleted
    assert done.hub == HUB
    assert hub.devices == {}


async def test_an_identity_left_by_a_refused_twin_patch_is_deleted_by_deprovision(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "patch-1", initialTwin=TWIN)
    hub.refuse(400, "ArgumentInvalid", "bad twin", method="PATCH")
    hub.refuse(503, "ServiceUnavailable", "busy", method="DELETE")  # the clean-up fails too
    result = await Device(dps, "patch-1", KEY).run()
    assert result["status"] == "failed"
    assert result["registrationState"]["errorCode"] == 400209
    assert "patch-1" in hub.devices
    done = await deprovision(dps, "patch-1")
    assert done.identity_deleted
    assert hub.devices == {}


async def test_deprovision_says_when_it_does_not_know_of_an_identity(dps: DpsApi, hub: IotHubDouble) -> None:
    await link(dps, hub)
    await enroll(dps, "never-1", provisioningStatus="disabled")
    assert (await Device(dps, "never-1", KEY).run())["registrationState"]["status"] == "disabled"
    done = await deprovision(dps, "never-1")
    assert not done.identity_deleted
    assert done.note == "no identity was recorded at a hub"


# Finding 4: an identity written for a registration that does not end assigned is deleted again.


async def test_an_identity_written_while_the_enrollment_was_disabled_is_deleted_again(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "late-1")
    hub.throttle(1, retry_after="1")
    device = Device(dps, "late-1", KEY)
    operation_id = (await device.register()).json()["operationId"]
    await until_put(hub)
    await enroll(dps, "late-1", provisioningStatus="disabled")  # while the hub call is retried
    await dps.ctx.custom_allocations.drain()
    dps.clock.advance(5)
    final: dict[str, Any] = (await device.poll(operation_id)).json()
    assert final["registrationState"]["status"] == "disabled", final
    assert len(puts(hub)) == 2  # the identity was written...
    assert hub.devices == {}  # ...and deleted again


# Finding 3: a deprovision or a newer register supersedes an operation waiting for its hub.


async def test_a_deprovision_while_the_hub_call_is_retried_is_not_undone(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "race-1")
    hub.throttle(1, retry_after="1")
    device = Device(dps, "race-1", KEY)
    operation_id = (await device.register()).json()["operationId"]
    await until_put(hub)
    await deprovision(dps, "race-1")
    await dps.ctx.custom_allocations.drain()
    assert hub.devices == {}
    assert len(puts(hub)) == 1  # the superseded operation did not write it back
    async with dps.db.read() as conn:
        op = await registration_repo.get_operation(conn, operation_id)
        state = await registration_repo.get_state(conn, "race-1")
    assert op is not None
    assert op.state is not None
    assert op.status.value == "failed"
    assert "superseded" in (op.state.error_message or "")
    assert state is None


async def test_a_newer_register_supersedes_one_still_waiting_for_its_hub(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "race-2")
    hub.throttle(1, retry_after="1")
    device = Device(dps, "race-2", KEY)
    first = (await device.register()).json()["operationId"]
    await until_put(hub)
    result = await device.run()
    await dps.ctx.custom_allocations.drain()
    assert result["status"] == "assigned", result
    dps.clock.advance(5)
    old: dict[str, Any] = (await device.poll(first)).json()
    assert old["status"] == "failed"
    assert "superseded" in old["registrationState"]["errorMessage"]
    assert len(puts(hub)) == 2  # the throttled first try and the newer create: no stale PUT
    assert list(hub.devices) == ["race-2"]


# Finding 5: what a device is shown of a hub's error is bounded and of the documented shape.


async def test_a_hub_error_body_reaches_the_device_only_in_its_documented_shape_without_tokens(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "body-1")
    hub.refuse(400, "ArgumentInvalid", "echo SharedAccessSignature sr=x&sig=secret&se=1 " + "x" * 600)
    state = (await Device(dps, "body-1", KEY).run())["registrationState"]
    assert state["errorCode"] == 400209
    message = json.loads(state["errorMessage"])
    assert set(message) == {"Message", "ExceptionMessage"}
    assert message["Message"].startswith("ErrorCode:ArgumentInvalid;echo SharedAccessSignature…")
    assert "sig=secret" not in state["errorMessage"]
    assert len(message["Message"]) == 512
    # A body longer than the 1 KB read is not shown at all.
    hub.refuse(400, "ArgumentInvalid", "x" * 5000)
    state = (await Device(dps, "body-1", KEY).run())["registrationState"]
    assert state["errorMessage"] == "HTTP 400 from the hub"


async def test_a_hub_error_body_not_of_the_documented_shape_is_reduced_to_its_status(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "body-2")
    hub.refuse(502, "", "", raw="<html>a proxy's page naming internal hosts</html>")
    state = (await Device(dps, "body-2", KEY).run())["registrationState"]
    assert state["errorMessage"] == "HTTP 502 from the hub"


# Finding 6: a Retry-After of 0 does not make the connector spin.


async def test_a_retry_after_of_zero_still_waits_the_backoff(dps: DpsApi, hub: IotHubDouble) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    calls = dps.ctx.custom_allocations
    assert calls.hub_sync is not None
    # Sleeps are recorded, not slept: a window wide enough that the jittered waits always fit.
    calls.hub_sync = replace(calls.hub_sync, sleep=sleep, retry_seconds=60.0)
    await link(dps, hub)
    await enroll(dps, "spin-1")
    hub.throttle(2, retry_after="0")
    assert (await Device(dps, "spin-1", KEY).run())["status"] == "assigned"
    assert len(waits) == 2
    assert waits[0] >= 1.0, waits
    assert waits[1] >= 2.0, waits  # and it grows


# Finding 7: one connector, and one TLS context, per hub connection.


async def test_the_connector_of_a_hub_is_built_once_for_many_registrations(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    built: list[HubConnection] = []

    def counting(connection: HubConnection) -> HubConnector:
        built.append(connection)
        return connector_for(connection)

    calls = dps.ctx.custom_allocations
    assert calls.hub_sync is not None
    calls.hub_sync = replace(calls.hub_sync, connectors=counting)
    await link(dps, hub)
    for rid in ("once-1", "once-2"):
        await enroll(dps, rid)
        assert (await Device(dps, rid, KEY).run())["status"] == "assigned"
    assert len(built) == 1


# Finding 10: a connection string is linked only under its own hub's name.


async def test_hub_add_refuses_a_connection_string_of_another_hub(dps: DpsApi, hub: IotHubDouble) -> None:
    secret = hub.add_policy("provisioning").replace(HUB, "fabrikam-hub.azure-devices.net")
    with pytest.raises(InvalidInput, match="fabrikam-hub"):
        await wiring.hub_connections(dps.ctx.settings, dps.db).link(
            HUB, 1, None, "iothub", secret, hub.endpoint, hub.ca_pem
        )
    # The same name in another case is the same hub.
    await wiring.hub_connections(dps.ctx.settings, dps.db).link(
        HUB, 1, None, "iothub", hub.add_policy("p2").replace(HUB, HUB.upper()), hub.endpoint, hub.ca_pem
    )


# Lows: hub add without --connector, deprovision after hub remove.


async def test_hub_add_without_a_connector_refuses_the_connector_options(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    with pytest.raises(InvalidInput, match="need --connector"):
        await wiring.hub_connections(dps.ctx.settings, dps.db).link(
            HUB, 1, None, None, hub.add_policy("provisioning"), hub.endpoint, hub.ca_pem
        )


async def test_deprovision_after_the_hub_was_removed_says_the_identity_was_not_deleted(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await enroll(dps, "removed-1")
    assert (await Device(dps, "removed-1", KEY).run())["status"] == "assigned"
    await HubService(dps.db).remove(HUB)
    done = await deprovision(dps, "removed-1")
    assert not done.identity_deleted
    assert done.note == f"hub {HUB} not linked, identity not deleted"
    assert "removed-1" in hub.devices


async def test_a_superseded_registrations_certificate_is_revoked_and_not_kept_at_the_hub(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    """Its certificate was never delivered: it must not take the secondary thumbprint from the
    certificate the device holds."""
    await link(dps, hub)
    await dps.ctx.credential_policies.create("fleet", validity_days=14)
    await enroll_preview(dps, "cert-race-1", credentialPolicyName="fleet")
    device = Device(dps, "cert-race-1", KEY)
    first = await run(device, {"csr": make_csr("cert-race-1").b64})
    assert first["status"] == "assigned", first
    hub.throttle(1, retry_after="1")
    before = len(puts(hub))
    r = await register(device, {"csr": make_csr("cert-race-1").b64}, PREVIEW)
    assert r.status_code == 202, r.text
    await until_put(hub, before + 1)
    third = await run(device, {"csr": make_csr("cert-race-1").b64})
    assert third["status"] == "assigned", third
    leaves = [_thumbprint(x["registrationState"]["issuedCertificateChain"][0]) for x in (first, third)]
    assert hub.devices["cert-race-1"]["authentication"]["x509Thumbprint"] == {
        "primaryThumbprint": leaves[1],
        "secondaryThumbprint": leaves[0],
    }
    issued = await dps.ctx.credential_policies.certificates("cert-race-1")
    assert len(issued) == 3
    assert len([c for c in issued if c.revoked is not None]) == 1
