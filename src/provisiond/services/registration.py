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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from cryptography import x509
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.allocation import AllocationFailed, LinkedHub, candidates, choose_hub, region_of
from provisiond.domain.certificates import CertificateInfo, describe
from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.enrollments import (
    AllocationPolicy,
    AttestationType,
    Enrollment,
    EnrollmentKind,
)
from provisiond.domain.ids import check_enrollment_id, id_key
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
from provisiond.domain.sas import SasToken, derive_device_key, parse_sas, verify_signature
from provisiond.domain.webhooks import check_webhook_url
from provisiond.domain.x509 import PresentedChain, anchor_depth, check_leaf, leaf_matches, presented_chain
from provisiond.errors import InvalidInput, NotFound, Throttled, Unauthorized
from provisiond.store import cas as ca_repo
from provisiond.store import enrollments as enrollment_repo
from provisiond.store import hubs as hub_repo
from provisiond.store import instance as instance_repo
from provisiond.store import registrations as repo
from provisiond.store.db import Database

__all__ = [
    "Credentials",
    "CustomAllocator",
    "CustomRequest",
    "RegistrationService",
    "RegistrationSettings",
    "UnknownIdScope",
    "UnknownRegistration",
]

log = logging.getLogger(__name__)


class UnknownIdScope(NotFound):
    """The id scope is not this instance's."""


class UnknownRegistration(NotFound):
    """No enrollment knows this registration id (or the operation id)."""


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


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a device presented: a SAS ``Authorization`` value and/or a TLS client chain (DER)."""

    authorization: str | None = None
    client_chain: tuple[bytes, ...] = ()
    chain_error: str | None = None


@dataclass
class RegistrationService:
    db: Database
    allocator: CustomAllocator
    settings: RegistrationSettings = field(default_factory=RegistrationSettings)
    clock: Clock = utc_now
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _id_scope: str | None = None

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
            match = await self._authenticate_in(conn, id_scope, registration_id, credentials)
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
            await self._authenticate_in(conn, id_scope, registration_id, credentials)
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
        await self._authenticate(id_scope, registration_id, credentials)

    async def status(
        self, id_scope: str, registration_id: str, credentials: Credentials
    ) -> RegistrationState:
        """The device's latest registration state (the status lookup call)."""
        await self._authenticate(id_scope, registration_id, credentials)
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

    # -- authentication ---------------------------------------------------------------------

    async def _authenticate(
        self, id_scope: str, registration_id: str, credentials: Credentials
    ) -> EnrollmentMatch:
        async with self.db.read() as conn:
            return await self._authenticate_in(conn, id_scope, registration_id, credentials)

    async def _authenticate_in(
        self, conn: AsyncConnection, id_scope: str, registration_id: str, credentials: Credentials
    ) -> EnrollmentMatch:
        """A SAS token when one is sent, else the TLS client certificate chain.

        Each attestation type only answers two questions (does the individual enrollment's
        credential match? which group's does?); who decides is settled in ``_apply_precedence``.
        """
        # The instance's id scope never changes: it is read once.
        if self._id_scope is None:
            instance = await instance_repo.get_instance(conn)
            self._id_scope = instance.id_scope if instance else None
        if self._id_scope is None or self._id_scope.lower() != id_scope.lower():
            raise UnknownIdScope(f"id scope {id_scope!r} is not served here")
        try:
            check_enrollment_id(registration_id)
        except InvalidInput as exc:
            raise UnknownRegistration(exc.message) from exc
        if credentials.authorization is None and credentials.chain_error:
            raise Unauthorized(credentials.chain_error)
        individual = await enrollment_repo.get_enrollment(
            conn, EnrollmentKind.INDIVIDUAL, id_key(registration_id)
        )
        if credentials.authorization is None and credentials.client_chain:
            now = self.clock()
            chain = presented_chain(credentials.client_chain)
            try:
                check_leaf(chain, registration_id, now)
            except InvalidInput as exc:
                raise Unauthorized(exc.message) from exc
            own = _own_x509(individual, chain)
            return await _apply_precedence(
                registration_id, individual, own, lambda: _group_x509(conn, chain, now)
            )
        token = parse_sas(credentials.authorization)
        expected = f"{id_scope}/registrations/{registration_id}".lower()
        if token.resource.lower() != expected:
            raise Unauthorized("the token's resource (sr) is not this device's registration")
        at = self.clock().timestamp()
        if token.expiry <= at:
            raise Unauthorized("SharedAccessSignature has expired")
        own = _own_symmetric(individual, token, registration_id, at)
        return await _apply_precedence(
            registration_id, individual, own, lambda: _group_symmetric(conn, token, registration_id, at)
        )


