"""Custom allocation: a webhook decides the hub, in the background, and its answer is recorded once.

The register call commits the operation ``assigning`` with what finishing it needs
(``pending``); the webhook call then runs as an asyncio task, and the result is recorded with a
conditional write (``WHERE status = 'assigning'``), so however often the webhook is called (a
retry, a restart that resumes pending operations, two processes) the registration result is
recorded exactly once. An operation whose register call decided a hub with a connector is
finished here too, its recorded decision standing in for the webhook (``services/hub_sync.py``).
The webhook itself is behind the ``CustomAllocator`` port, so this
module knows no HTTP (the adapter is ``adapters/allocation_webhook.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.allocation import LinkedHub, candidates
from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.enrollments import Enrollment, EnrollmentKind
from provisiond.domain.registration_ids import id_key
from provisiond.domain.registration_results import (
    AllocationDecision,
    EnrollmentMatch,
    RegistrationError,
    assigned,
    current_device_id,
    current_hub,
    disabled,
    failed,
    failed_without_enrollment,
)
from provisiond.domain.registrations import (
    OperationStatus,
    RegistrationFailure,
    RegistrationOperation,
    RegistrationState,
)
from provisiond.domain.webhooks import check_webhook_url
from provisiond.errors import InvalidInput
from provisiond.services.enrollments import WebhookRules
from provisiond.services.hub_sync import HubSync, decided
from provisiond.services.issuance import CertificateIssuer
from provisiond.services.registration_audit import record_registration
from provisiond.store import enrollments as enrollment_repo
from provisiond.store import hubs as hub_repo
from provisiond.store import registrations as repo
from provisiond.store.db import Database

__all__ = ["CustomAllocations", "CustomAllocator", "CustomRequest", "pending"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CustomRequest:
    """What a custom-allocation webhook is told."""

    enrollment: Enrollment
    registration_id: str
    linked_hubs: list[str]
    current_hub: str | None
    current_device_id: str | None
    payload: Any
    attestation_type: str


class CustomAllocator(Protocol):
    """Calls the enrollment's webhook; raises ``RegistrationError`` for any failure."""

    async def __call__(self, request: CustomRequest, time_limit: float) -> AllocationDecision: ...


def pending(op: RegistrationOperation, prior: RegistrationState | None) -> RegistrationOperation:
    """The operation as committed ``assigning``: it keeps the device's current assignment,
    which the webhook is told, as it was when the device registered."""
    return replace(
        op,
        context={
            **op.context,
            "current_hub": current_hub(prior),
            "current_device_id": current_device_id(prior),
        },
    )


