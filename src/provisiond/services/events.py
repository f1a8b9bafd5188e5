"""Event webhooks: emitting into the outbox with the change, subscriptions, and the dispatcher.

**Why an outbox.** An event must go out if and only if its change committed, and must survive a
crash of the server. So ``emit`` writes the event into ``event_outbox`` inside the change's own
transaction (beside its audit entry, from the ``*_audit`` modules), and a background
``Dispatcher`` delivers it afterwards. A server without subscriptions writes nothing: ``emit``
looks the (small) subscription table up and stops when nothing matches.

**Delivery is at least once**, never exactly once: a process killed after the receiver answered
but before the row was deleted sends it again once its lease expires, with the same
``webhook-id`` (the CloudEvent ``id``), so receivers deduplicate on it. Per subscription and
subject only the oldest pending row is sent, so events arrive in order per subject. A failure is
retried after about 1 s, doubling with jitter up to 5 minutes, and given up after 3 days.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond import telemetry
from provisiond.domain import events as rules
from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.webhooks import check_webhook_url, redact_webhook_url
from provisiond.errors import InvalidInput, NotFound
from provisiond.services import audit
from provisiond.store import events as repo
from provisiond.store.db import Database
from provisiond.store.instance import get_instance

if TYPE_CHECKING:  # enrollments imports this module (through enrollment_audit)
    from provisiond.services.enrollments import WebhookRules

__all__ = [
    "Attempt",
    "Deliver",
    "Dispatcher",
    "EventService",
    "Subscribers",
    "dps_source",
    "emit",
    "subscribers",
]

log = logging.getLogger(__name__)


Subscribers = list[tuple[str, tuple[str, ...]]]


async def subscribers(conn: AsyncConnection) -> Subscribers:
    """Every subscription's id and type filters; empty on a server nobody subscribed to."""
    return await repo.subscriber_filters(conn)


async def dps_source(conn: AsyncConnection) -> str:
    """The CloudEvents ``source`` of DPS events: ``/provisiond/dps/{idScope}``."""
    instance = await get_instance(conn)
    return f"/provisiond/dps/{instance.id_scope if instance else 'unknown'}"


async def emit(
    conn: AsyncConnection,
    event_type: str,
    subject: str,
    source: str | None,
    data: Mapping[str, Any],
    *,
    at: datetime | None = None,
    subscribers: Subscribers | None = None,
) -> None:
    """Queue ``event_type`` for every subscription that wants it, in ``conn``'s transaction
    (``source`` ``None``: this instance's DPS source; ``subscribers``: as read by the caller
    already, for a batch). ``data`` must hold no secret."""
    subs = subscribers if subscribers is not None else await repo.subscriber_filters(conn)
    wanted = [sid for sid, types in subs if rules.matches(types, event_type)]
    if not wanted:
        return
    now = at or utc_now()
    event_id = str(uuid.uuid4())
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": source or await dps_source(conn),
        "type": event_type,
        "subject": subject,
        "time": now.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": dict(data),
    }
    await repo.enqueue(conn, wanted, event_id, subject, json.dumps(event, separators=(",", ":")), now)


