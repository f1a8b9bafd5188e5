"""Enrollment use cases: single reads and writes, bulk operations, paged queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.enrollments import Enrollment, EnrollmentKind, normalize_if_match
from provisiond.domain.ids import id_key
from provisiond.domain.query import decode_token, encode_token
from provisiond.errors import AlreadyExists, InvalidInput, NotFound, PreconditionFailed, ProvisiondError
from provisiond.store import enrollments as repo
from provisiond.store.db import Database

__all__ = ["BulkItemFailure", "BulkMode", "EnrollmentService", "ItemRejected", "Page"]

MAX_BULK_ITEMS = 10


class BulkMode(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UPDATE_IF_MATCH_ETAG = "updateIfMatchETag"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class ItemRejected:
    """A bulk item the wire layer could not turn into an enrollment (wrong types, bad values)."""

    id: str
    error: InvalidInput


@dataclass(frozen=True, slots=True)
class BulkItemFailure:
    id: str
    error: ProvisiondError


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    continuation: str | None


class EnrollmentService:
    """Reads and writes individual enrollments and enrollment groups."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def get(self, kind: EnrollmentKind, enrollment_id: str) -> Enrollment:
        async with self._db.read() as conn:
            found = await repo.get_enrollment(conn, kind, id_key(enrollment_id))
        if found is None:
            raise NotFound(f"{kind.value} enrollment {enrollment_id!r} does not exist")
        return found

    async def put(self, enrollment: Enrollment, if_match: str | None) -> Enrollment:
        """Create or replace; with ``if_match`` only the named version may be replaced."""
        record = enrollment.validated().stamped(self._clock())
        async with self._db.write() as conn:
            return await _write(conn, record, normalize_if_match(if_match))

    async def delete(self, kind: EnrollmentKind, enrollment_id: str, if_match: str | None) -> None:
        async with self._db.write() as conn:
            await _delete(conn, kind, enrollment_id, normalize_if_match(if_match))

    async def bulk(
        self, kind: EnrollmentKind, mode: BulkMode, items: Sequence[Enrollment | ItemRejected]
    ) -> list[BulkItemFailure]:
        """Apply each item on its own in one transaction; return the items that failed.

        An item fails by a refused single statement (exists, missing, etag mismatch) or by its
        own validation, never by an exception that would undo the others.
        """
        if len(items) > MAX_BULK_ITEMS:
            raise InvalidInput(f"a bulk operation holds at most {MAX_BULK_ITEMS} items, not {len(items)}")
        now = self._clock()
        failures: list[BulkItemFailure] = []
        async with self._db.write() as conn:
            for item in items:
                if isinstance(item, ItemRejected):
                    failures.append(BulkItemFailure(item.id, item.error))
                    continue
                try:
                    await _apply_bulk_item(conn, mode, item, now)
                except (InvalidInput, NotFound, AlreadyExists, PreconditionFailed) as exc:
                    failures.append(BulkItemFailure(item.id, exc))
        return failures

    async def page(self, kind: EnrollmentKind, continuation: str | None, size: int) -> Page[Enrollment]:
        """One page in id order; the token is present only when another non-empty page follows."""
        after = decode_token(continuation)
        async with self._db.read() as conn:
            rows = await repo.page_enrollments(conn, kind, after, size + 1)
        more = len(rows) > size
        items = rows[:size]
        return Page(items=items, continuation=encode_token(items[-1].key) if more else None)


async def _apply_bulk_item(conn: AsyncConnection, mode: BulkMode, item: Enrollment, now: datetime) -> None:
    if mode is BulkMode.DELETE:
        await _delete(conn, item.kind, item.id, None)
        return
    record = item.validated().stamped(now)
    if mode is BulkMode.CREATE:
        if not await repo.insert_enrollment(conn, record):
            raise AlreadyExists(f"{item.kind.id_name} {item.id!r} exists")
    elif mode is BulkMode.UPDATE:
        await repo.upsert_enrollment(conn, record)
    else:
        await _write(conn, record, normalize_if_match(item.etag) or "")


async def _write(conn: AsyncConnection, record: Enrollment, if_match: str | None) -> Enrollment:
    if if_match is None:
        return await repo.upsert_enrollment(conn, record)
    written = await repo.update_enrollment(conn, record, if_match)
    if written is not None:
        return written
    if await repo.get_enrollment_etag(conn, record.kind, record.key) is None:
        raise NotFound(f"{record.kind.id_name} {record.id!r} does not exist")
    raise PreconditionFailed(f"etag does not match the current version of {record.id!r}")


async def _delete(
    conn: AsyncConnection, kind: EnrollmentKind, enrollment_id: str, if_match: str | None
) -> None:
    key = id_key(enrollment_id)
    if await repo.delete_enrollment(conn, kind, key, if_match):
        return
    if await repo.get_enrollment_etag(conn, kind, key) is None:
        raise NotFound(f"{kind.id_name} {enrollment_id!r} does not exist")
    raise PreconditionFailed(f"etag does not match the current version of {enrollment_id!r}")
