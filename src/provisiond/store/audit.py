"""The audit trail's one table: appended to, read, and pruned by retention, never updated.

``delete_before`` is the only statement that removes rows (retention); no statement here
updates one (tests/store/test_audit.py holds the module to that).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond import jsontext
from provisiond.domain.audit import Actor, AuditEntry, AuditFilter
from provisiond.store.tables import audit_entries

__all__ = ["delete_before", "entries_after", "insert_entries", "insert_entry", "list_entries"]


def _row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "time": entry.time,
        "actor": str(entry.actor)[:200],
        "action": entry.action,
        "target": entry.target[:255],
        "outcome": str(entry.outcome),
        "request_id": entry.request_id,
        "source": entry.source[:64] if entry.source else None,  # the column's width
        "details": jsontext.dumps(dict(entry.details)) if entry.details else None,
    }


async def insert_entry(conn: AsyncConnection, entry: AuditEntry) -> None:
    await conn.execute(insert(audit_entries).values(**_row(entry)))


async def insert_entries(conn: AsyncConnection, entries: Sequence[AuditEntry]) -> None:
    """Several entries in one statement (executemany), in order."""
    await conn.execute(insert(audit_entries), [_row(entry) for entry in entries])


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        time=row.time,
        actor=Actor.parse(row.actor),
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        request_id=row.request_id,
        source=row.source,
        details=jsontext.loads(row.details) if row.details else {},
        seq=row.id,
    )


async def list_entries(conn: AsyncConnection, selection: AuditFilter, limit: int) -> list[AuditEntry]:
    """The newest ``limit`` entries matching ``selection``, newest first."""
    stmt = select(audit_entries)
    if selection.since is not None:
        stmt = stmt.where(audit_entries.c.time >= selection.since)
    if selection.actor:
        wanted = selection.actor
        stmt = stmt.where(
            audit_entries.c.actor == wanted
            if ":" in wanted
            else audit_entries.c.actor.startswith(f"{wanted}:", autoescape=True)
        )
    if selection.action:
        stmt = stmt.where(
            or_(
                audit_entries.c.action == selection.action,
                audit_entries.c.action.startswith(f"{selection.action}.", autoescape=True),
            )
        )
    if selection.target:
        stmt = stmt.where(audit_entries.c.target == selection.target)
    rows = await conn.execute(stmt.order_by(audit_entries.c.id.desc()).limit(limit))
    return [_entry(row) for row in rows]


async def entries_after(
    conn: AsyncConnection, after_seq: int, since: datetime | None, limit: int
) -> list[AuditEntry]:
    """Up to ``limit`` entries after ``after_seq`` in order (a keyset page of the export)."""
    stmt = select(audit_entries).where(audit_entries.c.id > after_seq)
    if since is not None:
        stmt = stmt.where(audit_entries.c.time >= since)
    rows = await conn.execute(stmt.order_by(audit_entries.c.id).limit(limit))
    return [_entry(row) for row in rows]


async def delete_before(conn: AsyncConnection, cutoff: datetime, limit: int) -> int:
    """Retention: delete up to ``limit`` of the oldest entries before ``cutoff``; how many went.

    Bounded, so each pass holds the write lock briefly (SQLite has one writer): the first
    pass after retention is turned on over years of entries is many short transactions.
    """
    oldest = (
        select(audit_entries.c.id)
        .where(audit_entries.c.time < cutoff)
        .order_by(audit_entries.c.id)
        .limit(limit)
    )
    ids = list((await conn.execute(oldest)).scalars())
    if not ids:
        return 0
    result = await conn.execute(delete(audit_entries).where(audit_entries.c.id.in_(ids)))
    return int(result.rowcount or 0)
