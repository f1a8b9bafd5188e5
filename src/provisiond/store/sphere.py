"""Azure Sphere rows: tenants, devices, and the public ids of Sphere operations.

Claims are conditional writes (``INSERT … ON CONFLICT DO UPDATE … WHERE owner IS NULL
RETURNING``), so two transactions racing for one device on PostgreSQL cannot both win: the
statement waits for the other's commit and then finds the device taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.sphere import CHIP_SKU_UNKNOWN, SphereDevice, Tenant
from provisiond.store.engine_specific import insert_for
from provisiond.store.tables import operation_results, sphere_devices, sphere_operations, tenants

__all__ = [
    "claim_free",
    "get_device",
    "get_tenant",
    "insert_operation_ref",
    "insert_results",
    "insert_tenant",
    "list_devices",
    "operation_ref",
    "owners_of",
    "release",
    "set_tenant_token",
    "tenant_by_token_hash",
]

_CHUNK = 500  # ids per IN list or multi-row VALUES: well under SQLite's bound-parameter limit


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


# -- tenants -------------------------------------------------------------------------------------


def _tenant(row: Any) -> Tenant:
    return Tenant(row.id, row.owner_id, row.name)


async def insert_tenant(conn: AsyncConnection, tenant: Tenant, token_hash: str, now: datetime) -> None:
    await conn.execute(
        insert(tenants).values(
            id=tenant.id, owner_id=tenant.owner_id, name=tenant.name, token_hash=token_hash, created=now
        )
    )


async def get_tenant(conn: AsyncConnection, tenant_id: UUID) -> Tenant | None:
    row = (await conn.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
    return _tenant(row) if row else None


async def tenant_by_token_hash(conn: AsyncConnection, token_hash: str) -> Tenant | None:
    row = (await conn.execute(select(tenants).where(tenants.c.token_hash == token_hash))).first()
    return _tenant(row) if row else None


async def set_tenant_token(conn: AsyncConnection, tenant_id: UUID, token_hash: str) -> bool:
    result = await conn.execute(
        update(tenants).where(tenants.c.id == tenant_id).values(token_hash=token_hash)
    )
    return result.rowcount == 1


# -- devices -------------------------------------------------------------------------------------


def _device(row: Any) -> SphereDevice:
    return SphereDevice(
        row.device_id,
        row.owner_id,
        row.chip_sku,
        row.device_group_id,
        row.product_id,
        row.last_available_os_version,
        row.last_installed_os_version,
        row.last_os_update,
        row.last_update_request,
    )


async def owners_of(conn: AsyncConnection, device_ids: Sequence[str]) -> dict[str, int | None]:
    """The owner of every listed device that has a record (``None``: released, unowned)."""
    found: dict[str, int | None] = {}
    for chunk in _chunks(list(set(device_ids))):
        stmt = select(sphere_devices.c.device_id, sphere_devices.c.owner_id).where(
            sphere_devices.c.device_id.in_(chunk)
        )
        for row in await conn.execute(stmt):
            found[row.device_id] = row.owner_id
    return found


async def claim_free(
    conn: AsyncConnection, device_ids: Sequence[str], owner_id: int, now: datetime
) -> set[str]:
    """Give every listed device that is new or unowned to ``owner_id``; return those it got.

    ``device_ids`` must be distinct (PostgreSQL refuses to upsert one row twice in a statement).
    """
    taken: set[str] = set()
    for chunk in _chunks(list(device_ids)):
        rows = [
            {"device_id": d, "owner_id": owner_id, "chip_sku": CHIP_SKU_UNKNOWN, "created": now}
            for d in chunk
        ]
        ins = insert_for(conn, sphere_devices).values(rows)
        stmt = ins.on_conflict_do_update(
            index_elements=[sphere_devices.c.device_id],
            set_={"owner_id": ins.excluded.owner_id},
            where=sphere_devices.c.owner_id.is_(None),
        ).returning(sphere_devices.c.device_id)
        taken.update(row.device_id for row in await conn.execute(stmt))
    return taken


async def release(conn: AsyncConnection, device_id: str, owner_id: int) -> bool:
    """Clear the owner of a device, if ``owner_id`` owns it; the record itself stays."""
    result = await conn.execute(
        update(sphere_devices)
        .where(sphere_devices.c.device_id == device_id, sphere_devices.c.owner_id == owner_id)
        .values(owner_id=None)
    )
    return result.rowcount == 1


async def get_device(conn: AsyncConnection, device_id: str) -> SphereDevice | None:
    row = (await conn.execute(select(sphere_devices).where(sphere_devices.c.device_id == device_id))).first()
    return _device(row) if row else None


async def list_devices(
    conn: AsyncConnection, owner_id: int, after: str | None, limit: int
) -> list[SphereDevice]:
    """The owner's devices in id order after ``after`` (keyset paging)."""
    stmt = select(sphere_devices).where(sphere_devices.c.owner_id == owner_id)
    if after is not None:
        stmt = stmt.where(sphere_devices.c.device_id > after)
    stmt = stmt.order_by(sphere_devices.c.device_id).limit(limit)
    return [_device(row) for row in await conn.execute(stmt)]


# -- operations ----------------------------------------------------------------------------------


async def insert_operation_ref(
    conn: AsyncConnection, public_id: UUID, operation_id: int, owner_id: int, device_id: str | None
) -> None:
    """Record the public id of a core operation (and the device of a single-device one)."""
    await conn.execute(
        insert(sphere_operations).values(
            id=public_id, operation_id=operation_id, owner_id=owner_id, device_id=device_id
        )
    )


async def operation_ref(conn: AsyncConnection, public_id: UUID) -> tuple[int, int, str | None] | None:
    """(core operation id, owner id, device id) of a public operation id."""
    row = (await conn.execute(select(sphere_operations).where(sphere_operations.c.id == public_id))).first()
    return (row.operation_id, row.owner_id, row.device_id) if row else None


async def insert_results(conn: AsyncConnection, operation_id: int, rows: Sequence[tuple[int, str]]) -> None:
    """Results of an operation completed on the spot (an operator's release): no lease involved."""
    if rows:
        await conn.execute(
            insert(operation_results),
            [{"operation_id": operation_id, "seq": s, "result": r} for s, r in rows],
        )
