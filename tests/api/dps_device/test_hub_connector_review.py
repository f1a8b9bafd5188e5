"""What the hub connector does when things go wrong around it (the security review of issue 18).

Against the contract double of IoT Hub's registry API (tests/support/iothub_double.py): a
connection that cannot be called is refused at ``hub add`` and, if one was stored anyway, fails
the registration instead of leaving it ``assigning``; ``deprovision`` deletes the identity
wherever it was last written, whatever the registration's status; an identity written for a
registration that then does not end ``assigned`` is deleted again; a deprovision or a newer
register supersedes a registration still waiting for its hub.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from provisiond import wiring
from provisiond.domain.hub_identities import ConnectorKind, HubConnection
from provisiond.errors import InvalidInput
from provisiond.store import hub_connections as connection_repo
from provisiond.store import registrations as registration_repo
from provisiond.store.db import Database
from tests.api.conftest import DpsApi, running_app
from tests.api.dps_device.conftest import KEY, Device, enroll
from tests.api.dps_device.test_hub_connectors import HUB, link
from tests.support.clock import FakeClock
from tests.support.iothub_double import IotHubDouble, serve_iothub


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[IotHubDouble]:
    with serve_iothub(tmp_path, HUB) as double:
        yield double


@pytest.fixture
async def dps(db: Database, tmp_path: Path) -> AsyncIterator[DpsApi]:
    async with running_app(db, tmp_path / "data", FakeClock(), hub_retry_seconds=3.0) as api:
        yield api


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
