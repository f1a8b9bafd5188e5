"""The event outbox and subscriptions on both engines: leasing only the head of each
(subscription, subject) queue (order per subject), one holder per row, a dead holder's lease
taken over, retries and giving up, and subscription secrets sealed and resealed by a rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from provisiond.domain.events import new_secret
from provisiond.store import events as repo
from provisiond.store.db import Database
from provisiond.store.secrets import reseal_batch
from provisiond.store.tables import event_outbox, event_subscriptions

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SECRET = new_secret()


async def _subscribe(db: Database, sid: str = "sub-1", types: tuple[str, ...] = ()) -> None:
    async with db.write() as conn:
        await repo.add_subscription(conn, repo.Subscription(sid, "https://r.example/h", types, T0), SECRET)


async def _enqueue(db: Database, *events: tuple[str, str], subs: tuple[str, ...] = ("sub-1",)) -> None:
    async with db.write() as conn:
        for event_id, subject in events:
            await repo.enqueue(conn, list(subs), event_id, subject, f'{{"id":"{event_id}"}}', T0)


async def _lease(db: Database, owner: str, at: datetime = T0, limit: int = 10) -> list[repo.Delivery]:
    async with db.write() as conn:
        return await repo.lease_due(conn, owner, at, at + timedelta(seconds=30), limit)


async def test_only_the_oldest_pending_event_of_each_subject_is_leased_and_one_holder_has_it(
    db: Database,
) -> None:
    await _subscribe(db)
    await _enqueue(db, ("a1", "dev-a"), ("b1", "dev-b"), ("a2", "dev-a"), ("a3", "dev-a"))
    first = await _lease(db, "p1")
    assert [d.event_id for d in first] == ["a1", "b1"]
    assert first[0].secret == SECRET and first[0].url == "https://r.example/h"
    assert await _lease(db, "p2") == []  # held by p1; a2 waits for a1
    async with db.write() as conn:
        await repo.done(conn, first[0].seq, "p1")
    assert [d.event_id for d in await _lease(db, "p2")] == ["a2"]
    async with db.read() as conn:
        assert await repo.backlog(conn) == 3


async def test_a_failed_attempt_waits_for_its_retry_and_keeps_the_subject_behind_it(db: Database) -> None:
    await _subscribe(db)
    await _enqueue(db, ("a1", "dev-a"), ("a2", "dev-a"))
    [a1] = await _lease(db, "p1")
    async with db.write() as conn:
        await repo.reschedule(conn, a1.seq, "p1", T0 + timedelta(seconds=2))
    assert await _lease(db, "p1", T0 + timedelta(seconds=1)) == []  # not due; a2 may not overtake
    [again] = await _lease(db, "p1", T0 + timedelta(seconds=2))
    assert again.event_id == "a1" and again.attempts == 1
    async with db.write() as conn:
        await repo.reschedule(conn, again.seq, "p1", None)  # given up
    [a2] = await _lease(db, "p1", T0 + timedelta(seconds=3))
    assert a2.event_id == "a2"
    async with db.read() as conn:
        states = [r.state for r in await conn.execute(select(event_outbox).order_by(event_outbox.c.seq))]
    assert states == ["failed", "pending"]


async def test_a_dead_holders_lease_expires_and_its_late_answer_changes_nothing(db: Database) -> None:
    await _subscribe(db)
    await _enqueue(db, ("a1", "dev-a"))
    [held] = await _lease(db, "dead")
    assert await _lease(db, "alive", T0 + timedelta(seconds=29)) == []
    [taken] = await _lease(db, "alive", T0 + timedelta(seconds=31))
    assert taken.event_id == "a1"
    async with db.write() as conn:
        await repo.done(conn, held.seq, "dead")  # the old holder no longer owns it
    async with db.read() as conn:
        assert await repo.backlog(conn) == 1


async def test_removing_a_subscription_drops_what_it_had_pending(db: Database) -> None:
    await _subscribe(db, "sub-1")
    await _subscribe(db, "sub-2", ("io.provisiond.dps.*",))
    await _enqueue(db, ("a1", "dev-a"), subs=("sub-1", "sub-2"))
    async with db.write() as conn:
        assert await repo.delete_subscription(conn, "sub-1")
        assert not await repo.delete_subscription(conn, "sub-1")
    async with db.read() as conn:
        assert [s.id for s in await repo.list_subscriptions(conn)] == ["sub-2"]
        assert await repo.subscriber_filters(conn) == [("sub-2", ("io.provisiond.dps.*",))]
        assert await repo.backlog(conn) == 1


async def test_a_subscription_secret_is_sealed_and_a_rotation_reseals_it(db: Database) -> None:
    await _subscribe(db)
    async with db.read() as conn:
        raw = (await conn.execute(select(event_subscriptions))).one()
    assert SECRET not in raw.sealed and SECRET[6:] not in raw.sealed and raw.sealed_with == db.keyring.current
    new = db.keyring.begin_rotation()
    async with db.write() as conn:
        assert await reseal_batch(conn, new, 100) >= 1
    db.keyring.finish_rotation()  # the old key is gone: only a resealed secret still opens
    await _enqueue(db, ("a1", "dev-a"))
    [delivery] = await _lease(db, "p1")
    assert delivery.secret == SECRET
