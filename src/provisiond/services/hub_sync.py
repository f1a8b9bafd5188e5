"""The assigned hub learns the device before its registration reports ``assigned``.

A register call whose hub has a connector does not finish in its transaction: it commits the
operation ``assigning`` with the hub it decided (``with_decided_hub``), and ``CustomAllocations``
finishes it like a pending webhook call, ``decided_hub`` standing in for the webhook's answer
(so a restart resumes it the same way). Between the two transactions ``HubSync.apply`` runs the
connector, outside any transaction: it creates or updates the identity, then applies the twin the
reprovision policy asks for (the initial twin, or the old hub's twin when the device's data is
migrated). A refusing or unreachable hub raises ``RegistrationError`` (``HUB_FAILED``: the
device sees 400209 and the hub's error body); a throttling hub is retried with backoff for up to
``retry_seconds``, the operation staying ``assigning`` meanwhile.

Connectors are outbound adapters (``adapters/hub_connectors/``) behind the ``HubConnector`` port;
the composition root hands in the ``ConnectorFactory`` that builds one for a hub's connection.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.allocation import LinkedHub
from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.enrollments import AttestationType
from provisiond.domain.hub_identities import (
    HubConnection,
    HubIdentity,
    HubRefused,
    HubThrottled,
    TwinPatch,
    hub_authentication,
    twin_patch,
)
from provisiond.domain.registration_ids import id_key
from provisiond.domain.registration_results import (
    AllocationDecision,
    EnrollmentMatch,
    RegistrationError,
    failed_without_enrollment,
)
from provisiond.domain.registrations import (
    OperationStatus,
    RegistrationFailure,
    RegistrationOperation,
    RegistrationStatus,
)
from provisiond.domain.reprovision import Substatus
from provisiond.errors import InvalidInput
from provisiond.services.issuance import CertificateIssuer
from provisiond.store import credential_policies as certificates
from provisiond.store import hub_connections as repo
from provisiond.store import registrations as registration_repo
from provisiond.store import tpm as tpm_repo
from provisiond.store.db import Database

__all__ = [
    "ConnectorFactory",
    "HubConnector",
    "HubSync",
    "decided",
    "needs_connector",
    "supersede",
    "with_decided_hub",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class HubConnector(Protocol):
    """One linked hub's registry, as a connector reaches it. Every call raises ``HubRefused``
    (refused, unreachable) or ``HubThrottled`` (429); none is retried inside the adapter."""

    async def put_identity(self, identity: HubIdentity) -> None:
        """Create the device's identity, or replace it if it exists (idempotent)."""

    async def patch_twin(self, device_id: str, patch: TwinPatch) -> None:
        """Merge tags and desired properties into the device's twin."""

    async def read_twin(self, device_id: str) -> TwinPatch | None:
        """The device's tags and desired properties; ``None`` when the hub does not know it."""

    async def delete_identity(self, device_id: str) -> bool:
        """Delete the device's identity; ``False`` when the hub did not know it."""

    async def check(self) -> str:
        """A harmless call that proves the credentials; a line saying what it found."""


ConnectorFactory = Callable[[HubConnection], HubConnector]
"""Builds the connector of a hub's connection (``InvalidInput`` for a kind it cannot serve)."""


def needs_connector(hub: str, linked: list[LinkedHub]) -> bool:
    """Whether the hub a registration was assigned to has a connector (it must learn the device)."""
    return any(h.host_name.lower() == hub.lower() and h.connector != "none" for h in linked)


def with_decided_hub(op: RegistrationOperation, hub: str) -> RegistrationOperation:
    """The pending operation with the hub its register call decided, kept for finishing it."""
    return replace(op, context={**op.context, "decided_hub": hub})


def decided(op: RegistrationOperation) -> AllocationDecision | None:
    """The decision the register call recorded, if it made one (else a webhook decides)."""
    hub = op.context.get("decided_hub")
    return AllocationDecision(hub) if isinstance(hub, str) else None


