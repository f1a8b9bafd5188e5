"""The enrollment store on SQLite and PostgreSQL: the same tests, the same expectations."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from provisiond.domain.enrollments import (
    Attestation,
    AttestationType,
    Enrollment,
    EnrollmentKind,
    SymmetricKeyAttestation,
)
from provisiond.store import enrollments as repo
from provisiond.store.db import Database

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="


def record(rid: str, *, kind: EnrollmentKind = EnrollmentKind.INDIVIDUAL, at: datetime = T0) -> Enrollment:
    att = Attestation(AttestationType.SYMMETRIC_KEY, symmetric_key=SymmetricKeyAttestation(KEY, KEY))
    return Enrollment(kind=kind, id=rid, attestation=att, initial_twin={"tags": {"a": 1}}).stamped(at)


async def test_insert_then_get_round_trips_every_field(db: Database) -> None:
    e = replace(record("Dev-1"), device_id="d1", iot_hubs=("h1", "h2"), provisioning_enabled=False)
    async with db.write() as conn:
        assert await repo.insert_enrollment(conn, e)
    async with db.read() as conn:
        got = await repo.get_enrollment(conn, EnrollmentKind.INDIVIDUAL, "dev-1")
    assert got == e


async def test_insert_refuses_an_existing_id_case_insensitively(db: Database) -> None:
    async with db.write() as conn:
        assert await repo.insert_enrollment(conn, record("dev-1"))
        assert not await repo.insert_enrollment(conn, record("DEV-1"))


async def test_individual_and_group_ids_are_separate_namespaces(db: Database) -> None:
    async with db.write() as conn:
        assert await repo.insert_enrollment(conn, record("same"))
        assert await repo.insert_enrollment(conn, record("same", kind=EnrollmentKind.GROUP))


async def test_upsert_replaces_but_keeps_the_creation_time(db: Database) -> None:
    first = record("dev-1")
    later = replace(record("dev-1", at=T0 + timedelta(hours=1)), device_id="new")
    async with db.write() as conn:
        await repo.upsert_enrollment(conn, first)
        written = await repo.upsert_enrollment(conn, later)
    assert written.created == T0
    async with db.read() as conn:
        got = await repo.get_enrollment(conn, EnrollmentKind.INDIVIDUAL, "dev-1")
    assert got is not None
    assert (got.device_id, got.created, got.updated, got.etag) == ("new", T0, later.updated, later.etag)


async def test_conditional_update_needs_the_current_etag(db: Database) -> None:
    first = record("dev-1")
    async with db.write() as conn:
        await repo.insert_enrollment(conn, first)
        stale = await repo.update_enrollment(conn, record("dev-1"), '"not-the-etag"')
        fresh = await repo.update_enrollment(conn, record("dev-1"), first.etag or "")
    assert stale is None
    assert fresh is not None and fresh.created == T0


async def test_two_concurrent_writers_with_the_same_etag_exactly_one_wins(db: Database) -> None:
    base = record("dev-1")
    async with db.write() as conn:
        await repo.insert_enrollment(conn, base)

    async def writer(name: str) -> bool:
        async with db.write() as conn:
            return (
                await repo.update_enrollment(conn, replace(record("dev-1"), device_id=name), base.etag or "")
                is not None
            )

    for _ in range(5):  # several rounds: the race must never let both through, nor neither
        results = await asyncio.gather(writer("a"), writer("b"))
        assert sorted(results) == [False, True]
        async with db.read() as conn:
            current = await repo.get_enrollment(conn, EnrollmentKind.INDIVIDUAL, "dev-1")
        assert current is not None
        assert current.device_id == ("a" if results[0] else "b")
        base = current  # the next round races on the new version


async def test_delete_is_conditional_when_an_etag_is_given(db: Database) -> None:
    e = record("dev-1")
    async with db.write() as conn:
        await repo.insert_enrollment(conn, e)
        assert not await repo.delete_enrollment(conn, EnrollmentKind.INDIVIDUAL, "dev-1", '"other"')
        assert await repo.delete_enrollment(conn, EnrollmentKind.INDIVIDUAL, "dev-1", e.etag)
        assert not await repo.delete_enrollment(conn, EnrollmentKind.INDIVIDUAL, "dev-1", None)


async def test_failed_transaction_leaves_nothing_behind(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await repo.insert_enrollment(conn, record("dev-1"))
            raise RuntimeError("fail after the write")
    async with db.read() as conn:
        assert await repo.get_enrollment(conn, EnrollmentKind.INDIVIDUAL, "dev-1") is None


async def test_keyset_pages_cover_every_record_once_in_key_order(db: Database) -> None:
    ids = [f"dev-{n:03d}" for n in range(25)]
    async with db.write() as conn:
        for rid in reversed(ids):
            await repo.insert_enrollment(conn, record(rid))
        await repo.insert_enrollment(conn, record("group-only", kind=EnrollmentKind.GROUP))
    seen: list[str] = []
    after = None
    while True:
        async with db.read() as conn:
            page = await repo.page_enrollments(conn, EnrollmentKind.INDIVIDUAL, after, 10)
        if not page:
            break
        seen += [e.id for e in page]
        after = page[-1].key
    assert seen == ids
