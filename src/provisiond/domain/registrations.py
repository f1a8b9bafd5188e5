"""Device registration states, as the service API shows them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from provisiond.domain.certificates import CertificateInfo

__all__ = ["OperationStatus", "RegistrationOperation", "RegistrationState", "RegistrationStatus"]


class RegistrationStatus(StrEnum):
    UNASSIGNED = "unassigned"
    ASSIGNING = "assigning"
    ASSIGNED = "assigned"
    FAILED = "failed"
    DISABLED = "disabled"


class OperationStatus(StrEnum):
    ASSIGNING = "assigning"
    ASSIGNED = "assigned"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RegistrationState:
    """The outcome of a device's latest registration.

    ``enrollment_group_id`` is set when the device registered through a group, so the state
    can be listed per group.
    """

    registration_id: str
    status: str
    created: datetime
    updated: datetime
    etag: str
    enrollment_group_id: str | None = None
    assigned_hub: str | None = None
    device_id: str | None = None
    substatus: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    payload: dict[str, Any] | None = None
    attestation_type: str | None = None
    initial_twin: dict[str, Any] | None = None
    certificate_info: CertificateInfo | None = None
    signing_certificate_info: CertificateInfo | None = None


@dataclass(frozen=True, slots=True)
class RegistrationOperation:
    """One register call of a device: pending while ``assigning``, then frozen with its result.

    ``state`` is the registration state as it was when the operation finished (later
    registrations do not change it). ``context`` keeps what finishing a pending operation needs
    after a restart: the matched enrollment and the device's payload and address.
    """

    operation_id: str
    registration_id: str
    status: OperationStatus
    created: datetime
    updated: datetime
    poll_not_before: datetime | None = None
    state: RegistrationState | None = None
    context: dict[str, Any] = field(default_factory=dict)
