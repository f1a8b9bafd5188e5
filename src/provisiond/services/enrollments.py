"""Enrollment use cases: single reads and writes, bulk operations, paged queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.enrollments import (
    ANY_ETAG,
    Enrollment,
    EnrollmentKind,
    keep_stored_keys,
    normalize_if_match,
    same_content,
)
from provisiond.domain.query import decode_token, encode_token
from provisiond.domain.registration_ids import id_key
from provisiond.domain.webhooks import check_webhook_url
from provisiond.errors import AlreadyExists, InvalidInput, NotFound, PreconditionFailed, ProvisiondError
from provisiond.services import audit
from provisiond.services.enrollment_audit import (
    announce,
    record_delete,
    record_write,
    refused_change,
    write_change,
)
from provisiond.store import cas as ca_repo
from provisiond.store import credential_policies as credential_policy_repo
from provisiond.store import enrollments as repo
from provisiond.store import hubs as hub_repo
from provisiond.store import tpm as tpm_repo
from provisiond.store.db import Database

__all__ = [
    "BulkItemFailure",
    "BulkMode",
    "EnrollmentService",
    "ImportResult",
    "ImportStatus",
    "ItemRejected",
    "Page",
    "WebhookRules",
]

MAX_BULK_ITEMS = 10


class BulkMode(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UPDATE_IF_MATCH_ETAG = "updateIfMatchETag"
    DELETE = "delete"


_VERBS = {"create": "create", "update": "update", "updateIfMatchETag": "update", "delete": "delete"}


@dataclass(frozen=True, slots=True)
class ItemRejected:
    """A bulk item the wire layer could not turn into an enrollment (wrong types, bad values)."""

    id: str
    error: InvalidInput


class ImportStatus(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What ``import_batch`` did with one item; ``reason`` says why it failed."""

    id: str
    status: ImportStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BulkItemFailure:
    id: str
    error: ProvisiondError


@dataclass(frozen=True, slots=True)
class WebhookRules:
    """Which custom-allocation webhook URLs enrollments may name (operator settings)."""

    allowlist: tuple[str, ...] = ("https://*",)
    allow_http: bool = False


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    continuation: str | None


