"""Applying a batch of Sphere claim or release items: the one place that writes Sphere ownership.

The operation worker calls it for every batch of a Sphere operation, inside the transaction that
also records the batch's results, and the operator's release calls it for a batch of one. Items
are decided in request order against the store plus what earlier items of the batch did, then
written with conditional statements; an item whose device another transaction took between the
read and the write (PostgreSQL, concurrent workers) is decided again against the new owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.claims import ItemResult, ItemStatus, OperationKind
from provisiond.domain.sphere import CONFLICT, decide_claim, decide_release
from provisiond.store import sphere as repo
from provisiond.store.operation_codec import load_sphere_item

__all__ = ["apply_sphere_batch"]

_TAKEN_MEANWHILE = ItemResult(
    ItemStatus.SECTION_NOT_YOURS, code=CONFLICT, message="the device was claimed by another tenant"
)


async def apply_sphere_batch(
    conn: AsyncConnection, kind: OperationKind, owner_id: int, requests: Sequence[str], now: datetime
) -> list[ItemResult]:
    """Decide and write every item (``requests``: the items as stored, one device id each); one
    result per item, in order. Replaying a batch against the same store state (a crash rolled it
    back) gives the same results."""
    device_ids = [load_sphere_item(r) for r in requests]
    if kind is OperationKind.SPHERE_RELEASE:
        return await _release(conn, owner_id, device_ids)
    return await _claim(conn, owner_id, device_ids, now)


async def _claim(
    conn: AsyncConnection, owner_id: int, device_ids: list[str], now: datetime
) -> list[ItemResult]:
    owners = await repo.owners_of(conn, device_ids)
    decided: list[ItemResult | None] = []
    to_claim: list[str] = []
    for device_id in device_ids:
        refused = decide_claim(owner_id, owners.get(device_id))
        if refused is None:
            owners[device_id] = owner_id  # a later item naming it again finds it claimed
            to_claim.append(device_id)
        decided.append(refused)
    # Sorted, so that concurrent transactions (PostgreSQL) lock devices in the same order and
    # cannot deadlock on each other's uncommitted rows.
    taken = await repo.claim_free(conn, sorted(to_claim), owner_id, now)
    lost = {d for d in to_claim if d not in taken}
    if lost:
        owners.update(await repo.owners_of(conn, list(lost)))
    out: list[ItemResult] = []
    for device_id, refused in zip(device_ids, decided, strict=True):
        if device_id in lost:
            out.append(decide_claim(owner_id, owners.get(device_id)) or _TAKEN_MEANWHILE)
        elif refused is not None:
            out.append(refused)
        else:
            out.append(ItemResult(ItemStatus.SUCCESS))
    return out


async def _release(conn: AsyncConnection, owner_id: int, device_ids: list[str]) -> list[ItemResult]:
    owners = await repo.owners_of(conn, device_ids)
    out: list[ItemResult] = []
    for device_id in device_ids:
        refused = decide_release(owner_id, owners.get(device_id))
        if refused is None and not await repo.release(conn, device_id, owner_id):
            refused = decide_release(owner_id, None)  # released by another transaction meanwhile
        if refused is None:
            owners[device_id] = None  # a later item naming it again finds it released
            out.append(ItemResult(ItemStatus.SUCCESS))
        else:
            out.append(refused)
    return out