async def _apply_precedence(
    registration_id: str,
    individual: Enrollment | None,
    own: EnrollmentMatch | None,
    groups: Callable[[], Awaitable[_GroupSearch]],
) -> EnrollmentMatch:
    """Attestation precedence, decided here and nowhere else (docs/devices.md).

    If an individual enrollment exists for the registration id, it alone decides: its credential
    and its ``provisioningStatus``. Groups are consulted only when none exists, with one
    exception that is not a fallback: a *disabled* individual enrollment blocks a device that
    proves itself with a group's credential ("disenrollment" of one member of a group), so that
    device gets the ``disabled`` result of the individual enrollment, never the group's hub.
    """
    if individual is None:
        found = await groups()
        if found.match is None:
            if found.candidates == 0:
                raise UnknownRegistration(f"no enrollment for registration id {registration_id!r}")
            raise Unauthorized(found.refusal)
        return found.match
    if own is not None:
        return own
    if not individual.provisioning_enabled:
        found = await groups()
        if found.match is not None:
            return replace(found.match, enrollment=individual)
    raise Unauthorized(
        f"the credential is not the one of the individual enrollment for {registration_id!r}, "
        "which alone decides for its registration id"
    )


@dataclass(frozen=True, slots=True)
class _GroupSearch:
    """The group that accepted a credential, if any; ``candidates``: groups of that attestation type."""

    match: EnrollmentMatch | None
    candidates: int
    refusal: str


def _own_symmetric(
    individual: Enrollment | None, token: SasToken, registration_id: str, at: float
) -> EnrollmentMatch | None:
    if individual is not None and _signed_by(token, _keys(individual, registration_id), at):
        return EnrollmentMatch(individual, AttestationType.SYMMETRIC_KEY.value)
    return None


async def _group_symmetric(
    conn: AsyncConnection, token: SasToken, registration_id: str, at: float
) -> _GroupSearch:
    """The first group, in id order, whose derived key signed the token."""
    async for group in _groups(conn):
        if _signed_by(token, _keys(group, registration_id), at):
            return _GroupSearch(EnrollmentMatch(group, AttestationType.SYMMETRIC_KEY.value), 1, "")
    # A wrong key for an unknown registration id is "not found", as it always was in DPS.
    return _GroupSearch(None, 0, "SharedAccessSignature signature does not match")


def _own_x509(individual: Enrollment | None, chain: PresentedChain) -> EnrollmentMatch | None:
    """The individual enrollment, if it holds this exact leaf."""
    x = individual.attestation.x509 if individual is not None else None
    if individual is None or x is None:
        return None
    if leaf_matches(chain, [x.client_primary, x.client_secondary]) is None:
        return None
    return EnrollmentMatch(individual, AttestationType.X509.value, certificate_info=chain.leaf_info)


async def _group_x509(conn: AsyncConnection, chain: PresentedChain, now: datetime) -> _GroupSearch:
    """The X.509 group whose anchor is nearest the leaf in the presented chain."""
    cas = {name.lower(): der for name, der in await ca_repo.list_cas(conn)}
    best: tuple[int, Enrollment, CertificateInfo] | None = None
    x509_groups = 0
    async for group in _groups(conn):
        anchors = _group_anchors(group, cas)
        if not anchors:
            continue
        x509_groups += 1
        found = anchor_depth(chain, anchors, now)
        if found is not None and (best is None or found[0] < best[0]):
            best = (found[0], group, describe(found[1]))
    refusal = "the certificate matches no enrollment: not an enrolled leaf, no trusted chain"
    if best is None:
        return _GroupSearch(None, x509_groups, refusal)
    return _GroupSearch(
        EnrollmentMatch(best[1], AttestationType.X509.value, chain.leaf_info, best[2]), x509_groups, ""
    )


async def _groups(conn: AsyncConnection) -> AsyncIterator[Enrollment]:
    """Every enrollment group in id order, a page at a time."""
    after: str | None = None
    while True:
        page = await enrollment_repo.page_enrollments(conn, EnrollmentKind.GROUP, after, 100)
        for group in page:
            yield group
        if len(page) < 100:
            return
        after = page[-1].key


def _group_anchors(group: Enrollment, cas: dict[str, bytes]) -> list[x509.Certificate]:
    """The trust anchors of an X.509 group: its signing certificates and its referenced CAs."""
    x = group.attestation.x509
    if group.attestation.type is not AttestationType.X509 or x is None:
        return []
    ders = [cert.der for cert in (x.signing_primary, x.signing_secondary) if cert is not None]
    ders += [cas[name.lower()] for name in (x.ca_primary, x.ca_secondary) if name and name.lower() in cas]
    return [x509.load_der_x509_certificate(der) for der in ders]


_POLL_GRACE = timedelta(milliseconds=100)  # timers fire a little early; not a reason to throttle


def _keys(e: Enrollment, registration_id: str) -> list[str]:
    sym = e.attestation.symmetric_key
    if e.attestation.type is not AttestationType.SYMMETRIC_KEY or sym is None:
        return []
    if e.kind is EnrollmentKind.GROUP:
        return [
            derive_device_key(sym.primary_key, registration_id),
            derive_device_key(sym.secondary_key, registration_id),
        ]
    return [sym.primary_key, sym.secondary_key]


def _signed_by(token: SasToken, keys: list[str], now: float) -> bool:
    if not keys:
        return False
    try:
        verify_signature(token, keys, now)
    except Unauthorized:
        return False
    return True


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
