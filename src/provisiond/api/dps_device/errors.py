"""The DPS device error table and policy. Every code is listed in ``docs/errors.md`` (DPS device API).

The table serves both transports: HTTP (through ``POLICY``) and MQTT (``mqtt/session.py``).
"""

from __future__ import annotations

from provisiond.api.dps_wire import CERTIFICATE_REQUEST_REJECTED, DpsError, dps_policy
from provisiond.domain.certificate_requests import CsrRejected
from provisiond.domain.issuing_ca import CannotIssue
from provisiond.errors import (
    InvalidInput,
    NotFound,
    ProvisiondError,
    StoreUnavailable,
    Throttled,
    Unauthorized,
)
from provisiond.services.device_auth import UnknownIdScope, UnknownRegistration

__all__ = [
    "ID_SCOPE_NOT_FOUND",
    "POLICY",
    "POLICY_CANNOT_ISSUE",
    "REGISTRATION_NOT_FOUND",
    "device_error_for",
]

ID_SCOPE_NOT_FOUND = 404001
REGISTRATION_NOT_FOUND = 404201
POLICY_CANNOT_ISSUE = 503001

# Domain error class -> (HTTP status, errorCode); the first matching class wins.
_TABLE: list[tuple[type[ProvisiondError], int, int]] = [
    (Unauthorized, 401, 401000),
    (UnknownIdScope, 404, ID_SCOPE_NOT_FOUND),
    (UnknownRegistration, 404, REGISTRATION_NOT_FOUND),
    (NotFound, 404, REGISTRATION_NOT_FOUND),
    (Throttled, 429, 429001),
    (CsrRejected, 400, CERTIFICATE_REQUEST_REJECTED),
    (InvalidInput, 400, 400201),
    (StoreUnavailable, 503, 503000),
    # The enrollment's credential policy cannot sign (its CA expired): the operator's to fix, so
    # no 400; expected, so no 500. 503001 is IoT Hub's ServiceUnavailable code.
    (CannotIssue, 503, POLICY_CANNOT_ISSUE),
]


def device_error_for(exc: ProvisiondError) -> DpsError:
    """Translate a domain error with the table above (a 429 keeps its retry-after)."""
    for cls, status, code in _TABLE:
        if isinstance(exc, cls):
            retry = exc.retry_after if isinstance(exc, Throttled) else None
            return DpsError(status, code, exc.message, retry_after=retry)
    return DpsError(500, 500000, "internal error")


POLICY = dps_policy(device_error_for)
