"""Device registrations: each register call's operation and the device's latest state.

A failed registration records why as a ``RegistrationFailure`` kind; the numbers each API shows
for a kind (DPS's six-digit errorCodes) belong to the dialects that show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum, auto
from typing import Any

from provisiond.domain.certificates import CertificateInfo
from provisiond.domain.credential_policies import IssuedChain

__all__ = [
    "OperationStatus",
    "RegistrationFailure",
    "RegistrationOperation",
    "RegistrationState",
    "RegistrationStatus",
]


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


class RegistrationFailure(Enum):
    """Why a registration ended ``failed`` (or ``disabled``); the message says the particulars.

    Not a StrEnum: no wire or storage format spells a kind, each maps it with its own table.
    """

    DISABLED = auto()  # the enrollment (or the group) is disabled
    NO_HUB = auto()  # no linked hub could be chosen for a hashed, static or geoLatency policy
    CUSTOM_FAILED = auto()  # the custom-allocation webhook could not decide (or was not allowed)
    CUSTOM_NO_HUB = auto()  # the webhook answered without naming a hub
    CUSTOM_UNAUTHORIZED = auto()  # the webhook refused the call (401)
    HUB_FAILED = auto()  # the assigned hub refused the device's identity (or could not be reached)


@dataclass(frozen=True, slots=True)
class RegistrationState:
    """The outcome of a device's latest registration.

    ``enrollment_group_id`` is set when the device registered through a group, so the state
    can be listed per group. ``failure`` and ``error_message`` say why a registration failed.
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
    failure: RegistrationFailure | None = None
    error_message: str | None = None
    payload: dict[str, Any] | None = None
    attestation_type: str | None = None
    initial_twin: dict[str, Any] | None = None
    certificate_info: CertificateInfo | None = None
    signing_certificate_info: CertificateInfo | None = None
    # A TPM device's key at its hub, as the activation blob (base64) only its TPM can import.
    tpm_authentication_key: str | None = None
    # A device that sent a CSR: what it got (IssuanceOutcome), and the serial when issued.
    issuance: str | None = None
    issued_serial: str | None = None
    # Where a connector last wrote the device's identity (hub, device id), kept whatever the
    # status, so that ``deprovision`` deletes it even after a failed or disabled registration.
    identity_hub: str | None = None
    identity_device_id: str | None = None


@dataclass(frozen=True, slots=True)
class RegistrationOperation:
    """One register call of a device: pending while ``assigning``, then frozen with its result.

    ``state`` is the registration state as it was when the operation finished (later
    registrations do not change it). ``context`` keeps what finishing a pending operation needs
    after a restart: the matched enrollment and the device's payload and address.
    ``issuance`` and ``certificate`` say what a device that sent a CSR got (services/issuance.py);
    the chain is shown by this operation only, never by the registration state.
    """

    operation_id: str
    registration_id: str
    status: OperationStatus
    created: datetime
    updated: datetime
    poll_not_before: datetime | None = None
    state: RegistrationState | None = None
    context: dict[str, Any] = field(default_factory=dict)
    issuance: str | None = None
    certificate: IssuedChain | None = None