class EnrollmentService:
    """Reads and writes individual enrollments and enrollment groups."""

    def __init__(self, db: Database, clock: Clock = utc_now, webhooks: WebhookRules | None = None) -> None:
        self._db = db
        self._clock = clock
        self._webhooks = webhooks or WebhookRules()

    async def get(self, kind: EnrollmentKind, enrollment_id: str) -> Enrollment:
        async with self._db.read() as conn:
            found = await repo.get_enrollment(conn, kind, id_key(enrollment_id))
        if found is None:
            raise NotFound(f"{kind.value} enrollment {enrollment_id!r} does not exist")
        return found

    async def put(
        self, enrollment: Enrollment, if_match: str | None, *, keep_credential_policy: bool = False
    ) -> Enrollment:
        """Create or replace; with ``if_match`` only the named version may be replaced.

        ``keep_credential_policy``: the caller's api-version has no ``credentialPolicyName``
        (before 2025-07-01-preview), so the stored one is kept, not cleared.
        """
        record = enrollment.validated().stamped(self._clock())
        async with self._db.write() as conn:
            await _check_references(conn, record, self._webhooks)
            if keep_credential_policy:
                return await _write_keeping_policy(conn, record, normalize_if_match(if_match))
            return await _write(conn, record, normalize_if_match(if_match))

    async def delete(self, kind: EnrollmentKind, enrollment_id: str, if_match: str | None) -> None:
        async with self._db.write() as conn:
            await _delete(conn, kind, enrollment_id, normalize_if_match(if_match))

    async def bulk(
        self,
        kind: EnrollmentKind,
        mode: BulkMode,
        items: Sequence[Enrollment | ItemRejected],
        *,
        keep_credential_policy: bool = False,
    ) -> list[BulkItemFailure]:
        """Apply each item on its own in one transaction; return the items that failed, in order.

        An item fails by a refused single statement (exists, missing, etag mismatch) or by its
        own validation, never by an exception that would undo the others.
        """
        if len(items) > MAX_BULK_ITEMS:
            raise InvalidInput(f"a bulk operation holds at most {MAX_BULK_ITEMS} items, not {len(items)}")
        now = self._clock()
        failures: list[tuple[int, BulkItemFailure]] = []
        creates: list[tuple[int, Enrollment]] = []
        changes: list[audit.Change] = []
        async with self._db.write() as conn:
            for n, item in enumerate(items):
                if isinstance(item, ItemRejected):
                    failures.append((n, BulkItemFailure(item.id, item.error)))
                    continue
                try:
                    if mode is BulkMode.CREATE:
                        creates.append((n, await _checked(conn, item, now, self._webhooks)))
                    else:
                        await _apply_bulk_item(conn, mode, item, now, self._webhooks, keep_credential_policy)
                except (InvalidInput, NotFound, AlreadyExists, PreconditionFailed) as exc:
                    failures.append((n, BulkItemFailure(item.id, exc)))
            if creates:
                # One statement for the batch: it returns the keys it inserted, so an item whose
                # id exists (or repeats an earlier item of the batch) is reported on its own.
                inserted = await repo.insert_enrollments(conn, [record for _, record in creates])
                for n, record in creates:
                    if record.key in inserted:
                        inserted.discard(record.key)
                        changes.append(write_change(None, record, mode.value))
                    else:
                        exists = AlreadyExists(f"{record.kind.id_name} {record.id!r} exists")
                        failures.append((n, BulkItemFailure(record.id, exists)))
            changes += [
                refused_change(kind, _VERBS[mode], f.id, f.error.message, mode.value) for _, f in failures
            ]
            await audit.record_all(conn, changes)  # the created and the refused items, one statement
            await announce(conn, changes)
        return [failure for _, failure in sorted(failures, key=lambda pair: pair[0])]

    async def import_batch(
        self, items: Sequence[Enrollment | ItemRejected], *, dry_run: bool = False
    ) -> list[ImportResult]:
        """Create or replace each item on its own, in one transaction (``enroll import``).

        Unlike ``bulk`` a batch may hold thousands and re-running it is safe: a record already
        stored with the same content is left alone (``unchanged``), symmetric keys a row leaves
        out keep the stored ones instead of being generated anew, and a refused item is
        reported while the others are written. ``dry_run`` checks every item and writes nothing.
        """
        now = self._clock()
        results: list[ImportResult] = []
        async with self._db.read() if dry_run else self._db.write() as conn:
            for item in items:
                if isinstance(item, ItemRejected):
                    results.append(ImportResult(item.id, ImportStatus.FAILED, item.error.message))
                    continue
                try:
                    prior = await repo.get_enrollment(conn, item.kind, item.key)
                    record = await _checked(conn, keep_stored_keys(item, prior), now, self._webhooks)
                    if prior is not None and same_content(prior, record):
                        results.append(ImportResult(item.id, ImportStatus.UNCHANGED))
                        continue
                    if not dry_run:
                        await _write(conn, record, None, bulk="import")
                    status = ImportStatus.CREATED if prior is None else ImportStatus.UPDATED
                    results.append(ImportResult(item.id, status))
                except InvalidInput as exc:
                    results.append(ImportResult(item.id, ImportStatus.FAILED, exc.message))
        return results

    async def page(self, kind: EnrollmentKind, continuation: str | None, size: int) -> Page[Enrollment]:
        """One page in id order; the token is present only when another non-empty page follows."""
        after = decode_token(continuation)
        async with self._db.read() as conn:
            rows = await repo.page_enrollments(conn, kind, after, size + 1)
        more = len(rows) > size
        items = rows[:size]
        return Page(items=items, continuation=encode_token(items[-1].key) if more else None)


async def _apply_bulk_item(
    conn: AsyncConnection,
    mode: BulkMode,
    item: Enrollment,
    now: datetime,
    webhooks: WebhookRules,
    keep_credential_policy: bool = False,
) -> None:
    if mode is BulkMode.DELETE:
        await _delete(conn, item.kind, item.id, None, bulk=mode.value)
        return
    record = await _checked(conn, item, now, webhooks)
    if mode is BulkMode.CREATE:
        if not await repo.insert_enrollment(conn, record):
            raise AlreadyExists(f"{item.kind.id_name} {item.id!r} exists")
    elif keep_credential_policy:
        etag = None if mode is BulkMode.UPDATE else normalize_if_match(item.etag) or ""
        await _write_keeping_policy(conn, record, etag, bulk=mode.value)
    elif mode is BulkMode.UPDATE:
        await _write(conn, record, None, bulk=mode.value)
    else:
        await _write(conn, record, normalize_if_match(item.etag) or "", bulk=mode.value)


