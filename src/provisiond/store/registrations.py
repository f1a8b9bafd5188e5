"""Device registration state rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.enrollments import ANY_ETAG
from provisiond.domain.registrations import RegistrationState
from provisiond.store.codec import load_state
from provisiond.store.tables import registration_states as t

__all__ = ["delete_state", "get_state", "get_state_etag", "page_states_of_group"]

_COLUMNS = (t.c.etag, t.c.created, t.c.updated, t.c.doc)


def _load(row: Any) -> RegistrationState:
    return load_state(row.etag, row.created, row.updated, row.doc)


async def get_state(conn: AsyncConnection, key: str) -> RegistrationState | None:
    row = (await conn.execute(select(*_COLUMNS).where(t.c.key == key))).first()
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
