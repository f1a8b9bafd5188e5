"""The audit trail: who is acting (carried from the edge), recording, reading, retention.

**Why a context variable.** Every write path records who did it and from where, but the services
take domain values only and know no request. Passing an ``AuditContext`` into every service
method would change some forty signatures and every caller for a value none of them uses except
to hand on. So the edge sets it once: the HTTP middleware (``api/audit_edge.py``: request id,
client address, transport), the MQTT session for each request, the CLI for each command (the OS
user); whoever authenticates a caller names the actor (``identify``: the DPS service API's
policy check, ``ClaimsService.authenticate``, ``SphereService.authenticate``). A context
variable is per task and copied into the tasks a request spawns (a custom allocation finishing
later still has its request's id); code running outside any request (the worker, start-up) acts
as ``SYSTEM``. The same mechanism already carries the TLS client chain (``tls/front.py``).

``record`` is the one line a write path adds, inside its own transaction: the entry commits or
rolls back with the change.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.audit import SYSTEM, Actor, AuditContext, AuditEntry, AuditFilter, Detail, Outcome
from provisiond.domain.clock import Clock, utc_now
from provisiond.store import audit as repo
from provisiond.store.db import Database

__all__ = [
    "AuditService",
    "Change",
    "Retention",
    "acting",
    "begin",
    "current",
    "identify",
    "record",
    "record_all",
]

_NOBODY = AuditContext()  # outside any request or command: provisiond itself
_current: ContextVar[AuditContext] = ContextVar("provisiond_audit")

EXPORT_BATCH = 5000


def current() -> AuditContext:
    """Who is acting in this task, and from where."""
    return _current.get(_NOBODY)


@contextlib.contextmanager
def acting(context: AuditContext) -> Iterator[None]:
    """Act as ``context`` for the block (a request, a CLI command, an MQTT request)."""
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)


def begin(context: AuditContext) -> None:
    """Act as ``context`` for the rest of this task (a task per request: an MQTT request)."""
    _current.set(context)


def identify(actor: Actor) -> None:
    """Name the authenticated caller for the rest of this task (the request's origin is kept)."""
    _current.set(replace(current(), actor=actor))


async def record(
    conn: AsyncConnection,
    action: str,
    target: str,
    outcome: Outcome | str = Outcome.SUCCESS,
    *,
    details: Mapping[str, Detail] | None = None,
    actor: Actor | None = None,
    at: datetime | None = None,
    source: str | None = None,
) -> None:
    """Append one entry in ``conn``'s transaction, as the current actor (and from the current
    source address) unless the caller names them."""
    context = current()
    merged = dict(details or {})
    if context.transport is not None:
        merged.setdefault("transport", context.transport.value)
    entry = AuditEntry(
        time=at or utc_now(),
        actor=actor or context.actor,
        action=action,
        target=target,
        outcome=outcome,
        request_id=context.request_id,
        source=source or context.source,
        details=merged,
    )
    await repo.insert_entry(conn, entry)


@dataclass(frozen=True, slots=True)
class Change:
    """One entry to record, by the current actor (``record_all``)."""

    action: str
    target: str
    outcome: Outcome | str = Outcome.SUCCESS
    details: Mapping[str, Detail] | None = None
    at: datetime | None = None


async def record_all(conn: AsyncConnection, changes: Sequence[Change]) -> None:
    """Append several entries with one statement: a bulk request's items (one round trip, not
    one per item, so auditing does not halve the rate of bulk writes)."""
    if not changes:
        return
    context = current()
    transport = {"transport": context.transport.value} if context.transport is not None else {}
    now = utc_now()
    entries = [
        AuditEntry(
            time=change.at or now,
            actor=context.actor,
            action=change.action,
            target=change.target,
            outcome=change.outcome,
            request_id=context.request_id,
            source=context.source,
            details={**(change.details or {}), **transport},
        )
        for change in changes
    ]
    await repo.insert_entries(conn, entries)


@dataclass
class AuditService:
    """What operators read: a filtered list, and an export that streams any number of entries."""

    db: Database

    async def entries(self, selection: AuditFilter, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` entries that match, newest first."""
        async with self.db.read() as conn:
            return await repo.list_entries(conn, selection, limit)

    async def export(self, since: datetime | None = None) -> AsyncIterator[AuditEntry]:
        """Every entry since ``since``, oldest first, read in keyset batches of ``EXPORT_BATCH``,
        each in its own short read transaction: memory stays constant and no transaction stays
        open for the length of a million-row export (a SQLite reader would hold back the WAL)."""
        after = -1
        while True:
            async with self.db.read() as conn:
                batch = await repo.entries_after(conn, after, since, EXPORT_BATCH)
            for entry in batch:
                yield entry
            if len(batch) < EXPORT_BATCH:
                return
            assert batch[-1].seq is not None
            after = batch[-1].seq


@dataclass
class Retention:
    """Deletes entries older than ``days`` (the one delete of the trail), at most once per ``every``.

    Run by the operation worker (in ``serve``'s process and in ``provisiond worker``): at its
    start and then hourly. A pass that deletes anything records how many, as ``SYSTEM``.
    """

    db: Database
    days: int
    clock: Clock = utc_now
    every: timedelta = timedelta(hours=1)
    _next: datetime | None = None

    async def prune_if_due(self) -> int | None:
        """Prune when a pass is due; the number deleted, or ``None`` when none was due."""
        now = self.clock()
        if self._next is not None and now < self._next:
            return None
        self._next = now + self.every
        return await self.prune()

    async def prune(self, batch: int = 5000) -> int:
        """Delete every entry older than the retention, now, ``batch`` entries a transaction
        (each short, so registrations queue behind none of them for long); one ``audit.prune``
        entry records the total."""
        now = self.clock()
        cutoff = now - timedelta(days=self.days)
        deleted = 0
        while True:
            async with self.db.write() as conn:
                gone = await repo.delete_before(conn, cutoff, batch)
            deleted += gone
            if gone < batch:
                break
        async with self.db.write() as conn:
            if deleted:
                await record(
                    conn,
                    "audit.prune",
                    "audit",
                    details={"deleted": deleted, "before": cutoff.isoformat(), "retentionDays": self.days},
                    actor=SYSTEM,
                    at=now,
                )
        return deleted
