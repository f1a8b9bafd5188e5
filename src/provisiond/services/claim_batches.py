"""Applying a batch of claim, unclaim or metadata items: the one place that writes ownership.

Used by the operation worker (batches of thousands) and by the synchronous calls (a batch of one),
so both follow exactly the same rules. Items are decided in request order against what the store
holds plus what earlier items of the batch did; then every table is written with one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.claims import (
    Claim,
    ClaimItem,
    Item,
    ItemResult,
    ItemStatus,
    OperationKind,
    SectionType,
    UnclaimItem,
    UpdateItem,
    decide_claim,
    decide_owned,
)
from provisiond.domain.device_identifiers import (
    DeviceIdentifier,
    InvalidDeviceIdentifier,
    ManufacturerRules,
    Vendor,
    lookup_keys,
    validate,
)
from provisiond.store import claims as repo

__all__ = ["apply_batch"]


@dataclass
class _Batch:
    """What the batch has decided so far, on top of what the store holds."""

    keys: dict[str, int] = field(default_factory=dict)  # lookup key -> device id
    claims: dict[int, Claim | None] = field(default_factory=dict)
    new_devices: dict[int, DeviceIdentifier] = field(default_factory=dict)
    new_keys: list[tuple[str, int]] = field(default_factory=list)
    claim_writes: dict[int, Claim] = field(default_factory=dict)
    claim_deletes: set[int] = field(default_factory=set)
    metadata: dict[int, dict[str, str]] = field(default_factory=dict)


def _key(parts: tuple[str, ...]) -> str:
    return "|".join(parts)


async def apply_batch(
    conn: AsyncConnection,
    kind: OperationKind,
    partner_id: int,
    vendor: Vendor,
    items: Sequence[Item],
    rules: ManufacturerRules,
    new_ids: Sequence[int],
) -> list[ItemResult]:
    """Decide and write every item of the batch; return one result per item, in order.

    ``new_ids[i]`` is the id item ``i`` gives a device it creates. The worker derives it from the
    operation and the item's position, so a batch replayed after a crash creates the same ids:
    the results of a crashed run equal those of an uncrashed one.
    """
    customers = await repo.get_customers(
        conn, [i.customer_id for i in items if isinstance(i, ClaimItem) and i.customer_id is not None]
    )
    prepared: list[tuple[DeviceIdentifier | None, list[str], ItemResult | None]] = []
    for item in items:
        identifier = item.identifier
        if identifier is None:
            prepared.append((None, [], None))
            continue
        item_vendor = vendor
        if isinstance(item, ClaimItem) and item.customer_id in customers:
            item_vendor = customers[item.customer_id].vendor
        try:
            normal = validate(identifier, item_vendor, rules)
        except InvalidDeviceIdentifier as exc:
            prepared.append(
                (None, [], ItemResult(ItemStatus.INVALID_IDENTIFIER, code=exc.code, message=exc.message))
            )
            continue
        prepared.append((normal, [_key(k) for k in lookup_keys(normal, item_vendor)], None))

    state = _Batch(keys=await repo.device_ids_by_keys(conn, [k for _, keys, _ in prepared for k in keys]))
    known = {d for d in state.keys.values()} | {
        i.device_id for i in items if not isinstance(i, ClaimItem) and i.device_id is not None
    }
    section = (
        items[0].section_type if items and not isinstance(items[0], UpdateItem) else SectionType.ZERO_TOUCH
    )
    state.claims.update(await repo.claims_of(conn, list(known), section))
    existing = await repo.get_devices(
        conn, [i.device_id for i in items if not isinstance(i, ClaimItem) and i.device_id is not None]
    )

    out: list[ItemResult] = []
    for item, new_id, (identifier, keys, early) in zip(items, new_ids, prepared, strict=True):
        if early is not None:
            out.append(early)
            continue
        found = {state.keys[k] for k in keys if k in state.keys}
        if not isinstance(item, ClaimItem) and item.device_id is not None and item.device_id in existing:
            found.add(item.device_id)
        if isinstance(item, ClaimItem):
            customer = customers.get(item.customer_id or -1)
            out.append(_claim(state, partner_id, item, identifier, keys, found, customer, new_id))
        else:
            out.append(_owned(state, partner_id, item, found))

    await _write(conn, state, section)
    return out


def _claim(
    state: _Batch,
    partner_id: int,
    item: ClaimItem,
    identifier: DeviceIdentifier | None,
    keys: list[str],
    found: set[int],
    customer: Any,
    new_id: int,
) -> ItemResult:
    device_id = next(iter(found)) if len(found) == 1 else None
    current = state.claims.get(device_id) if device_id is not None else None
    refused = decide_claim(partner_id, customer, found, current, item.section_type)
    if refused is not None:
        return refused
    if device_id is None:
        device_id = new_id
        assert identifier is not None
        state.new_devices[device_id] = identifier
    for key in keys:  # the record gains every key the request carries
        if key not in state.keys:
            state.keys[key] = device_id
            state.new_keys.append((key, device_id))
    claim = Claim(item.section_type, item.customer_id or 0, partner_id, item.order_number, item.vendor_params)
    state.claims[device_id] = claim
    state.claim_writes[device_id] = claim
    if item.metadata is not None:
        state.metadata[device_id] = item.metadata
    return ItemResult(ItemStatus.SUCCESS, device_id)


def _owned(state: _Batch, partner_id: int, item: UnclaimItem | UpdateItem, found: set[int]) -> ItemResult:
    device_id = next(iter(found)) if len(found) == 1 else None
    current = state.claims.get(device_id) if device_id is not None else None
    refused = decide_owned(partner_id, found, current)
    if refused is not None:
        return refused
    assert device_id is not None
    if isinstance(item, UnclaimItem):
        state.claims[device_id] = None
        state.claim_writes.pop(device_id, None)
        state.claim_deletes.add(device_id)
    else:
        state.metadata[device_id] = item.metadata
    return ItemResult(ItemStatus.SUCCESS, device_id)


async def _write(conn: AsyncConnection, state: _Batch, section: SectionType) -> None:
    """Write the batch's effects, one statement per table."""
    await repo.insert_devices(conn, list(state.new_devices.items()))
    await repo.insert_keys(conn, state.new_keys)
    # Deletes first: a device unclaimed and claimed again in one batch ends with the new claim.
    await repo.delete_claims(conn, sorted(state.claim_deletes), section)
    await repo.upsert_claims(conn, list(state.claim_writes.items()))
    # A reseller's metadata describes the device for the customer it was claimed for: a device
    # released by its last claim loses it, so the next owner (another partner, maybe) never
    # reads it. A device still claimed in another section keeps it.
    await repo.clear_metadata_of_unowned(conn, sorted(state.claim_deletes))
    for device_id, entries in state.metadata.items():
        await repo.set_metadata(conn, device_id, entries)
