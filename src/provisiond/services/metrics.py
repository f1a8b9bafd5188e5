"""What ``/metrics`` reads from the database at scrape time: operations by kind and state, and
the event outbox backlog. Read per scrape rather than counted in each process, so that every
process of ``serve --processes N`` reports the same figures and a restart loses none."""

from __future__ import annotations

from dataclasses import dataclass

from provisiond.store import events as event_repo
from provisiond.store import operations as operation_repo
from provisiond.store.db import Database

__all__ = ["MetricsSampler"]


@dataclass
class MetricsSampler:
    db: Database

    async def sample(self) -> tuple[dict[tuple[str, str], int], int]:
        """Operations per (kind, state), and events waiting for delivery."""
        async with self.db.read() as conn:
            return await operation_repo.count_by_kind_state(conn), await event_repo.backlog(conn)
