"""Partners, customers, devices, claims: the rows behind the claims dialects.

Bulk paths (the operation worker) read and write whole batches with one statement per table:
``IN`` lookups for keys and claims, executemany inserts, no per-item round trips.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.claims import Claim, Customer, Device, Partner, SectionType
from provisiond.domain.device_identifiers import DeviceIdentifier, Vendor
from provisiond.jsontext import dumps, loads
from provisiond.store.engine_specific import insert_for
from provisiond.store.tables import claims, customers, device_keys, devices, partners

__all__ = [
    "ConcurrentWrite",
    "claims_of",
    "clear_metadata_of_unowned",
    "count_customers",
    "delete_claims",
    "device_ids_by_keys",
    "find_by_identifier",
    "find_by_owner",
    "get_customer",
    "get_customers",
    "get_devices",
    "get_partner",
    "insert_customer",
    "insert_devices",
    "insert_keys",
    "insert_partner",
    "list_customers",
    "partner_by_token_hash",
    "set_metadata",
    "set_partner_token",
    "upsert_claims",
]

_IN_CHUNK = 900  # stay under SQLite's bound-parameter limit


class ConcurrentWrite(Exception):
    """Another transaction wrote a key or claim this one meant to create: roll back and retry.

    Only PostgreSQL runs claim transactions concurrently; there, two requests may both read
    "no such key / no claim" and then both insert. The inserts are ``ON CONFLICT DO NOTHING``,
    so the loser sees fewer rows written than it meant and raises this instead of overwriting.
    """


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), _IN_CHUNK):
        yield values[i : i + _IN_CHUNK]


# -- partners ------------------------------------------------------------------------------------


async def insert_partner(conn: AsyncConnection, partner: Partner, token_hash: str, now: datetime) -> None:
    await conn.execute(
        insert(partners).values(id=partner.id, name=partner.name, token_hash=token_hash, created=now)
    )


async def get_partner(conn: AsyncConnection, partner_id: int) -> Partner | None:
    row = (
        await conn.execute(select(partners.c.id, partners.c.name).where(partners.c.id == partner_id))
    ).first()
    return Partner(row.id, row.name) if row else None


async def partner_by_token_hash(conn: AsyncConnection, token_hash: str) -> Partner | None:
    row = (
        await conn.execute(select(partners.c.id, partners.c.name).where(partners.c.token_hash == token_hash))
    ).first()
    return Partner(row.id, row.name) if row else None


async def set_partner_token(conn: AsyncConnection, partner_id: int, token_hash: str) -> bool:
    result = await conn.execute(
        update(partners).where(partners.c.id == partner_id).values(token_hash=token_hash)
    )
    return result.rowcount == 1


# -- customers -----------------------------------------------------------------------------------


def _customer(row: Any) -> Customer:
    doc = loads(row.doc)
    return Customer(
        row.id,
        row.partner_id,
        row.name,
        Vendor(row.vendor),
        tuple(doc["owner_emails"]),
        tuple(doc["admin_emails"]),
        doc["vendor_params"],
    )


async def insert_customer(conn: AsyncConnection, c: Customer, now: datetime) -> None:
    doc = {
        "owner_emails": list(c.owner_emails),
        "admin_emails": list(c.admin_emails),
        "vendor_params": c.vendor_params,
    }
    await conn.execute(
        insert(customers).values(
            id=c.id,
            partner_id=c.partner_id,
            name=c.name,
            vendor=c.vendor.value,
            doc=dumps(doc),
            created=now,
        )
    )


async def get_customer(conn: AsyncConnection, customer_id: int) -> Customer | None:
    row = (await conn.execute(select(customers).where(customers.c.id == customer_id))).first()
    return _customer(row) if row else None


async def get_customers(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, Customer]:
    found: dict[int, Customer] = {}
    for chunk in _chunks(list(set(ids))):
        for row in await conn.execute(select(customers).where(customers.c.id.in_(chunk))):
            found[row.id] = _customer(row)
    return found


def _customer_filter(partner_id: int, vendor: Vendor | None) -> Any:
    cond = [customers.c.partner_id == partner_id]
    if vendor is not None:
        cond.append(customers.c.vendor == vendor.value)
    return and_(*cond)


async def list_customers(
    conn: AsyncConnection, partner_id: int, vendor: Vendor | None, after_id: int | None, limit: int
) -> list[Customer]:
    stmt = select(customers).where(_customer_filter(partner_id, vendor))
    if after_id is not None:
        stmt = stmt.where(customers.c.id > after_id)
    return [_customer(row) for row in await conn.execute(stmt.order_by(customers.c.id).limit(limit))]


async def count_customers(conn: AsyncConnection, partner_id: int, vendor: Vendor | None) -> int:
    return int(
        (await conn.execute(select(func.count()).where(_customer_filter(partner_id, vendor)))).scalar_one()
    )


# -- devices and keys ----------------------------------------------------------------------------


async def device_ids_by_keys(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(list(set(keys))):
        for row in await conn.execute(
            select(device_keys.c.key, device_keys.c.device_id).where(device_keys.c.key.in_(chunk))
        ):
            found[row.key] = row.device_id
    return found


async def insert_devices(conn: AsyncConnection, new: Sequence[tuple[int, DeviceIdentifier]]) -> None:
    """Create devices with the ids the caller chose."""
    if not new:
        return
    rows = [
        {
            "id": i,
            "manufacturer": d.manufacturer,
            "model": d.model,
            "imei": d.imei,
            "meid": d.meid,
            "serial": d.serial_number,
            "metadata": None,
        }
        for i, d in new
    ]
    await conn.execute(insert(devices), rows)


async def insert_keys(conn: AsyncConnection, rows: Sequence[tuple[str, int]]) -> None:
    """Add lookup keys (a device gains keys when a request carries several)."""
    if not rows:
        return
    stmt = insert_for(conn, device_keys).on_conflict_do_nothing(index_elements=[device_keys.c.key])
    result = await conn.execute(
        stmt.returning(device_keys.c.key), [{"key": k, "device_id": d} for k, d in rows]
    )
    if len(result.all()) != len(rows):
        raise ConcurrentWrite("a lookup key was created concurrently")


async def set_metadata(conn: AsyncConnection, device_id: int, entries: dict[str, str]) -> None:
    await conn.execute(update(devices).where(devices.c.id == device_id).values(metadata=dumps(entries)))


def _device(row: Any, its_claims: tuple[Claim, ...]) -> Device:
    identifier = DeviceIdentifier(row.imei, row.meid, row.serial, row.manufacturer, row.model)
    return Device(row.id, identifier, loads(row.metadata) if row.metadata else {}, its_claims)


async def get_devices(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, Device]:
    found_claims: dict[int, list[Claim]] = {}
    rows: list[Any] = []
    for chunk in _chunks(list(ids)):
        rows += list(await conn.execute(select(devices).where(devices.c.id.in_(chunk))))
        for c in await conn.execute(select(claims).where(claims.c.device_id.in_(chunk))):
            found_claims.setdefault(c.device_id, []).append(_claim(c))
    return {row.id: _device(row, tuple(found_claims.get(row.id, ()))) for row in rows}


# -- claims --------------------------------------------------------------------------------------


def _claim(row: Any) -> Claim:
    params = loads(row.vendor_params) if row.vendor_params else {}
    return Claim(SectionType(row.section), row.customer_id, row.partner_id, row.order_number, params)


async def claims_of(
    conn: AsyncConnection, device_ids: Sequence[int], section: SectionType
) -> dict[int, Claim]:
    found: dict[int, Claim] = {}
    for chunk in _chunks(list(set(device_ids))):
        stmt = select(claims).where(claims.c.device_id.in_(chunk), claims.c.section == section.value)
        for row in await conn.execute(stmt):
            found[row.device_id] = _claim(row)
    return found


async def upsert_claims(conn: AsyncConnection, rows: Sequence[tuple[int, Claim]]) -> None:
    """Write new claims: the batch only claims devices it found unclaimed, so an existing row
    means a concurrent claim, which must not be overwritten (``ConcurrentWrite``)."""
    if not rows:
        return
    values = [
        {
            "device_id": device_id,
            "section": c.section_type.value,
            "customer_id": c.customer_id,
            "partner_id": c.partner_id,
            "order_number": c.order_number,
            "vendor_params": dumps(c.vendor_params) if c.vendor_params else None,
        }
        for device_id, c in rows
    ]
    stmt = insert_for(conn, claims).on_conflict_do_nothing(
        index_elements=[claims.c.device_id, claims.c.section]
    )
    result = await conn.execute(stmt.returning(claims.c.device_id), values)
    if len(result.all()) != len(values):
        raise ConcurrentWrite("a device was claimed concurrently")


async def delete_claims(conn: AsyncConnection, device_ids: Sequence[int], section: SectionType) -> None:
    for chunk in _chunks(list(device_ids)):
        await conn.execute(
            delete(claims).where(claims.c.device_id.in_(chunk), claims.c.section == section.value)
        )


async def clear_metadata_of_unowned(conn: AsyncConnection, device_ids: Sequence[int]) -> None:
    """Drop the reseller metadata of those of ``device_ids`` no claim holds any more."""
    for chunk in _chunks(list(device_ids)):
        still_claimed = select(claims.c.device_id).where(claims.c.device_id == devices.c.id).exists()
        await conn.execute(
            update(devices).where(devices.c.id.in_(chunk), ~still_claimed).values(metadata=None)
        )


# -- finding -------------------------------------------------------------------------------------


async def find_by_owner(
    conn: AsyncConnection,
    partner_id: int,
    customer_ids: Sequence[int],
    section: SectionType,
    after: int | None,
    limit: int,
) -> tuple[list[int], int]:
    """Device ids claimed for these customers (in this partner's claims), a page and the total."""
    cond = and_(
        claims.c.partner_id == partner_id,
        claims.c.customer_id.in_(list(customer_ids)),
        claims.c.section == section.value,
    )
    total = int((await conn.execute(select(func.count()).select_from(claims).where(cond))).scalar_one())
    stmt = select(claims.c.device_id).where(cond)
    if after is not None:
        stmt = stmt.where(claims.c.device_id > after)
    rows = await conn.execute(stmt.order_by(claims.c.device_id).limit(limit))
    return [row.device_id for row in rows], total


async def find_by_identifier(
    conn: AsyncConnection, partner_id: int, identifier: DeviceIdentifier, after: int | None, limit: int
) -> tuple[list[int], int]:
    """Devices the partner has claimed that match every field given (manufacturer case-folded)."""
    cond: list[Any] = [devices.c.id.in_(select(claims.c.device_id).where(claims.c.partner_id == partner_id))]
    for column, value in ((devices.c.imei, identifier.imei), (devices.c.serial, identifier.serial_number)):
        if value:
            cond.append(column == value)
    if identifier.meid:
        # The 15th digit of an MEID is an optional check digit: match on the 14 that name it.
        cond.append(func.substr(devices.c.meid, 1, 14) == identifier.meid.strip().upper()[:14])
    if identifier.manufacturer:
        cond.append(func.lower(devices.c.manufacturer) == identifier.manufacturer.casefold())
    if identifier.model:
        cond.append(func.lower(devices.c.model) == identifier.model.casefold())
    where = and_(*cond)
    total = int((await conn.execute(select(func.count()).select_from(devices).where(where))).scalar_one())
    stmt = select(devices.c.id).where(where)
    if after is not None:
        stmt = stmt.where(devices.c.id > after)
    rows = await conn.execute(stmt.order_by(devices.c.id).limit(limit))
    return [row.id for row in rows], total
