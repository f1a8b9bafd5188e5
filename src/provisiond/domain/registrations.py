"""Device registration states, as the service API shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["RegistrationState"]


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