async def _checked(
    conn: AsyncConnection, item: Enrollment, now: datetime, webhooks: WebhookRules
) -> Enrollment:
    record = item.validated().stamped(now)
    await _check_references(conn, record, webhooks)
    return record


async def _write(
    conn: AsyncConnection, record: Enrollment, if_match: str | None, bulk: str | None = None
) -> Enrollment:
    prior = await repo.get_enrollment(conn, record.kind, record.key)  # the audit entry's "before"
    written = await (
        repo.upsert_enrollment(conn, record)
        if if_match is None
        else repo.update_enrollment(conn, record, if_match)
    )
    if written is not None:
        await record_write(conn, prior, written, bulk)
        return written
    if await repo.get_enrollment_etag(conn, record.kind, record.key) is None:
        raise NotFound(f"{record.kind.id_name} {record.id!r} does not exist")
    raise PreconditionFailed(f"etag does not match the current version of {record.id!r}")


async def _write_keeping_policy(
    conn: AsyncConnection, record: Enrollment, if_match: str | None, bulk: str | None = None
) -> Enrollment:
    """Write ``record`` with the credential policy the stored version has (none for a new one).

    The write is conditional on the version read (on SQLite writers are serialised anyway; on
    PostgreSQL a concurrent writer in between makes the conditional write miss, and the read is
    repeated), so a policy set meanwhile through the preview api-version is never cleared.
    """
    for _ in range(3):
        current = await repo.get_enrollment(conn, record.kind, record.key)
        if current is None:
            if if_match is not None and if_match != ANY_ETAG:
                raise NotFound(f"{record.kind.id_name} {record.id!r} does not exist")
            created = replace(record, credential_policy=None)
            if await repo.insert_enrollment(conn, created):
                await record_write(conn, None, created, bulk)
                return created
            continue  # created meanwhile: read it
        if if_match is not None and if_match != ANY_ETAG and if_match != current.etag:
            raise PreconditionFailed(f"etag does not match the current version of {record.id!r}")
        kept = replace(record, credential_policy=current.credential_policy)
        written = await repo.update_enrollment(conn, kept, current.etag or "")
        if written is not None:
            await record_write(conn, current, written, bulk)
            return written
    raise PreconditionFailed(f"{record.id!r} kept changing while it was written; try again")


async def _delete(
    conn: AsyncConnection,
    kind: EnrollmentKind,
    enrollment_id: str,
    if_match: str | None,
    bulk: str | None = None,
) -> None:
    key = id_key(enrollment_id)
    if await repo.delete_enrollment(conn, kind, key, if_match):
        if kind is EnrollmentKind.INDIVIDUAL:
            await tpm_repo.delete_keys(conn, key)
        await record_delete(conn, kind, enrollment_id, bulk)
        return
    if await repo.get_enrollment_etag(conn, kind, key) is None:
        raise NotFound(f"{kind.id_name} {enrollment_id!r} does not exist")
    raise PreconditionFailed(f"etag does not match the current version of {enrollment_id!r}")


async def _check_references(conn: AsyncConnection, record: Enrollment, webhooks: WebhookRules) -> None:
    """Hubs must be linked, CAs must exist, and a webhook must be on the allow-list."""
    named = list(record.iot_hubs or ())
    if record.iot_hub_host_name:
        named.append(record.iot_hub_host_name)
    if named:
        linked = {hub.host_name.lower() for hub in await hub_repo.list_hubs(conn)}
        unknown = sorted({name for name in named if name.lower() not in linked})
        if unknown:
            raise InvalidInput(f"IoT hubs not linked to this instance: {', '.join(unknown)}")
    if record.custom_allocation is not None:
        check_webhook_url(record.custom_allocation.webhook_url, webhooks.allowlist, webhooks.allow_http)
    x509 = record.attestation.x509
    refs = [name for name in (x509.ca_primary, x509.ca_secondary) if name] if x509 else []
    if refs:
        known = await ca_repo.get_cas(conn, refs)
        missing = [name for name in refs if name.lower() not in known]
        if missing:
            raise InvalidInput(
                f"caReferences name CA certificates this instance does not have: {', '.join(missing)}"
            )
    policy = record.credential_policy
    if policy is not None and not await credential_policy_repo.policy_exists(conn, policy):
        raise InvalidInput(f"credentialPolicyName {policy!r} names no credential policy of this instance")
