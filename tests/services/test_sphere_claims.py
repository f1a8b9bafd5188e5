"""Sphere ownership on both engines: racing tenants end with one owner per device, replayed
batches give the same results, and the operator's release is recorded as an operation."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from sqlalchemy import func, select

from provisiond.domain.claims import ItemStatus, OperationKind, OperationState
from provisiond.domain.sphere import UnknownDevice
from provisiond.services.sphere import SphereService
from provisiond.services.sphere_batches import apply_sphere_batch
from provisiond.services.worker import OperationWorker
from provisiond.store.db import Database
from provisiond.store.operation_codec import dump_sphere_item
from provisiond.store.tables import operations, sphere_devices


@pytest.mark.parametrize("order", ["same", "reversed"])
async def test_two_tenants_racing_for_the_same_devices_end_with_one_owner_each(
    db: Database, order: str
) -> None:
    """Two workers run two tenants' bulk claims of the same devices at once (truly concurrent on
    PostgreSQL): no deadlock, no device claimed twice, and each result matches the owner."""
    service = SphereService(db)
    a, _ = await service.create_tenant("A")
    b, _ = await service.create_tenant("B")
    devices = [secrets.token_hex(64) for _ in range(1000)]
    op_a = await service.bulk_claim(a, devices)
    op_b = await service.bulk_claim(b, devices if order == "same" else list(reversed(devices)))
    workers = [OperationWorker(db, batch_size=100) for _ in range(2)]
    while any(await asyncio.gather(*(w.run_once() for w in workers))):
        pass
    for op, tenant in ((op_a, a), (op_b, b)):
        assert (await service.operation(tenant, str(op.id))).core.state is not OperationState.IN_PROGRESS
    results_a = dict(await service.operation_items(await service.operation(a, str(op_a.id))))
    results_b = dict(await service.operation_items(await service.operation(b, str(op_b.id))))
    async with db.read() as conn:
        owners = {row.device_id: row.owner_id for row in await conn.execute(select(sphere_devices))}
    assert len(owners) == 1000
    for device in devices:
        won_a, won_b = results_a[device.upper()], results_b[device.upper()]
        assert won_a is not None and won_b is not None
        assert won_a.ok != won_b.ok  # exactly one tenant got it...
        assert owners[device.upper()] == (a.owner_id if won_a.ok else b.owner_id)  # ...and owns it


async def test_a_replayed_claim_batch_gives_the_same_results(db: Database) -> None:
    service = SphereService(db)
    a, _ = await service.create_tenant("A")
    b, _ = await service.create_tenant("B")
    taken = secrets.token_hex(64).upper()
    await service.bulk_claim(b, [taken])
    await OperationWorker(db).run_once()
    items = [dump_sphere_item(d) for d in (secrets.token_hex(64).upper(), taken, "F" * 128, "F" * 128)]
    runs = []
    for _ in range(2):  # the first transaction is rolled back, as a crash would
        with pytest.raises(RuntimeError):
            async with db.write() as conn:
                runs.append(
                    await apply_sphere_batch(
                        conn, OperationKind.SPHERE_BULK_CLAIM, a.owner_id, items, service.clock()
                    )
                )
                raise RuntimeError("roll back")
    assert runs[0] == runs[1]
    assert [r.status for r in runs[0]] == [
        ItemStatus.SUCCESS,
        ItemStatus.SECTION_NOT_YOURS,
        ItemStatus.SUCCESS,
        ItemStatus.DUPLICATE,
    ]


async def test_release_of_a_device_the_tenant_does_not_own_records_nothing(db: Database) -> None:
    service = SphereService(db)
    a, _ = await service.create_tenant("A")
    b, _ = await service.create_tenant("B")
    device = secrets.token_hex(64)
    await service.claim(b, device)
    await OperationWorker(db).run_once()
    async with db.read() as conn:
        before = (await conn.execute(select(func.count()).select_from(operations))).scalar_one()
    for unowned in (device, "0" * 128):
        with pytest.raises(UnknownDevice):
            await service.release(a.id, unowned)
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(operations))).scalar_one() == before
    released = await service.release(b.id, device)
    assert released.core.kind is OperationKind.SPHERE_RELEASE
    assert released.core.state is OperationState.COMPLETE
    [(_, result)] = await service.operation_items(released)
    assert result is not None and result.ok
    assert (await service.devices(b, None, 10))[0] == []
