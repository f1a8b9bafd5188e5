"""Enrollment rows: reads, keyset pages and single-statement conditional writes.

Every write that depends on the current version (If-Match) is one statement with the etag in its
WHERE clause, so two racing writers can never both succeed and no read-then-write window exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.enrollments import ANY_ETAG, Enrollment, EnrollmentKind
from provisiond.store.codec import dump_enrollment, load_enrollment
from provisiond.store.db import keyring_of
from provisiond.store.engine_specific import insert_for, prebuilt
from provisiond.store.keyring import Keyring
from provisiond.store.tables import enrollments as t

__all__ = [
    "delete_enrollment",
    "get_enrollment",
    "get_enrollment_etag",
    "insert_enrollment",
    "insert_enrollments",
    "page_enrollments",
    "update_enrollment",
    "upsert_enrollment",
]

_COLUMNS = (t.c.kind, t.c.key, t.c.etag, t.c.created, t.c.updated, t.c.doc)


def _load(keyring: Keyring, row: Any) -> Enrollment:
    # The row's columns are _COLUMNS, in load_enrollment's order; unpacking a row is much
    # cheaper than six lookups by name.
    return load_enrollment(keyring, *row)


def _values(keyring: Keyring, e: Enrollment) -> dict[str, Any]:
    doc, sealed_with = dump_enrollment(e, keyring)
    return {
        "kind": e.kind.value,
        "key": e.key,
        "etag": e.etag,
        "created": e.created,
        "updated": e.updated,
        "doc": doc,
        "sealed_with": sealed_with,
    }


_GET = select(*_COLUMNS).where(t.c.kind == bindparam("kind"), t.c.key == bindparam("key"))


def _insert(dialect: Any) -> Any:
    return dialect.insert(t).on_conflict_do_nothing(index_elements=[t.c.kind, t.c.key])


async def get_enrollment(conn: AsyncConnection, kind: EnrollmentKind, key: str) -> Enrollment | None:
    row = (await conn.execute(_GET, {"kind": kind.value, "key": key})).first()
    return _load(keyring_of(conn), row) if row else None


async def get_enrollment_etag(conn: AsyncConnection, kind: EnrollmentKind, key: str) -> str | None:
    """The current etag, or ``None`` when the record does not exist (to explain a refused write)."""
    return (await conn.execute(select(t.c.etag).where(t.c.kind == kind.value, t.c.key == key))).scalar()


async def insert_enrollment(conn: AsyncConnection, e: Enrollment) -> bool:
    """Create; ``False`` when a record with that id exists already."""
    return (await conn.execute(prebuilt(conn, _insert), _values(keyring_of(conn), e))).rowcount == 1


async def insert_enrollments(conn: AsyncConnection, es: Sequence[Enrollment]) -> set[str]:
    """Create many in one statement; the keys actually inserted (the others existed)."""
    stmt = prebuilt(conn, _insert).returning(t.c.key)
    keyring = keyring_of(conn)
    return set((await conn.execute(stmt, [_values(keyring, e) for e in es])).scalars())


async def upsert_enrollment(conn: AsyncConnection, e: Enrollment) -> Enrollment:
    """Create or replace unconditionally, keeping the original creation time on replace."""
    ins = insert_for(conn, t).values(**_values(keyring_of(conn), e))
    stmt = ins.on_conflict_do_update(
        index_elements=[t.c.kind, t.c.key],
        set_={
            "etag": ins.excluded.etag,
            "updated": ins.excluded.updated,
            "doc": ins.excluded.doc,
            "sealed_with": ins.excluded.sealed_with,
        },
    ).returning(t.c.created)
    created = (await conn.execute(stmt)).scalar_one()
    return _with_created(e, created)


async def update_enrollment(conn: AsyncConnection, e: Enrollment, if_match: str) -> Enrollment | None:
    """Replace only if the stored etag is ``if_match`` (or any, for ``*``); ``None`` if refused."""
    cond = [t.c.kind == e.kind.value, t.c.key == e.key]
    if if_match != ANY_ETAG:
        cond.append(t.c.etag == if_match)
    doc, sealed_with = dump_enrollment(e, keyring_of(conn))
    stmt = (
        update(t)
        .where(and_(*cond))
        .values(etag=e.etag, updated=e.updated, doc=doc, sealed_with=sealed_with)
        .returning(t.c.created)
    )
    created = (await conn.execute(stmt)).scalar()
    return _with_created(e, created) if created is not None else None


async def delete_enrollment(
    conn: AsyncConnection, kind: EnrollmentKind, key: str, if_match: str | None
) -> bool:
    """Delete (conditionally when ``if_match`` names a version); report whether a row went."""
    cond = [t.c.kind == kind.value, t.c.key == key]
    if if_match is not None and if_match != ANY_ETAG:
        cond.append(t.c.etag == if_match)
    return (await conn.execute(delete(t).where(and_(*cond)))).rowcount == 1


async def page_enrollments(
    conn: AsyncConnection, kind: EnrollmentKind, after_key: str | None, limit: int
) -> Sequence[Enrollment]:
    """Up to ``limit`` records in key order, strictly after ``after_key`` (keyset paging)."""
    stmt = select(*_COLUMNS).where(t.c.kind == kind.value)
    if after_key is not None:
        stmt = stmt.where(t.c.key > after_key)
    rows = await conn.execute(stmt.order_by(t.c.key).limit(limit))
    keyring = keyring_of(conn)
    return [_load(keyring, row) for row in rows]


def _with_created(e: Enrollment, created: datetime) -> Enrollment:
    return replace(e, created=created)
