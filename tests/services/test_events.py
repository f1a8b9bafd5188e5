"""Events emitted with the change, on both engines: nothing is written without a matching
subscription, the type filter (exact or prefix ``*``) chooses the subscribers, an event rolls
back with its change, and the dispatcher retries with backoff then deletes what was delivered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from provisiond.domain.events import new_secret, parse_types, retry_delay, sign
from provisiond.errors import InvalidInput
from provisiond.services.events import Attempt, Dispatcher, emit
from provisiond.store import events as repo
from provisiond.store.db import Database
from provisiond.store.tables import event_outbox
from tests.support.clock import FakeClock

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ASSIGNED = "io.provisiond.dps.registration.assigned"


async def _subscribe(db: Database, sid: str, types: str | None) -> None:
    async with db.write() as conn:
        sub = repo.Subscription(sid, "https://r.example/h", parse_types(types), T0)
        await repo.add_subscription(conn, sub, new_secret())


async def _rows(db: Database) -> list[tuple[str, str]]:
    async with db.read() as conn:
        rows = await conn.execute(select(event_outbox.c.subscription_id, event_outbox.c.body))
        return [(r.subscription_id, json.loads(r.body)["type"]) for r in rows]


async def test_no_subscription_no_row_and_filters_choose_the_subscribers(db: Database) -> None:
    async with db.write() as conn:
        await emit(conn, ASSIGNED, "dev-1", "/provisiond/dps/0ne", {"registrationId": "dev-1"})
    assert await _rows(db) == []
    await _subscribe(db, "all", None)
    await _subscribe(db, "dps", "io.provisiond.dps.*")
    await _subscribe(db, "claims", "io.provisiond.claims.device.claimed")
    async with db.write() as conn:
        await emit(conn, ASSIGNED, "dev-1", "/provisiond/dps/0ne", {"registrationId": "dev-1"})
        await emit(conn, "io.provisiond.claims.device.unclaimed", "42", "/provisiond/partners/1", {})
    assert sorted(await _rows(db)) == [
        ("all", "io.provisiond.claims.device.unclaimed"),
        ("all", ASSIGNED),
        ("dps", ASSIGNED),
    ]


async def test_an_event_rolls_back_with_its_change(db: Database) -> None:
    await _subscribe(db, "all", None)
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await emit(conn, ASSIGNED, "dev-1", "/provisiond/dps/0ne", {})
            raise RuntimeError("the change failed")
    assert await _rows(db) == []


def test_type_filters_must_name_or_prefix_a_known_type() -> None:
    assert parse_types("io.provisiond.claims.*, io.provisiond.dps.enrollment.created") == (
        "io.provisiond.claims.*",
        "io.provisiond.dps.enrollment.created",
    )
    with pytest.raises(InvalidInput):
        parse_types("io.provisiond.dps.registration.assignd")


def test_the_signature_matches_the_standard_webhooks_test_vector() -> None:
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_backoff_starts_near_a_second_doubles_and_caps_at_five_minutes() -> None:
    assert 0.8 <= retry_delay(1) <= 1.2 and 1.6 <= retry_delay(2) <= 2.4 and 3.2 <= retry_delay(3) <= 4.8
    assert 240 <= retry_delay(40) <= 360


class Flaky:
    """A receiver port that fails ``failures`` times, then accepts."""

    def __init__(self, failures: int, retry_after: float | None = None) -> None:
        self.failures, self.retry_after, self.calls = failures, retry_after, 0

    async def __call__(self, url: str, secret: str, event_id: str, body: bytes) -> Attempt:
        self.calls += 1
        if self.calls <= self.failures:
            return Attempt(False, "HTTP 503", retry_after=self.retry_after)
        return Attempt(True)


async def test_the_dispatcher_retries_after_the_backoff_and_deletes_what_was_delivered(db: Database) -> None:
    await _subscribe(db, "all", None)
    async with db.write() as conn:
        await emit(conn, ASSIGNED, "dev-1", "/provisiond/dps/0ne", {}, at=T0)
    clock = FakeClock(T0)
    receiver = Flaky(2, retry_after=10)
    dispatcher = Dispatcher(db, receiver, clock)
    assert await dispatcher.pass_once() == 1
    clock.advance(9)
    assert await dispatcher.pass_once() == 0  # Retry-After 10 s is honoured
    clock.advance(1)
    assert await dispatcher.pass_once() == 1
    clock.advance(10)
    assert await dispatcher.pass_once() == 1 and receiver.calls == 3
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(event_outbox))).scalar() == 0


async def test_the_dispatcher_gives_up_after_three_days(db: Database) -> None:
    await _subscribe(db, "all", None)
    async with db.write() as conn:
        await emit(conn, ASSIGNED, "dev-1", "/provisiond/dps/0ne", {}, at=T0)
    clock = FakeClock(T0 + timedelta(days=3))
    assert await Dispatcher(db, Flaky(1), clock).pass_once() == 1
    async with db.read() as conn:
        assert [r.state for r in await conn.execute(select(event_outbox.c.state))] == ["failed"]
        assert await repo.backlog(conn) == 0


class Broken:
    """A receiver port that raises (a bug, a bad header value): the row's own failed attempt."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, url: str, secret: str, event_id: str, body: bytes) -> Attempt:
        self.calls += 1
        raise OverflowError("Retry-After too large")


async def test_a_delivery_that_raises_is_rescheduled_not_left_leased(db: Database) -> None:
    await _subscribe(db, "all", None)
    async with db.write() as conn:
        await emit(conn, ASSIGNED, "dev-1", "/provisiond/dps/0ne", {}, at=T0)
    clock = FakeClock(T0)
    receiver = Broken()
    dispatcher = Dispatcher(db, receiver, clock)
    assert await dispatcher.pass_once() == 1
    clock.advance(0.5)
    assert await dispatcher.pass_once() == 0  # waiting for its backoff, not for a lease to lapse
    clock.advance(5)
    assert await dispatcher.pass_once() == 1 and receiver.calls == 2


async def test_a_url_the_allow_list_no_longer_admits_is_given_up(db: Database) -> None:
    """Tightening PROVISIOND_WEBHOOK_ALLOWLIST applies to existing subscriptions at once."""
    from provisiond.services.enrollments import WebhookRules

    await _subscribe(db, "all", None)  # https://r.example/h
    async with db.write() as conn:
        await emit(conn, ASSIGNED, "dev-1", "/provisiond/dps/0ne", {}, at=T0)
    receiver = Flaky(0)
    rules = WebhookRules(("https://elsewhere.example/*",), False)
    assert await Dispatcher(db, receiver, FakeClock(T0), webhooks=rules).pass_once() == 1
    assert receiver.calls == 0
    async with db.read() as conn:
        assert [r.state for r in await conn.execute(select(event_outbox.c.state))] == ["failed"]