async def supersede(
    conn: AsyncConnection,
    registration_id: str,
    now: datetime,
    why: str,
    issuer: CertificateIssuer | None = None,
) -> int:
    """End the registration's operations still ``assigning`` as ``failed`` (``why``): a newer
    register call or a deprovision wins over them (review finding 3). Their connector step checks
    before each hub write that its operation is still pending, so a superseded one stops there
    and cannot put back an identity, or old credentials, after the newer outcome. A certificate
    a superseded operation issued was never delivered: ``issuer`` revokes it, so it does not take
    the secondary thumbprint at the hub from the one the device holds."""
    count = 0
    for op in await registration_repo.pending_operations_of(conn, id_key(registration_id)):
        failure = RegistrationFailure.HUB_FAILED if decided(op) else RegistrationFailure.CUSTOM_FAILED
        error = RegistrationError(failure, f"superseded: {why}")
        done = failed_without_enrollment(op, error, now)
        if await registration_repo.finish_operation(conn, done):
            count += 1
            if issuer is not None:
                await issuer.revoke_failed(conn, done, now)
    return count


@dataclass
class HubSync:
    """Runs the connector of an assigned registration's hub, with backoff on throttling."""

    db: Database
    connectors: ConnectorFactory
    retry_seconds: float = 60.0
    clock: Clock = utc_now
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    first_backoff: float = 1.0
    # One connector per connection, kept: it holds its TLS context, built once (review finding 7).
    # A changed connection (secret, endpoint, CA) is another key, so none is used stale.
    _built: dict[HubConnection, HubConnector] = field(default_factory=dict, init=False, repr=False)

    async def apply(self, done: RegistrationOperation, match: EnrollmentMatch) -> RegistrationOperation:
        """Make the assigned hub know the device; ``RegistrationError`` (HUB_FAILED) if it refuses.

        Called between the two transactions with the operation as it will be recorded. An
        operation not ``assigned``, or assigned to a hub without a connector, passes unchanged.
        """
        state = done.state
        if done.status is not OperationStatus.ASSIGNED or state is None or state.assigned_hub is None:
            return done
        async with self.db.read() as conn:
            connection = await repo.get_connection(conn, state.assigned_hub)
            if connection is None:
                return done
            key = id_key(done.registration_id)
            is_tpm = state.attestation_type == AttestationType.TPM.value
            tpm = await tpm_repo.get_keys(conn, key) if is_tpm else None
            issued = await certificates.list_certificates(conn, key)
            migrating = state.substatus == Substatus.DEVICE_DATA_MIGRATED.value
            old = None
            if migrating and done.context.get("current_hub"):
                old = await repo.get_connection(conn, str(done.context["current_hub"]))
        now = self.clock()
        thumbprints = tuple(
            c.sha256_thumbprint
            for c in sorted(issued, key=lambda c: c.issued, reverse=True)
            if c.revoked is None and c.not_after > now
        )[:2]
        try:
            auth = hub_authentication(
                match.enrollment,
                match.attestation_type,
                done.registration_id,
                issued_thumbprints=thumbprints,
                tpm_hub_key=tpm.hub_key if tpm is not None else None,
            )
        except InvalidInput as exc:
            raise RegistrationError(RegistrationFailure.HUB_FAILED, exc.message) from exc
        # The name a broker admitting certificates sees: the issued leaf's CN (one spelling per
        # device, issuance.py), else the registration id an X.509 device's CN must equal.
        newest = max(issued, key=lambda c: c.issued, default=None)
        common_name = newest.registration_id if newest is not None else done.registration_id
        identity = HubIdentity(
            state.device_id or done.registration_id, auth, match.enrollment.iot_edge, common_name
        )
        patch = await self._twin(state.substatus, state.initial_twin, old, done)
        hub = self._connector(connection)
        deadline = time.monotonic() + self.retry_seconds  # real time: the clock may be a test's
        await self._call(lambda: hub.put_identity(identity), deadline, connection.host_name, done)
        written = (connection.host_name, identity.device_id)
        if patch is not None:
            try:
                await self._call(
                    lambda: hub.patch_twin(identity.device_id, patch), deadline, connection.host_name, done
                )
            except RegistrationError as exc:  # the identity exists: the failed state says where
                exc.written = written
                raise
        return replace(done, state=replace(state, identity_hub=written[0], identity_device_id=written[1]))

    async def undo(self, op: RegistrationOperation, written: tuple[str, str]) -> None:
        """Delete an identity this operation wrote whose registration did not end ``assigned``
        with it (the enrollment disabled or deleted meanwhile, the operation superseded; review
        finding 4), unless a newer registration is about to write it or now holds it there."""
        hub, device_id = written
        async with self.db.read() as conn:
            key = id_key(op.registration_id)
            state = await registration_repo.get_state(conn, key)
            newer = await registration_repo.pending_operations_of(conn, key)
            connection = await repo.get_connection(conn, hub)
        held = (
            state is not None
            and state.status == RegistrationStatus.ASSIGNED.value
            and (state.identity_hub or "").lower() == hub.lower()
            and state.identity_device_id == device_id
        )
        if newer or held or connection is None:
            return
        try:
            await self._connector(connection).delete_identity(device_id)
        except (RegistrationError, HubRefused, HubThrottled) as exc:
            log.warning("could not delete the identity %s at %s again: %s", device_id, hub, exc)

    async def _still_pending(self, op: RegistrationOperation) -> None:
        """Stop before a hub write when the operation was superseded meanwhile (finding 3)."""
        async with self.db.read() as conn:
            current = await registration_repo.get_operation(conn, op.operation_id)
        if current is not None and current.status is not OperationStatus.ASSIGNING:
            raise RegistrationError(RegistrationFailure.HUB_FAILED, "superseded before the hub was told")

    async def _twin(
        self,
        substatus: str | None,
        initial_twin: dict[str, object] | None,
        old: HubConnection | None,
        done: RegistrationOperation,
    ) -> TwinPatch | None:
        """What the reprovision policy puts in the twin: the initial twin on a first assignment or
        a reset, the old hub's twin when the data migrates, nothing when the device stays."""
        if substatus in (Substatus.INITIAL_ASSIGNMENT.value, Substatus.DEVICE_DATA_RESET.value):
            return twin_patch(initial_twin)
        if substatus == Substatus.DEVICE_DATA_MIGRATED.value and old is not None:
            device = done.context.get("current_device_id") or done.registration_id
            try:
                return await self._connector(old).read_twin(str(device))
            except (HubRefused, HubThrottled) as exc:  # the old hub's loss must not strand the device
                log.warning(
                    "could not read the twin of %s at %s to migrate it: %s", device, old.host_name, exc
                )
        return None

    def _connector(self, connection: HubConnection) -> HubConnector:
        built = self._built.get(connection)
        if built is not None:
            return built
        try:
            built = self.connectors(connection)
        except InvalidInput as exc:
            raise RegistrationError(RegistrationFailure.HUB_FAILED, exc.message) from exc
        except Exception as exc:  # a connection that cannot be built fails, never strands (finding 2)
            log.warning("no connector for %s: %s", connection.host_name, type(exc).__name__)
            raise RegistrationError(
                RegistrationFailure.HUB_FAILED, f"the hub {connection.host_name} could not be called"
            ) from exc
        if len(self._built) >= 64:  # bounded: connections change rarely, hubs are few
            self._built.clear()
        self._built[connection] = built
        return built

    async def _call(
        self, step: Callable[[], Awaitable[T]], deadline: float, hub: str, op: RegistrationOperation
    ) -> T:
        """One connector call: retried on 429 with exponential backoff and jitter (honouring
        the hub's Retry-After) until ``deadline``; any refusal ends the registration. Each try
        first checks that the operation was not superseded meanwhile."""
        backoff = self.first_backoff
        while True:
            await self._still_pending(op)
            try:
                return await step()
            except HubRefused as exc:
                raise RegistrationError(RegistrationFailure.HUB_FAILED, exc.message) from exc
            except HubThrottled as exc:
                left = deadline - time.monotonic()
                # Never sooner than our own backoff: a Retry-After of 0 must not spin (finding 6).
                jittered = backoff * (1 + random.random() / 2)  # noqa: S311 (jitter, not a secret)
                wait = max(exc.retry_after or 0.0, jittered)
                if left <= 0 or wait > left:
                    raise RegistrationError(
                        RegistrationFailure.HUB_FAILED,
                        f"{exc.message} (the hub {hub} throttled for longer than {self.retry_seconds:g} s)",
                    ) from exc
                await self.sleep(wait)
                backoff = min(backoff * 2, 30.0)
