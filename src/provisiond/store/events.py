"""Event subscriptions (their secrets sealed) and the outbox the dispatcher delivers from.

A subscription's secret is sealed (store/keyring.py) bound to its row and opened only to sign a
delivery. The outbox is leased like operations (store/operations.py): on PostgreSQL candidates are
picked with ``FOR UPDATE SKIP LOCKED`` and every lease is a conditional UPDATE, so two processes
never both hold one row. Only the head of each (subscription, subject) queue is ever a candidate,
which keeps deliveries in order per subject. A delivered row is deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from provisiond.jsontext import dumps, loads
from provisiond.store.db import keyring_of
from provisiond.store.keyring import key_id_of
from provisiond.store.tables import event_outbox as o
from provisiond.store.tables import event_subscriptions as s

__all__ = [
    "Delivery",
    "Subscription",
    "add_subscription",
    "any_due",
    "backlog",
    "delete_subscription",
    "done",
    "enqueue",
    "lease_due",
    "list_subscriptions",
    "reschedule",
    "subscriber_filters",
    "subscription_row",
]

PENDING, FAILED = "pending", "failed"


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    url: str
    types: tuple[str, ...]
    created: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One leased outbox row, with what is needed to send it (the secret opened)."""

    seq: int
    event_id: str
    url: str
    secret: str
    body: str
    attempts: int
    created: datetime


def subscription_row(subscription_id: str) -> str:
    """The associated data a subscription's sealed secret is bound to."""
    return f"event_subscriptions/{subscription_id}"


async def add_subscription(conn: AsyncConnection, sub: Subscription, secret: str) -> None:
    sealed = keyring_of(conn).seal(secret, subscription_row(sub.id))
    await conn.execute(
        insert(s).values(
            id=sub.id,
            url=sub.url,
            types=dumps(list(sub.types)),
            sealed=sealed,
            sealed_with=key_id_of(sealed),
            created=sub.created,
        )
    )


async def list_subscriptions(conn: AsyncConnection) -> list[Subscription]:
    rows = await conn.execute(select(s.c.id, s.c.url, s.c.types, s.c.created).order_by(s.c.created, s.c.id))
    return [Subscription(r.id, r.url, tuple(loads(r.types)), r.created) for r in rows]


async def delete_subscription(conn: AsyncConnection, subscription_id: str) -> bool:
    """Remove a subscription and what was still to be sent to it; whether it existed."""
    await conn.execute(delete(o).where(o.c.subscription_id == subscription_id))
    return (await conn.execute(delete(s).where(s.c.id == subscription_id))).rowcount == 1


async def enqueue(
    conn: AsyncConnection,
    subscription_ids: Sequence[str],
    event_id: str,
    subject: str,
    body: str,
    now: datetime,
) -> None:
    """One pending row per subscriber, due now, in the caller's transaction."""
    rows = [
        {
            "subscription_id": sid,
            "event_id": event_id,
            "subject": subject[:255],
            "body": body,
            "state": PENDING,
            "attempts": 0,
            "created": now,
            "next_at": now,
        }
        for sid in subscription_ids
    ]
    if rows:
        await conn.execute(insert(o), rows)


async def any_due(conn: AsyncConnection, now: datetime) -> bool:
    """Whether some pending row is due (a read, so an idle dispatcher takes no write lock)."""
    due = select(o.c.seq).where(o.c.state == PENDING, o.c.next_at <= now).limit(1)
    return (await conn.execute(due)).first() is not None


async def lease_due(
    conn: AsyncConnection, owner: str, now: datetime, until: datetime, limit: int
) -> list[Delivery]:
    """Lease up to ``limit`` due rows, each the oldest pending one of its subscription and subject."""
    earlier = aliased(o)
    head = ~exists().where(
        and_(
            earlier.c.subscription_id == o.c.subscription_id,
            earlier.c.subject == o.c.subject,
            earlier.c.state == PENDING,
            earlier.c.seq < o.c.seq,
        )
    )
    free = or_(o.c.lease_until.is_(None), o.c.lease_until < now)
    candidates = (
        select(o.c.seq)
        .where(o.c.state == PENDING, o.c.next_at <= now, free, head)
        .order_by(o.c.seq)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True, of=o)
    seqs = list((await conn.execute(candidates)).scalars())
    if not seqs:
        return []
    taken = await conn.execute(
        update(o)
        .where(o.c.seq.in_(seqs), o.c.state == PENDING, free)
        .values(lease_owner=owner, lease_until=until)
        .returning(o.c.seq)
    )
    mine = list(taken.scalars())
    rows = await conn.execute(
        select(o.c.seq, o.c.event_id, o.c.body, o.c.attempts, o.c.created, s.c.id, s.c.url, s.c.sealed)
        .join(s, s.c.id == o.c.subscription_id)
        .where(o.c.seq.in_(mine))
        .order_by(o.c.seq)
    )
    keyring = keyring_of(conn)
    return [
        Delivery(
            r.seq,
            r.event_id,
            r.url,
            keyring.open(r.sealed, subscription_row(r.id)),
            r.body,
            r.attempts,
            r.created,
        )
        for r in rows
    ]


async def done(conn: AsyncConnection, seq: int, owner: str) -> None:
    """A delivered row is deleted (if this owner still holds it: else its new holder sends it again)."""
    await conn.execute(delete(o).where(o.c.seq == seq, o.c.lease_owner == owner))


async def reschedule(conn: AsyncConnection, seq: int, owner: str, next_at: datetime | None) -> None:
    """A failed attempt: try again at ``next_at``, or (``None``) give the row up as failed."""
    values: dict[str, object] = {"attempts": o.c.attempts + 1, "lease_owner": None, "lease_until": None}
    values |= {"next_at": next_at} if next_at is not None else {"state": FAILED}
    await conn.execute(update(o).where(o.c.seq == seq, o.c.lease_owner == owner).values(values))


async def backlog(conn: AsyncConnection) -> int:
    """Rows still to be delivered."""
    return int(
        (await conn.execute(select(func.count()).select_from(o).where(o.c.state == PENDING))).scalar() or 0
    )


async def subscriber_filters(conn: AsyncConnection) -> list[tuple[str, tuple[str, ...]]]:
    """Every subscription's id and type filters (what an event is matched against)."""
    return [(r.id, tuple(loads(r.types))) for r in await conn.execute(select(s.c.id, s.c.types))]
