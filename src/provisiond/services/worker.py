"""The operation worker: runs durable operations to the end, surviving crashes and restarts.

It takes an operation by lease, processes its pending items in request order, a batch per
transaction (effects + results + counters together), and extends the lease with every batch. A
worker that dies (kill -9) leaves at most one uncommitted batch; when its lease expires another
worker, or the same process after a restart, continues from the first item without a result.
What a batch of each kind of operation does is looked up in ``operation_kinds.BATCHES``;
everything else (lease, results, counters) is shared.

Between operations the worker also runs ``housekeeping`` (re-signing CRLs before their
nextUpdate) at most every ``housekeeping_seconds``: every deployment runs a worker (in
``serve`` or as ``provisiond worker``), so periodic work needs no scheduler of its own, and it is
idempotent, so several workers doing it is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from provisiond import telemetry
from provisiond.domain.claims import Operation
from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.device_identifiers import DEFAULT_MANUFACTURER_RULES, ManufacturerRules
from provisiond.services.audit import Retention
from provisiond.services.operation_audit import record_completed
from provisiond.services.operation_kinds import BATCHES
from provisiond.store import operations as repo
from provisiond.store.claims import ConcurrentWrite
from provisiond.store.db import Database
from provisiond.store.operation_codec import dump_result

__all__ = ["OperationWorker"]

log = logging.getLogger(__name__)


@dataclass
class OperationWorker:
    db: Database
    clock: Clock = utc_now
    rules: ManufacturerRules = DEFAULT_MANUFACTURER_RULES
    batch_size: int = 5000
    lease_seconds: float = 30.0
    idle_seconds: float = 0.5
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    name: str = field(default_factory=lambda: f"worker-{os.getpid()}-{secrets.token_hex(4)}")
    housekeeping: Callable[[], Awaitable[object]] | None = None
    housekeeping_seconds: float = 60.0
    retention: Retention | None = None  # audit retention, run between operations (hourly)
    _stopping: bool = field(default=False, init=False, repr=False)
    _housekept: float = field(default=float("-inf"), init=False, repr=False)

    @property
    def stopping(self) -> bool:
        """``stop`` was called: ``run`` returns after the batch in hand."""
        return self._stopping

    def stop(self) -> None:
        """Return from ``run`` once the batch in hand is committed (at once when idle).

        The operation keeps its lease until the lease expires; then another worker, or this one
        restarted, resumes at the first item without a result, as after a crash.
        """
        self._stopping = True
        self.wake.set()

    async def run(self) -> None:
        """Work until stopped or cancelled; sleep when there is nothing to do (or until woken)."""
        while not self._stopping:
            try:
                await self._housekeep()
                if self.retention is not None:
                    await self.retention.prune_if_due()
                busy = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("operation worker failed; retrying")
                busy = False
            if not busy and not self._stopping:
                self.wake.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that arrives as the event fires, and shutdown would wait on this task forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.idle_seconds):
                        await self.wake.wait()

    async def _housekeep(self) -> None:
        """Run ``housekeeping`` if it is due (a failure is logged by ``run`` and retried later)."""
        if self.housekeeping is None or time.monotonic() < self._housekept + self.housekeeping_seconds:
            return
        self._housekept = time.monotonic()
        await self.housekeeping()

    async def run_once(self) -> bool:
        """Lease one operation and run it to the end (or until the lease is lost)."""
        now = self.clock()
        async with self.db.write() as conn:
            op = await repo.lease_next(conn, self.name, now, now + timedelta(seconds=self.lease_seconds))
        if op is None:
            return False
        log.info("worker %s runs operation %s (%s, %d items)", self.name, op.id, op.kind.value, op.total)
        try:
            while not self._stopping and await self._batch_retrying(op):
                pass
        except _LeaseLost:
            log.warning("worker %s lost the lease of operation %s", self.name, op.id)
        return True

    async def _batch_retrying(self, op: Operation) -> bool:
        """A batch that met a concurrent writer (another process claiming the same device) was
        rolled back whole; running it again sees that writer's effect and decides accordingly."""
        for _ in range(4):
            try:
                return await self.run_batch(op)
            except ConcurrentWrite:
                log.info("batch of operation %s met a concurrent write; running it again", op.id)
        return await self.run_batch(op)

    async def run_batch(self, op: Operation) -> bool:
        """Process the next batch of ``op`` in one transaction and commit it; ``True`` while items
        may remain. A lost lease rolls the batch back and ends the operation's run in this worker.

        Public as the seam the crash tests kill the process at (``tests/support/crash_launcher.py``
        wraps it and ``store.operations.finish_batch``): the product itself carries no crash hook.
        """
        async with self.db.read() as conn:
            pending = await repo.pending_items(conn, op.id, -1, self.batch_size)
        if not pending:
            return False
        batch = BATCHES[op.kind](op, pending, self.rules)  # items decoded before the write lock
        async with self.db.write() as conn:
            results = await batch.apply(conn, self.clock())
            rows = [(seq, dump_result(r)) for (seq, _), r in zip(pending, results, strict=True)]
            now = self.clock()
            succeeded = sum(1 for r in results if r.ok)
            held = await repo.finish_batch(
                conn, op.id, self.name, rows, succeeded, now, now + timedelta(seconds=self.lease_seconds)
            )
            if not held:
                raise _LeaseLost
            current = await repo.get_operation(conn, op.id)
            if current is not None and current.done:  # its last batch: one audit entry with the counts
                await record_completed(conn, current)
        telemetry.operation_items(len(pending))
        return len(pending) == self.batch_size


class _LeaseLost(Exception):
    """Another worker took the operation: this batch was rolled back, stop working on it."""
