"""Device registration: a device proves who it is and is assigned a hub.

A register call is answered at once with an operation. For hashed, static and geoLatency the
result is decided in the same transaction that records the operation, so nothing is left pending.
For custom allocation the operation is committed ``assigning`` and a webhook decides in the
background (``services/custom_allocation.py``); so is one whose hub has a connector, which must
learn the device before it is ``assigned`` (``services/hub_sync.py``). Which enrollment a device
is, is decided in ``services/device_auth.py``; the registration state is built in
``domain/registration_results.py``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.allocation import AllocationFailed, LinkedHub, choose_hub, region_of
from provisiond.domain.certificate_requests import CertificateRequest
from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.enrollments import AllocationPolicy, AttestationType
from provisiond.domain.registration_ids import id_key
from provisiond.domain.registration_results import (
    AllocationDecision,
    EnrollmentMatch,
    RegistrationError,
    assigned,
    disabled,
    failed,
)
from provisiond.domain.registrations import (
    OperationStatus,
    RegistrationFailure,
    RegistrationOperation,
    RegistrationState,
)
from provisiond.errors import Throttled
from provisiond.services.custom_allocation import CustomAllocations, pending
from provisiond.services.device_auth import Credentials, DeviceAuthenticator, UnknownRegistration
from provisiond.services.hub_sync import needs_connector, supersede, with_decided_hub
from provisiond.services.issuance import CertificateIssuer, ReadCsr
from provisiond.services.registration_audit import record_registration
from provisiond.services.tpm_attestation import (
    PresentedTpm,
    TpmChallenge,
    TpmChallengeRequired,
    hub_key_blob,
    issue_challenge,
)
from provisiond.store import hubs as hub_repo
from provisiond.store import registrations as repo
from provisiond.store.db import Database

__all__ = ["RegistrationService", "RegistrationSettings"]

# What an operation id this service hands out can look like (``_new_operation_id``; the column
# holds 64 characters): anything else names no operation and never reaches the store, where
# PostgreSQL would refuse a NUL in the query's parameter (a 500 instead of the 404 it is). The
# device API's OpenAPI document publishes the pattern.
OPERATION_ID_PATTERN = r"^[A-Za-z0-9.-]{1,64}$"
_OPERATION_ID = re.compile(OPERATION_ID_PATTERN.strip("^$"))
_POLL_GRACE = timedelta(milliseconds=100)  # timers fire a little early; not a reason to throttle


@dataclass(frozen=True, slots=True)
class RegistrationSettings:
    """Operator settings of the device calls: ``retry_after`` is the wait, in seconds, a device is
    told before it polls (and the throttle of an earlier poll)."""

    retry_after: int = 1


@dataclass
class RegistrationService:
    """The device calls: register, poll the operation, look up the status, authenticate (MQTT)."""

    db: Database
    custom_allocations: CustomAllocations
    settings: RegistrationSettings = field(default_factory=RegistrationSettings)
    clock: Clock = utc_now
    issuer: CertificateIssuer = field(default_factory=CertificateIssuer)
    _auth: DeviceAuthenticator = field(init=False)

    def __post_init__(self) -> None:
        self._auth = DeviceAuthenticator(self.clock)

    async def register(
        self,
        id_scope: str,
        registration_id: str,
        credentials: Credentials,
        read_payload: Callable[[], Any],
        client_ip: str | None,
        read_tpm: Callable[[], PresentedTpm | None] | None = None,
        read_csr: ReadCsr | None = None,
    ) -> RegistrationOperation | TpmChallenge:
        """Authenticate the device, start (and usually finish) its registration.

        One write transaction does it all: the reads that authenticate the device, the
        allocation, the certificate a CSR asks for, and the writes (fewer round trips than a
        read transaction and a write one). ``read_payload`` and ``read_csr`` parse the device's
        body; they are called only once the device is authenticated, so an anonymous client
        cannot make the server parse anything, and a refused CSR leaves nothing written. The one
        exception is a TPM device's first call (``read_tpm``: its EK and SRK), made only when the
        registration id names a TPM enrollment: it is answered with a challenge (its CSR, if any,
        rides on the second, signed call).
        """
        async with self.db.write() as conn:
            try:
                match = await self._auth.authenticate(conn, id_scope, registration_id, credentials)
            except TpmChallengeRequired as need:
                if read_tpm is None or not credentials.tpm_capable:
                    raise
                return await issue_challenge(conn, need.enrollment, registration_id, read_tpm(), self.clock())
            payload = read_payload()
            request = self.issuer.checked(read_csr, registration_id)
            started = await self._start(conn, match, registration_id, payload, client_ip, request)
            await record_registration(conn, started)
        if started.status is OperationStatus.ASSIGNING:
            self.custom_allocations.spawn(started)
        return started

    async def _start(
        self,
        conn: AsyncConnection,
        match: EnrollmentMatch,
        registration_id: str,
        payload: Any,
        client_ip: str | None,
        request: CertificateRequest | None = None,
    ) -> RegistrationOperation:
        now = self.clock()
        context = {
            "kind": match.enrollment.kind.value,
            "enrollment": match.enrollment.id,
            "attestation": match.attestation_type,
            "payload": payload,
            "client_ip": client_ip,
        }
        if match.attestation_type == AttestationType.TPM.value and match.enrollment.provisioning_enabled:
            # The hub key is made now, so a custom allocation finishing later finds it in the context.
            blob = await hub_key_blob(conn, registration_id)
            match = replace(match, tpm_authentication_key=blob)
            context["tpm_authentication_key"] = blob
        op = RegistrationOperation(
            operation_id=_new_operation_id(),
            registration_id=registration_id,
            status=OperationStatus.ASSIGNING,
            created=now,
            updated=now,
            poll_not_before=now + timedelta(seconds=self.settings.retry_after),
            context=context,
        )
        prior = await repo.get_state(conn, id_key(registration_id))
        await supersede(conn, registration_id, now, "a newer registration of the device", self.issuer)
        policy = match.enrollment.allocation_policy or await hub_repo.get_allocation_policy(conn)
        if match.enrollment.provisioning_enabled and policy is AllocationPolicy.CUSTOM:
            started = await self.issuer.issue(conn, pending(op, prior), match, request, now)
            await repo.insert_operation(conn, started)
            return started
        linked = await hub_repo.list_hubs(conn)
        region = (
            region_of(client_ip, await hub_repo.list_regions(conn))
            if policy is AllocationPolicy.GEO_LATENCY
            else None
        )
        done = _allocated(op, match, prior, policy, linked, region, now)
        hub = done.state.assigned_hub if done.state is not None else None
        if hub is not None and needs_connector(hub, linked):
            # The hub must learn the device first: finished like a webhook call (services/hub_sync.py).
            waiting = with_decided_hub(pending(op, prior), hub)
            started = await self.issuer.issue(conn, waiting, match, request, now)
            await repo.insert_operation(conn, started)
            return started
        done = await self.issuer.issue(conn, done, match, request, now)
        await repo.insert_operation(conn, done)
        await repo.put_state(conn, done.state, match.group_key)  # type: ignore[arg-type]
        return done

    async def operation(
        self, id_scope: str, registration_id: str, operation_id: str, credentials: Credentials
    ) -> RegistrationOperation:
        """A poll: the operation's current status; throttled before its retry-after."""
        async with self.db.read() as conn:
            await self._auth.authenticate(conn, id_scope, registration_id, credentials)
            possible = _OPERATION_ID.fullmatch(operation_id) is not None
            op = await repo.get_operation(conn, operation_id) if possible else None
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
