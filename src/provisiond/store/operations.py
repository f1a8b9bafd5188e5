"""Durable operations: the operation row, its items (written once) and results (insert-only).

A worker holds an operation by lease. On PostgreSQL the candidate is picked with
``FOR UPDATE SKIP LOCKED`` so concurrent workers never wait on each other; on both engines the
lease is taken with a conditional UPDATE, so two workers can never both hold one operation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.claims import Operation, OperationKind, OperationState, Owner
from provisiond.domain.device_identifiers import Vendor
from provisiond.store.tables import operation_items, operation_results, operations

__all__ = [
    "count_by_kind_state",
    "finish_batch",
    "get_operation",
    "insert_operation",
    "lease_next",
    "list_operations",
    "pending_items",
    "results",
    "results_page",
]

_ACTIVE = (OperationState.PENDING.value, OperationState.IN_PROGRESS.value)


def _op(row: Any) -> Operation:
    return Operation(
        row.id,
        OperationKind(row.kind),
        row.owner_id,
        Vendor(row.vendor) if row.vendor is not None else None,
        OperationState(row.state),
        row.total,
        row.processed,
        row.succeeded,
        row.created,
        row.started,
        row.completed,
    )


async def insert_operation(conn: AsyncConnection, op: Operation, items: Sequence[str]) -> None:
    """The operation and every item's request JSON, in request order (seq 0…n-1)."""
    await conn.execute(
        insert(operations).values(
            id=op.id,
            kind=op.kind.value,
            owner_kind=op.owner.kind.value,
            owner_id=op.owner_id,
            vendor=op.vendor.value if op.vendor is not None else None,
            state=op.state.value,
            total=op.total,
            processed=op.processed,
            succeeded=op.succeeded,
            created=op.created,
            started=op.started,
            completed=op.completed,
        )
    )
    if items:
        await conn.execute(
            insert(operation_items),
            [{"operation_id": op.id, "seq": i, "request": r} for i, r in enumerate(items)],
        )


async def get_operation(conn: AsyncConnection, operation_id: int) -> Operation | None:
    row = (await conn.execute(select(operations).where(operations.c.id == operation_id))).first()
    return _op(row) if row else None


async def lease_next(conn: AsyncConnection, worker: str, now: datetime, until: datetime) -> Operation | None:
    """Take the oldest active operation whose lease is free or expired; ``None`` if there is none."""
    candidate = (
        select(operations.c.id)
        .where(
            operations.c.state.in_(_ACTIVE),
            or_(operations.c.lease_until.is_(None), operations.c.lease_until < now),
        )
        .order_by(operations.c.id)
        .limit(1)
    )
    if conn.dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    op_id = (await conn.execute(candidate)).scalar()
    if op_id is None:
        return None
    taken = await conn.execute(
        update(operations)
        .where(
            operations.c.id == op_id,
            operations.c.state.in_(_ACTIVE),
            or_(operations.c.lease_until.is_(None), operations.c.lease_until < now),
        )
        .values(
            lease_owner=worker,
            lease_until=until,
            state=OperationState.IN_PROGRESS.value,
            started=func.coalesce(operations.c.started, now),
        )
    )
    if taken.rowcount != 1:
        return None
    return await get_operation(conn, op_id)


async def pending_items(
    conn: AsyncConnection, operation_id: int, after_seq: int, limit: int
) -> list[tuple[int, str]]:
    """The next items without a result, in order, after ``after_seq``."""
    done = select(operation_results.c.seq).where(
        operation_results.c.operation_id == operation_id, operation_results.c.seq > after_seq
    )
    stmt = (
        select(operation_items.c.seq, operation_items.c.request)
        .where(
            operation_items.c.operation_id == operation_id,
            operation_items.c.seq > after_seq,
            operation_items.c.seq.not_in(done),
        )
        .order_by(operation_items.c.seq)
        .limit(limit)
    )
    return [(row.seq, row.request) for row in await conn.execute(stmt)]


async def finish_batch(
    conn: AsyncConnection,
    operation_id: int,
    worker: str,
    results_json: Sequence[tuple[int, str]],
    succeeded: int,
    now: datetime,
    lease_until: datetime,
) -> bool:
    """Record a batch's results and counters, if this worker still holds the lease.

    ``False`` means the lease was lost (another worker took the operation): the caller rolls
    back, so the batch's effects are not applied twice.
    """
    held = await conn.execute(
        update(operations)
        .where(
            operations.c.id == operation_id,
            operations.c.lease_owner == worker,
            operations.c.state == OperationState.IN_PROGRESS.value,
        )
        .values(
            processed=operations.c.processed + len(results_json),
            succeeded=operations.c.succeeded + succeeded,
            lease_until=lease_until,
        )
    )
    if held.rowcount != 1:
        return False
    if results_json:
        await conn.execute(
            insert(operation_results),
            [{"operation_id": operation_id, "seq": s, "result": r} for s, r in results_json],
        )
    row = (
        await conn.execute(
            select(operations.c.processed, operations.c.succeeded, operations.c.total).where(
                operations.c.id == operation_id
            )
        )
    ).one()
    if row.processed >= row.total:
        state = OperationState.COMPLETE if row.succeeded == row.total else OperationState.COMPLETE_WITH_ERRORS
        await conn.execute(
            update(operations)
            .where(operations.c.id == operation_id)
            .values(state=state.value, completed=now, lease_owner=None, lease_until=None)
        )
    return True


async def results(conn: AsyncConnection, operation_id: int) -> list[tuple[str, str | None]]:
    """Every item's request and result (``None`` until processed), in request order."""
    return await results_page(conn, operation_id, -1, 1 << 30)


async def results_page(
    conn: AsyncConnection, operation_id: int, after_seq: int, limit: int
) -> list[tuple[str, str | None]]:
    stmt = (
        select(operation_items.c.request, operation_results.c.result)
        .select_from(
            operation_items.outerjoin(
                operation_results,
                and_(
                    operation_results.c.operation_id == operation_items.c.operation_id,
                    operation_results.c.seq == operation_items.c.seq,
                ),
            )
        )
        .where(operation_items.c.operation_id == operation_id, operation_items.c.seq > after_seq)
        .order_by(operation_items.c.seq)
        .limit(limit)
    )
    return [(row.request, row.result) for row in await conn.execute(stmt)]


async def list_operations(
    conn: AsyncConnection,
    owner: Owner,
    kinds: Sequence[OperationKind] | None,
    states: Sequence[OperationState] | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[Operation], int]:
    """A page of the owner's operations in id order after ``after_id``, and their total."""
    cond: list[Any] = [operations.c.owner_kind == owner.kind.value, operations.c.owner_id == owner.id]
    if kinds:
        cond.append(operations.c.kind.in_([k.value for k in kinds]))
    if states:
        cond.append(operations.c.state.in_([s.value for s in states]))
    where = and_(*cond)
    total = int((await conn.execute(select(func.count()).select_from(operations).where(where))).scalar_one())
    stmt = select(operations).where(where)
    if after_id is not None:
        stmt = stmt.where(operations.c.id > after_id)
    return [_op(row) for row in await conn.execute(stmt.order_by(operations.c.id).limit(limit))], total


async def count_by_kind_state(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """How many operations there are of each kind in each state (``/metrics``)."""
    grouped = select(operations.c.kind, operations.c.state, func.count()).group_by(
        operations.c.kind, operations.c.state
    )
    return {(kind, state): count for kind, state, count in await conn.execute(grouped)}
