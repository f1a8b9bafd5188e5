"""Retention (``PROVISIOND_AUDIT_RETENTION_DAYS``): the operation worker deletes entries older
than the setting, at its start and hourly after, by the injected clock; unset keeps everything."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from provisiond import wiring
from provisiond.config import Settings
from provisiond.domain.audit import AuditFilter
from provisiond.services import audit
from provisiond.services.audit import AuditService, Retention
from provisiond.store.db import Database
from tests.support.clock import FakeClock


async def _targets(db: Database) -> list[str]:
    return [e.target async for e in AuditService(db).export() if e.action == "hub.add"]


async def _old_and_new(db: Database, clock: FakeClock) -> None:
    async with db.write() as conn:
        await audit.record(conn, "hub.add", "old", at=clock() - timedelta(days=31))
        await audit.record(conn, "hub.add", "recent", at=clock() - timedelta(days=29))


async def test_the_worker_prunes_at_its_start(db: Database, tmp_path: Path) -> None:
    clock = FakeClock()
    await _old_and_new(db, clock)
    settings = Settings(data_dir=tmp_path, audit_retention_days=30)
    worker = wiring.operation_worker(settings, db, clock)
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(200):
            if await _targets(db) == ["recent"]:
                break
            await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await running
    assert await _targets(db) == ["recent"]
    [pruned] = await AuditService(db).entries(AuditFilter(action="audit.prune"), 5)
    assert str(pruned.actor) == "system:provisiond" and pruned.details["deleted"] == 1


async def test_without_the_setting_nothing_is_deleted(db: Database, tmp_path: Path) -> None:
    clock = FakeClock()
    await _old_and_new(db, clock)
    worker = wiring.operation_worker(Settings(data_dir=tmp_path), db, clock)
    assert worker.retention is None
    assert await worker.run_once() is False
    assert await _targets(db) == ["old", "recent"]


async def test_a_pass_runs_at_most_hourly_and_follows_the_clock(db: Database) -> None:
    clock = FakeClock()
    retention = Retention(db, 30, clock)
    assert await retention.prune_if_due() == 0  # the first pass is due at once
    await _old_and_new(db, clock)
    assert await retention.prune_if_due() is None  # within the hour: not due
    clock.advance(3600)
    assert await retention.prune_if_due() == 1
    clock.advance(2 * 86400)  # "recent" is now 31 days old
    assert await retention.prune_if_due() == 1
    assert await _targets(db) == []


async def test_a_large_backlog_goes_in_short_batches_with_one_entry_for_the_total(db: Database) -> None:
    """Turned on over a long trail, retention deletes in bounded transactions, not one long lock."""
    clock = FakeClock()
    async with db.write() as conn:
        for n in range(7):
            await audit.record(conn, "hub.add", f"old-{n}", at=clock() - timedelta(days=40))
    assert await Retention(db, 30, clock).prune(batch=3) == 7
    assert await _targets(db) == []
    prunes = [e async for e in AuditService(db).export() if e.action == "audit.prune"]
    assert [dict(e.details)["deleted"] for e in prunes] == [7]
