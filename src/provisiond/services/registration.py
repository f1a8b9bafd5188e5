"""Device registration: a device proves who it is and is assigned a hub.

A register call is answered at once with an operation. For hashed, static and geoLatency the
result is decided in the same transaction that records the operation, so nothing is left pending.
Custom allocation asks a webhook: the operation is committed as ``assigning``, the webhook call
runs in the background, and the result is recorded with a conditional write (``WHERE status =
'assigning'``), so however often the webhook is called (a retry, a restart that resumes pending
operations, two processes) the registration result is recorded exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.allocation import AllocationFailed, LinkedHub, candidates, choose_hub, region_of
from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.enrollments import (
    AllocationPolicy,
    Enrollment,
    EnrollmentKind,
)
from provisiond.domain.ids import id_key
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
from provisiond.errors import InvalidInput, Throttled
from provisiond.services.device_auth import Credentials, DeviceAuthenticator, UnknownRegistration
from provisiond.store import enrollments as enrollment_repo
from provisiond.store import hubs as hub_repo
from provisiond.store import registrations as repo
from provisiond.store.db import Database

__all__ = ["CustomAllocator", "CustomRequest", "RegistrationService", "RegistrationSettings"]

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


@dataclass(frozen=True, slots=True)
class RegistrationSettings:
    retry_after: int = 1
    webhook_timeout: float = 10.0
    webhook_allowlist: tuple[str, ...] = ()
    webhook_allow_http: bool = False


@dataclass
class RegistrationService:
    db: Database
    allocator: CustomAllocator
    settings: RegistrationSettings = field(default_factory=RegistrationSettings)
    clock: Clock = utc_now
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _auth: DeviceAuthenticator = field(init=False)

    def __post_init__(self) -> None:
        self._auth = DeviceAuthenticator(self.clock)

    # -- device calls -----------------------------------------------------------------------

    async def register(
        self,
        id_scope: str,
        registration_id: str,
        credentials: Credentials,
        read_payload: Callable[[], Any],
        client_ip: str | None,
    ) -> RegistrationOperation:
        """Authenticate the device, start (and usually finish) its registration.

        One write transaction does it all: the reads that authenticate the device, the
        allocation, and the writes (fewer round trips than a read transaction and a write one).
        ``read_payload`` parses the device's body; it is called only once the device is
        authenticated, so an anonymous client cannot make the server parse anything.
        """
        async with self.db.write() as conn:
            match = await self._auth.authenticate(conn, id_scope, registration_id, credentials)
            payload = read_payload()
            pending = await self._start(conn, match, registration_id, payload, client_ip)
        if pending.status is OperationStatus.ASSIGNING:
            self._spawn(pending)
        return pending

    async def _start(
        self,
        conn: AsyncConnection,
        match: EnrollmentMatch,
        registration_id: str,
        payload: Any,
        client_ip: str | None,
    ) -> RegistrationOperation:
        now = self.clock()
        op = RegistrationOperation(
            operation_id=_new_operation_id(),
            registration_id=registration_id,
            status=OperationStatus.ASSIGNING,
            created=now,
            updated=now,
            poll_not_before=now + timedelta(seconds=self.settings.retry_after),
            context={
                "kind": match.enrollment.kind.value,
                "enrollment": match.enrollment.id,
                "attestation": match.attestation_type,
                "payload": payload,
                "client_ip": client_ip,
            },
        )
        prior = await repo.get_state(conn, id_key(registration_id))
        policy = match.enrollment.allocation_policy or await hub_repo.get_allocation_policy(conn)
        if match.enrollment.provisioning_enabled and policy is AllocationPolicy.CUSTOM:
            pending = replace(
                op,
                context={
                    **op.context,
                    "current_hub": current_hub(prior),
                    "current_device_id": current_device_id(prior),
                },
            )
            await repo.insert_operation(conn, pending)
            return pending
        linked = await hub_repo.list_hubs(conn)
        region = (
            region_of(client_ip, await hub_repo.list_regions(conn))
            if policy is AllocationPolicy.GEO_LATENCY
            else None
        )
        done = _allocated(op, match, prior, policy, linked, region, now)
        await repo.insert_operation(conn, done)
        await repo.put_state(conn, done.state, match.group_key)  # type: ignore[arg-type]
        return done

    async def operation(
        self, id_scope: str, registration_id: str, operation_id: str, credentials: Credentials
    ) -> RegistrationOperation:
        """A poll: the operation's current status; throttled before its retry-after."""
        async with self.db.read() as conn:
            await self._auth.authenticate(conn, id_scope, registration_id, credentials)
            op = await repo.get_operation(conn, operation_id)
        now = self.clock()
        if op is None or id_key(op.registration_id) != id_key(registration_id):
            raise UnknownRegistration(f"no operation {operation_id!r} for {registration_id!r}")
        if op.poll_not_before is not None and now < op.poll_not_before - _POLL_GRACE:
            wait = max(1, int((op.poll_not_before - now).total_seconds() + 0.999))
            raise Throttled(f"polled {registration_id!r} before its retry-after", wait)
        if op.status is OperationStatus.ASSIGNING:
            async with self.db.write() as conn:
                await repo.set_poll_not_before(
                    conn, operation_id, now + timedelta(seconds=self.settings.retry_after)
                )
        return op

    async def authenticate(self, id_scope: str, registration_id: str, credentials: Credentials) -> None:
        """Check a device's credentials without registering it (an MQTT CONNECT)."""
        async with self.db.read() as conn:
            await self._auth.authenticate(conn, id_scope, registration_id, credentials)

    async def status(
        self, id_scope: str, registration_id: str, credentials: Credentials
    ) -> RegistrationState:
        """The device's latest registration state (the status lookup call)."""
        await self.authenticate(id_scope, registration_id, credentials)
        async with self.db.read() as conn:
            state = await repo.get_state(conn, id_key(registration_id))
        if state is None:
            raise UnknownRegistration(f"{registration_id!r} has not registered")
        return state

    # -- pending custom allocations ---------------------------------------------------------

    async def resume_pending(self) -> int:
        """Restart the webhook calls of operations left ``assigning`` (e.g. by a restart)."""
        async with self.db.read() as conn:
            pending = await repo.pending_operations(conn)
        for op in pending:
            self._spawn(op)
        return len(pending)

    async def drain(self) -> None:
        """Wait for running webhook calls (tests, orderly shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    def _spawn(self, op: RegistrationOperation) -> None:
        task = asyncio.get_running_loop().create_task(self._finish_custom(op))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish_custom(self, op: RegistrationOperation) -> None:
        try:
            await self._run_custom(op)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not leave the operation pending forever in this process
            log.exception("custom allocation of operation %s failed unexpectedly", op.operation_id)

    async def _run_custom(self, op: RegistrationOperation) -> None:
        ctx = op.context
        async with self.db.read() as conn:
            enrollment = await enrollment_repo.get_enrollment(
                conn, EnrollmentKind(ctx["kind"]), id_key(ctx["enrollment"])
            )
            linked = await hub_repo.list_hubs(conn)
            prior = await repo.get_state(conn, id_key(op.registration_id))
        match = EnrollmentMatch(enrollment, ctx["attestation"]) if enrollment else None
        try:
            if match is None:
                raise RegistrationError(
                    RegistrationFailure.CUSTOM_FAILED,
                    "the enrollment was deleted while the registration was assigning",
                )
            custom = match.enrollment.custom_allocation
            if custom is None:
                raise RegistrationError(
                    RegistrationFailure.CUSTOM_FAILED, "the enrollment has no customAllocationDefinition"
                )
            try:
                check_webhook_url(
                    custom.webhook_url, self.settings.webhook_allowlist, self.settings.webhook_allow_http
                )
            except InvalidInput as exc:
                raise RegistrationError(RegistrationFailure.CUSTOM_FAILED, exc.message) from exc
            pool = candidates(match.enrollment, linked)
            current = ctx.get("current_hub")
            if current and not match.enrollment.update_hub_assignment:
                pool = [hub for hub in pool if hub.host_name.lower() == current.lower()] or pool
            request = CustomRequest(
                enrollment=match.enrollment,
                registration_id=op.registration_id,
                linked_hubs=[hub.host_name for hub in pool],
                current_hub=current,
                current_device_id=ctx.get("current_device_id"),
                payload=ctx.get("payload"),
                attestation_type=ctx["attestation"],
            )
            decision = await self.allocator(request, self.settings.webhook_timeout)
            if decision.hub.lower() not in {hub.host_name.lower() for hub in pool}:
                raise RegistrationError(
                    RegistrationFailure.CUSTOM_FAILED,
                    f"the webhook chose {decision.hub!r}, which is not one of linkedHubs",
                )
            done = assigned(op, match, prior, decision, self.clock())
        except RegistrationError as exc:
            now = self.clock()
            done = failed(op, match, prior, exc, now) if match else failed_without_enrollment(op, exc, now)
        async with self.db.write() as conn:
            if await repo.finish_operation(conn, done) and done.state is not None:
                await repo.put_state(conn, done.state, match.group_key if match else None)


_POLL_GRACE = timedelta(milliseconds=100)  # timers fire a little early; not a reason to throttle


def _allocated(
    op: RegistrationOperation,
    match: EnrollmentMatch,
    prior: RegistrationState | None,
    policy: AllocationPolicy,
    linked: Sequence[LinkedHub],
    region: str | None,
    now: datetime,
) -> RegistrationOperation:
    """The finished operation for a policy decided in the register call (or a disabled enrollment)."""
    if not match.enrollment.provisioning_enabled:
        return disabled(op, match, prior, now)
    try:
        hub = choose_hub(policy, match.enrollment, match.enrollment.id, linked, client_region=region)
    except AllocationFailed as exc:
        error = RegistrationError(RegistrationFailure.NO_HUB, exc.message)
        return failed(op, match, prior, error, now)
    return assigned(op, match, prior, AllocationDecision(hub.host_name), now)


def _new_operation_id() -> str:
    # Letters, digits, '.' and '-' only: the id travels in paths and MQTT topics.
    return f"4.{secrets.token_hex(8)}.{secrets.token_hex(16)}"