@dataclass
class EventService:
    """Subscriptions, for the CLI: a URL must pass the allocation-webhook allow-list."""

    db: Database
    webhooks: WebhookRules
    clock: Clock = utc_now

    async def subscribe(self, url: str, types: tuple[str, ...], secret: str | None) -> tuple[str, str | None]:
        """Add a subscription; its id, and the secret when one was generated (else ``None``)."""
        check_webhook_url(url, self.webhooks.allowlist, self.webhooks.allow_http)
        generated = rules.new_secret() if secret is None else None
        key = rules.check_secret(secret) if secret is not None else generated
        assert key is not None
        sub = repo.Subscription(str(uuid.uuid4()), url, types, self.clock())
        async with self.db.write() as conn:
            await repo.add_subscription(conn, sub, key)
            details = {"url": redact_webhook_url(url), "types": ",".join(types) or "*"}
            await audit.record(conn, "events.subscribe", sub.id, details=details)
        return sub.id, generated

    async def list(self) -> list[repo.Subscription]:
        async with self.db.read() as conn:
            return await repo.list_subscriptions(conn)

    async def remove(self, subscription_id: str) -> None:
        async with self.db.write() as conn:
            if not await repo.delete_subscription(conn, subscription_id):
                raise NotFound(f"no event subscription {subscription_id}")
            await audit.record(conn, "events.remove", subscription_id)

    async def backlog(self) -> int:
        async with self.db.read() as conn:
            return await repo.backlog(conn)


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one delivery attempt went: ``ok``; else ``retry_after`` (seconds, from the receiver)
    and whether the receiver said to stop (410 Gone)."""

    ok: bool
    error: str = ""
    retry_after: float | None = None
    gone: bool = False


class Deliver(Protocol):
    """The outbound port: POST one signed event (adapters/event_webhook.py)."""

    async def __call__(self, url: str, secret: str, event_id: str, body: bytes) -> Attempt: ...


class Dispatcher:
    """Delivers the outbox; one per server process, sharing the table with the others."""

    def __init__(
        self,
        db: Database,
        deliver: Deliver,
        clock: Clock = utc_now,
        lease_seconds: float = 30.0,
        batch: int = 64,
        webhooks: WebhookRules | None = None,
    ) -> None:
        self._webhooks = webhooks
        self._db = db
        self._deliver = deliver
        self._clock = clock
        self._lease = timedelta(seconds=lease_seconds)
        self._batch = batch
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"

    async def run(self, poll: float = 0.5) -> None:
        """Deliver until cancelled; a store failure is logged and the loop carries on."""
        while True:
            try:
                sent = await self.pass_once()
            except Exception:
                log.exception("event dispatcher pass failed")
                sent = 0
            if not sent:
                await asyncio.sleep(poll)

    async def pass_once(self) -> int:
        """Lease the due heads and deliver them concurrently; how many were attempted."""
        now = self._clock()
        async with self._db.read() as conn:  # idle: one indexed read, no write transaction
            if not await repo.any_due(conn, now):
                return 0
        async with self._db.write() as conn:
            due = await repo.lease_due(conn, self._owner, now, now + self._lease, self._batch)
        await asyncio.gather(*(self._send(d) for d in due), return_exceptions=True)
        return len(due)

    async def _send(self, delivery: repo.Delivery) -> None:
        """One delivery, on its own: whatever goes wrong is this row's failed attempt (counted,
        rescheduled, given up in time), never another row's or the pass's."""
        try:
            if self._webhooks is not None:  # the allow-list of now, not of when it was subscribed
                check_webhook_url(delivery.url, self._webhooks.allowlist, self._webhooks.allow_http)
            attempt = await self._deliver(
                delivery.url, delivery.secret, delivery.event_id, delivery.body.encode()
            )
        except InvalidInput:
            attempt = Attempt(False, "the URL is no longer allowed (PROVISIOND_WEBHOOK_ALLOWLIST)", gone=True)
        except Exception as exc:
            attempt = Attempt(False, f"delivery failed: {type(exc).__name__}")
        now = self._clock()
        async with self._db.write() as conn:
            if attempt.ok:
                await repo.done(conn, delivery.seq, self._owner)
                return
            telemetry.delivery_failed()
            delay = attempt.retry_after or rules.retry_delay(delivery.attempts + 1)
            next_at = now + timedelta(seconds=delay)
            give_up = attempt.gone or next_at - delivery.created > rules.GIVE_UP_AFTER
            log.warning(
                "event %s delivery failed (%s); %s",
                delivery.event_id,
                attempt.error,
                "given up" if give_up else f"retry in {delay:.1f} s",
            )
            await repo.reschedule(conn, delivery.seq, self._owner, None if give_up else next_at)
