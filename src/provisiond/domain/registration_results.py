"""The result of a registration: built from who the device is and what was decided for it.

Whatever decided the hub (an allocation policy in the register call, a webhook later in the
background), the registration state is built here the same way, so the reprovision table, the
device id and what a failure records cannot differ between the two paths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from provisiond.domain.certificates import CertificateInfo
from provisiond.domain.enrollments import Enrollment, EnrollmentKind, new_etag
from provisiond.domain.registrations import (
    OperationStatus,
    RegistrationFailure,
    RegistrationOperation,
    RegistrationState,
    RegistrationStatus,
)
from provisiond.domain.reprovision import reprovision
from provisiond.errors import ProvisiondError

__all__ = [
    "AllocationDecision",
    "EnrollmentMatch",
    "RegistrationError",
    "assigned",
    "current_device_id",
    "current_hub",
    "disabled",
    "failed",
    "failed_without_enrollment",
]


class RegistrationError(ProvisiondError):
    """A registration ends ``failed`` for this reason: recorded in its state, never a refusal.

    The device's register call has long been answered; this only decides what its poll finds.
    """

    def __init__(
        self, failure: RegistrationFailure, message: str, written: tuple[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.failure = failure
        # (hub, device id) when an identity was written before the failure (a twin PATCH refused
        # after the PUT): the failed state keeps it, so deprovision can delete it.
        self.written = written


@dataclass(frozen=True, slots=True)
class EnrollmentMatch:
    """The enrollment a device is, how it proved it, and the certificates it was known by."""

    enrollment: Enrollment
    attestation_type: str
    certificate_info: CertificateInfo | None = None
    signing_certificate_info: CertificateInfo | None = None
    tpm_authentication_key: str | None = None  # the blob of a TPM device's hub key, if one

    @property
    def group_key(self) -> str | None:
        """The key a state is listed under for its group; ``None`` for an individual enrollment."""
        e = self.enrollment
        return e.key if e.kind is EnrollmentKind.GROUP else None


@dataclass(frozen=True, slots=True)
class AllocationDecision:
    """The hub a device goes to; a custom-allocation webhook may add a twin and a payload."""

    hub: str
    initial_twin: dict[str, Any] | None = None
    payload: Any = None


def current_hub(prior: RegistrationState | None) -> str | None:
    """The hub the device is assigned to now, if its latest registration assigned it."""
    if prior is None or prior.status != RegistrationStatus.ASSIGNED.value:
        return None
    return prior.assigned_hub


def current_device_id(prior: RegistrationState | None) -> str | None:
    """The device id at its current hub, if its latest registration assigned it."""
    if prior is None or prior.status != RegistrationStatus.ASSIGNED.value:
        return None
    return prior.device_id


def assigned(
    op: RegistrationOperation,
    match: EnrollmentMatch,
    prior: RegistrationState | None,
    decision: AllocationDecision,
    now: datetime,
) -> RegistrationOperation:
    """The operation finished ``assigned``: the reprovision table settles hub, substatus and twin."""
    e = match.enrollment
    outcome = reprovision(
        current_hub(prior),
        decision.hub,
        update_hub_assignment=e.update_hub_assignment,
        migrate_device_data=e.migrate_device_data,
    )
    twin = (
        (decision.initial_twin or e.initial_twin)
        if outcome.initial_twin_applies
        else (prior.initial_twin if prior else None)
    )
    state = RegistrationState(
        registration_id=op.registration_id,
        status=RegistrationStatus.ASSIGNED.value,
        created=prior.created if prior else now,
        updated=now,
        etag=new_etag(),
        enrollment_group_id=e.id if e.kind is EnrollmentKind.GROUP else None,
        assigned_hub=outcome.hub,
        device_id=_device_id(e, op.registration_id),
        substatus=outcome.substatus.value,
        payload=decision.payload,
        attestation_type=match.attestation_type,
        initial_twin=twin,
        certificate_info=match.certificate_info,
        signing_certificate_info=match.signing_certificate_info,
        tpm_authentication_key=match.tpm_authentication_key,
        **_identity(prior),
    )
    return replace(op, status=OperationStatus.ASSIGNED, updated=now, state=state)


def disabled(
    op: RegistrationOperation, match: EnrollmentMatch, prior: RegistrationState | None, now: datetime
) -> RegistrationOperation:
    """The operation finished ``failed`` with a ``disabled`` state: the enrollment is disabled."""
    error = RegistrationError(RegistrationFailure.DISABLED, "the enrollment is disabled")
    return failed(op, match, prior, error, now, RegistrationStatus.DISABLED)


def failed(
    op: RegistrationOperation,
    match: EnrollmentMatch,
    prior: RegistrationState | None,
    error: RegistrationError,
    now: datetime,
    status: RegistrationStatus = RegistrationStatus.FAILED,
) -> RegistrationOperation:
    """The operation finished ``failed``; the state keeps the enrollment the device matched."""
    e = match.enrollment
    state = RegistrationState(
        registration_id=op.registration_id,
        status=status.value,
        created=prior.created if prior else now,
        updated=now,
        etag=new_etag(),
        enrollment_group_id=e.id if e.kind is EnrollmentKind.GROUP else None,
        failure=error.failure,
        error_message=error.message,
        attestation_type=match.attestation_type,
        certificate_info=match.certificate_info,
        signing_certificate_info=match.signing_certificate_info,
        **_identity(prior, error.written),
    )
    return replace(op, status=OperationStatus.FAILED, updated=now, state=state)


def failed_without_enrollment(
    op: RegistrationOperation,
    error: RegistrationError,
    now: datetime,
    prior: RegistrationState | None = None,
) -> RegistrationOperation:
    """The operation finished ``failed`` after its enrollment was deleted: nothing to name."""
    state = RegistrationState(
        registration_id=op.registration_id,
        status=RegistrationStatus.FAILED.value,
        created=now,
        updated=now,
        etag=new_etag(),
        failure=error.failure,
        error_message=error.message,
        **_identity(prior, error.written),
    )
    return replace(op, status=OperationStatus.FAILED, updated=now, state=state)


def _identity(prior: RegistrationState | None, written: tuple[str, str] | None = None) -> dict[str, Any]:
    """Where the device's identity was last written: carried from state to state, whatever the
    status, so a failed or disabled registration does not forget it (review finding 1). A
    registration that writes one records it itself (``services/hub_sync.py``)."""
    if written is not None:
        return {"identity_hub": written[0], "identity_device_id": written[1]}
    if prior is not None and prior.identity_hub is not None:
        return {"identity_hub": prior.identity_hub, "identity_device_id": prior.identity_device_id}
    if prior is not None and prior.status == RegistrationStatus.ASSIGNED.value and prior.assigned_hub:
        # A state recorded before identities were tracked: its hub is where one may be.
        return {"identity_hub": prior.assigned_hub, "identity_device_id": prior.device_id}
    return {}


def _device_id(e: Enrollment, registration_id: str) -> str:
    """An individual enrollment's deviceId if it names one, else the registration id."""
    if e.kind is EnrollmentKind.INDIVIDUAL and e.device_id:
        return e.device_id
    return registration_id
