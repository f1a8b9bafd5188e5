"""Device registration state rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.enrollments import ANY_ETAG
from provisiond.domain.registration_ids import id_key
from provisiond.domain.registrations import OperationStatus, RegistrationOperation, RegistrationState
from provisiond.store.codec import dump_operation, dump_state, load_operation, load_state
from provisiond.store.engine_specific import prebuilt
from provisiond.store.tables import registration_operations as ops
from provisiond.store.tables import registration_states as t

__all__ = [
    "delete_state",
    "finish_operation",
    "get_operation",
    "get_state",
    "get_state_etag",
    "insert_operation",
    "page_states_of_group",
    "pending_operations",
    "pending_operations_of",
    "put_state",
    "set_poll_not_before",
]

_COLUMNS = (t.c.etag, t.c.created, t.c.updated, t.c.doc)


def _load(row: Any) -> RegistrationState:
    return load_state(row.etag, row.created, row.updated, row.doc)


_GET_STATE = select(*_COLUMNS).where(t.c.key == bindparam("key"))


async def get_state(conn: AsyncConnection, key: str) -> RegistrationState | None:
    row = (await conn.execute(_GET_STATE, {"key": key})).first()
    return _load(row) if row else None


async def get_state_etag(conn: AsyncConnection, key: str) -> str | None:
    return (await conn.execute(select(t.c.etag).where(t.c.key == key))).scalar()


async def delete_state(conn: AsyncConnection, key: str, if_match: str | None) -> bool:
    cond = [t.c.key == key]
    if if_match is not None and if_match != ANY_ETAG:
        cond.append(t.c.etag == if_match)
    return (await conn.execute(delete(t).where(and_(*cond)))).rowcount == 1


async def page_states_of_group(
    conn: AsyncConnection, group_key: str, after_key: str | None, limit: int
) -> Sequence[RegistrationState]:
    """Registration states of one enrollment group, in key order after ``after_key``."""
    stmt = select(*_COLUMNS).where(t.c.group_key == group_key)
    if after_key is not None:
        stmt = stmt.where(t.c.key > after_key)
    return [_load(row) for row in await conn.execute(stmt.order_by(t.c.key).limit(limit))]


async def put_state(conn: AsyncConnection, state: RegistrationState, group_key: str | None) -> None:
    """Create or replace the registration state of a device."""
    values = {
        "key": id_key(state.registration_id),
        "group_key": group_key,
        "etag": state.etag,
        "created": state.created,
        "updated": state.updated,
        "doc": dump_state(state),
    }
    await conn.execute(prebuilt(conn, _upsert_state), values)


def _upsert_state(dialect: Any) -> Any:
    ins = dialect.insert(t)
    return ins.on_conflict_do_update(
        index_elements=[t.c.key],
        set_={
            "group_key": ins.excluded.group_key,
            "etag": ins.excluded.etag,
            "updated": ins.excluded.updated,
            "doc": ins.excluded.doc,
        },
    )


_OP_COLUMNS = (
    ops.c.operation_id,
    ops.c.status,
    ops.c.created,
    ops.c.updated,
    ops.c.poll_not_before,
    ops.c.doc,
)


def _load_op(row: Any) -> RegistrationOperation:
    return load_operation(
        row.operation_id, row.status, row.created, row.updated, row.poll_not_before, row.doc
    )


async def insert_operation(conn: AsyncConnection, op: RegistrationOperation) -> None:
    await conn.execute(
        _INSERT_OP,
        {
            "operation_id": op.operation_id,
            "registration_key": id_key(op.registration_id),
            "status": op.status.value,
            "created": op.created,
            "updated": op.updated,
            "poll_not_before": op.poll_not_before,
            "doc": dump_operation(op),
        },
    )


_INSERT_OP = insert(ops)
_GET_OP = select(*_OP_COLUMNS).where(ops.c.operation_id == bindparam("operation_id"))


async def get_operation(conn: AsyncConnection, operation_id: str) -> RegistrationOperation | None:
    row = (await conn.execute(_GET_OP, {"operation_id": operation_id})).first()
    return _load_op(row) if row else None


async def finish_operation(conn: AsyncConnection, op: RegistrationOperation) -> bool:
    """Record a pending operation's result, only if it is still pending (the result is written once)."""
    result = await conn.execute(
        update(ops)
        .where(ops.c.operation_id == op.operation_id, ops.c.status == OperationStatus.ASSIGNING.value)
        .values(status=op.status.value, updated=op.updated, poll_not_before=None, doc=dump_operation(op))
    )
    return result.rowcount == 1


async def set_poll_not_before(conn: AsyncConnection, operation_id: str, when: datetime) -> None:
    await conn.execute(update(ops).where(ops.c.operation_id == operation_id).values(poll_not_before=when))


async def pending_operations(conn: AsyncConnection) -> list[RegistrationOperation]:
    """Operations still ``assigning`` (custom allocation interrupted by a restart, or running)."""
    rows = await conn.execute(select(*_OP_COLUMNS).where(ops.c.status == OperationStatus.ASSIGNING.value))
    return [_load_op(row) for row in rows]


async def pending_operations_of(conn: AsyncConnection, registration_key: str) -> list[RegistrationOperation]:
    """One registration's operations still ``assigning`` (a newer one or a deprovision supersedes them)."""
    rows = await conn.execute(
        select(*_OP_COLUMNS).where(
            ops.c.registration_key == registration_key, ops.c.status == OperationStatus.ASSIGNING.value
        )
    )
    return [_load_op(row) for row in rows]
