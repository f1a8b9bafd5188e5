"""What the operation worker does with a batch of each kind of operation: one row per kind.

The worker owns what every operation shares (lease, batches, results, counters); a row of
``BATCHES`` says how a batch of one kind is read (outside the transaction, so decoding thousands
of items does not hold the SQLite write lock) and applied (inside it). A new kind of operation is
a new row here, not a new branch in the worker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.claims import MAX_ITEMS, Item, ItemResult, Operation, OperationKind
from provisiond.domain.device_identifiers import ManufacturerRules
from provisiond.services.claim_batches import apply_batch
from provisiond.services.sphere_batches import apply_sphere_batch
from provisiond.store.operation_codec import load_claim_item

__all__ = ["BATCHES", "Batch", "ReadBatch", "device_id_for"]


class Batch(Protocol):
    """A batch of pending items, read and ready to apply."""

    async def apply(self, conn: AsyncConnection, now: datetime) -> list[ItemResult]:
        """Decide and write every item in ``conn``'s transaction; one result per item, in order."""
        ...


# (operation, its pending (seq, stored item) pairs in order, the manufacturer rules) -> a batch
ReadBatch = Callable[[Operation, Sequence[tuple[int, str]], ManufacturerRules], Batch]


def device_id_for(operation_id: int, seq: int) -> int:
    """The id item ``seq`` of an operation gives a device it creates: the same on every replay."""
    return operation_id * MAX_ITEMS + seq + 1


@dataclass(frozen=True, slots=True)
class _ClaimsBatch:
    """Zero-touch and reseller-model items: claims, unclaims and metadata updates."""

    op: Operation
    items: list[Item]
    new_ids: list[int]
    rules: ManufacturerRules

    async def apply(self, conn: AsyncConnection, now: datetime) -> list[ItemResult]:
        vendor = self.op.vendor
        assert vendor is not None  # a partner's operation always names its back end
        return await apply_batch(
            conn, self.op.kind, self.op.owner_id, vendor, self.items, self.rules, self.new_ids
        )


def _claims(op: Operation, pending: Sequence[tuple[int, str]], rules: ManufacturerRules) -> Batch:
    items = [load_claim_item(op.kind, request)[0] for _, request in pending]
    return _ClaimsBatch(op, items, [device_id_for(op.id, seq) for seq, _ in pending], rules)


@dataclass(frozen=True, slots=True)
class _SphereBatch:
    """Azure Sphere items: one device id each, claimed for or released by the tenant."""

    op: Operation
    requests: list[str]

    async def apply(self, conn: AsyncConnection, now: datetime) -> list[ItemResult]:
        return await apply_sphere_batch(conn, self.op.kind, self.op.owner_id, self.requests, now)


def _sphere(op: Operation, pending: Sequence[tuple[int, str]], rules: ManufacturerRules) -> Batch:
    return _SphereBatch(op, [request for _, request in pending])


BATCHES: Mapping[OperationKind, ReadBatch] = {
    OperationKind.CLAIM: _claims,
    OperationKind.UNCLAIM: _claims,
    OperationKind.UPDATE_METADATA: _claims,
    OperationKind.SPHERE_CLAIM: _sphere,
    OperationKind.SPHERE_BULK_CLAIM: _sphere,
    OperationKind.SPHERE_RELEASE: _sphere,
}