@dataclass
class CustomAllocations:
    """The webhook calls this process runs: started, resumed after a restart, drained, cancelled."""

    db: Database
    allocator: CustomAllocator
    rules: WebhookRules
    timeout: float = 10.0
    clock: Clock = utc_now
    issuer: CertificateIssuer = field(default_factory=CertificateIssuer)
    hub_sync: HubSync | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    def spawn(self, op: RegistrationOperation) -> None:
        """Finish a pending operation in the background; the register call does not wait."""
        task = asyncio.get_running_loop().create_task(self.finish(op))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resume_pending(self) -> int:
        """Restart the webhook calls of operations left ``assigning`` (e.g. by a restart)."""
        async with self.db.read() as conn:
            left = await repo.pending_operations(conn)
        for op in left:
            self.spawn(op)
        return len(left)

    async def drain(self) -> None:
        """Wait for running webhook calls (tests, orderly shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def cancel(self) -> None:
        """Stop the running webhook calls (shutdown); their operations stay pending for a resume."""
        for task in self._tasks:
            task.cancel()

    async def finish(self, op: RegistrationOperation) -> None:
        """Ask the webhook and record the result, unless the operation was finished meanwhile."""
        try:
            await self._finish(op)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not leave the operation pending forever (review finding 2)
            log.exception("custom allocation of operation %s failed unexpectedly", op.operation_id)
            await self._give_up(op)

    async def _give_up(self, op: RegistrationOperation) -> None:
        """Record ``failed`` for an operation that could not be finished, so the device's poll
        ends and a resume does not repeat the same failure for ever."""
        failure = RegistrationFailure.HUB_FAILED if decided(op) else RegistrationFailure.CUSTOM_FAILED
        error = RegistrationError(failure, "the registration could not be finished (see the server log)")
        try:
            async with self.db.write() as conn:
                prior = await repo.get_state(conn, id_key(op.registration_id))
                done = failed_without_enrollment(op, error, self.clock(), prior)
                if await repo.finish_operation(conn, done) and done.state is not None:
                    await self.issuer.revoke_failed(conn, done, self.clock())
                    await repo.put_state(conn, done.state, None)
                    await record_registration(conn, done)
        except Exception:  # the database itself failing: the operation stays pending for a resume
            log.exception("could not record the failure of operation %s", op.operation_id)

    async def _finish(self, op: RegistrationOperation) -> None:
        ctx = op.context
        async with self.db.read() as conn:
            enrollment = await enrollment_repo.get_enrollment(
                conn, EnrollmentKind(ctx["kind"]), id_key(ctx["enrollment"])
            )
            linked = await hub_repo.list_hubs(conn)
            prior = await repo.get_state(conn, id_key(op.registration_id))
        written: tuple[str, str] | None = None  # (hub, device id) where this operation wrote an identity
        match = (
            EnrollmentMatch(
                enrollment,
                ctx["attestation"],
                tpm_authentication_key=ctx.get("tpm_authentication_key"),
            )
            if enrollment
            else None
        )
        try:
            if match is None:
                raise RegistrationError(
                    RegistrationFailure.CUSTOM_FAILED,
                    "the enrollment was deleted while the registration was assigning",
                )
            decision = decided(op) or await self._ask(op, match, linked)
            done = assigned(op, match, prior, decision, self.clock())
            if self.hub_sync is not None:  # the assigned hub learns the device (services/hub_sync.py)
                told = await self.hub_sync.apply(done, match)
                if told is not done and told.state is not None and told.state.identity_hub:
                    written = (told.state.identity_hub, told.state.identity_device_id or "")
                done = told
        except RegistrationError as exc:
            written = exc.written
            now = self.clock()
            done = (
                failed(op, match, prior, exc, now)
                if match
                else failed_without_enrollment(op, exc, now, prior)
            )
        async with self.db.write() as conn:
            if match is not None and done.status is OperationStatus.ASSIGNED:
                done, match = await self._recheck(conn, op, match, prior, done)
                if written is not None and done.state is not None:  # where the identity now is
                    done = replace(
                        done,
                        state=replace(done.state, identity_hub=written[0], identity_device_id=written[1]),
                    )
            done = self.issuer.settled(done)
            recorded = await repo.finish_operation(conn, done)
            if recorded and done.state is not None:
                await self.issuer.revoke_failed(conn, done, self.clock())
                await repo.put_state(conn, done.state, match.group_key if match else None)
                await record_registration(conn, done)
        # The hub must not keep an identity DPS does not report as assigned (review finding 4).
        lost = not recorded or done.status is not OperationStatus.ASSIGNED
        if written is not None and self.hub_sync is not None and lost:
            await self.hub_sync.undo(op, written)

    async def _recheck(
        self,
        conn: AsyncConnection,
        op: RegistrationOperation,
        match: EnrollmentMatch,
        prior: RegistrationState | None,
        done: RegistrationOperation,
    ) -> tuple[RegistrationOperation, EnrollmentMatch]:
        """The webhook took time (or a restart came between): what the enrollments say now,
        read in the transaction that records the result, still decides. A device disabled, or
        disenrolled from its group by a disabled individual enrollment, meanwhile is not assigned."""
        now = self.clock()
        e = match.enrollment
        if e.kind is EnrollmentKind.GROUP:
            individual = await enrollment_repo.get_enrollment(
                conn, EnrollmentKind.INDIVIDUAL, id_key(op.registration_id)
            )
            if individual is not None and not individual.provisioning_enabled:
                mine = replace(match, enrollment=individual)
                return disabled(op, mine, prior, now), mine
            if individual is not None:
                error = RegistrationError(
                    RegistrationFailure.CUSTOM_FAILED,
                    "an individual enrollment now decides for this registration id: register again",
                )
                return failed(op, match, prior, error, now), match
        fresh = await enrollment_repo.get_enrollment(conn, e.kind, e.key)
        if fresh is None:
            error = RegistrationError(
                RegistrationFailure.CUSTOM_FAILED, "the enrollment was deleted while the webhook answered"
            )
            return failed(op, match, prior, error, now), match
        if not fresh.provisioning_enabled:
            return disabled(op, match, prior, now), match
        return done, match

    async def _ask(
        self, op: RegistrationOperation, match: EnrollmentMatch, linked: Sequence[LinkedHub]
    ) -> AllocationDecision:
        """The webhook's decision, called only on an allowed URL and kept only for a candidate hub."""
        custom = match.enrollment.custom_allocation
        if custom is None:
            raise RegistrationError(
                RegistrationFailure.CUSTOM_FAILED, "the enrollment has no customAllocationDefinition"
            )
        try:
            check_webhook_url(custom.webhook_url, self.rules.allowlist, self.rules.allow_http)
        except InvalidInput as exc:
            raise RegistrationError(RegistrationFailure.CUSTOM_FAILED, exc.message) from exc
        pool = candidates(match.enrollment, linked)
        current = op.context.get("current_hub")
        if current and not match.enrollment.update_hub_assignment:
            pool = [hub for hub in pool if hub.host_name.lower() == current.lower()] or pool
        request = CustomRequest(
            enrollment=match.enrollment,
            registration_id=op.registration_id,
            linked_hubs=[hub.host_name for hub in pool],
            current_hub=current,
            current_device_id=op.context.get("current_device_id"),
            payload=op.context.get("payload"),
            attestation_type=match.attestation_type,
        )
        decision = await self.allocator(request, self.timeout)
        if decision.hub.lower() not in {hub.host_name.lower() for hub in pool}:
            raise RegistrationError(
                RegistrationFailure.CUSTOM_FAILED,
                f"the webhook chose {decision.hub!r}, which is not one of linkedHubs",
            )
        return decision
