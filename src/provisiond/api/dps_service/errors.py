"""The DPS service error table and policy: domain errors and request faults to HTTP status and
six-digit errorCode.

Every code emitted here is listed in ``docs/errors.md``; keep the two in step.
"""

from __future__ import annotations

from provisiond.api.dps_wire import (
    API_VERSION,
    BODY_TOO_LARGE,
    INTERNAL,
    MALFORMED_JSON,
    METHOD_NOT_ALLOWED,
    ROUTE_NOT_FOUND,
    DpsError,
    dps_policy,
    render_dps_error,
)
from provisiond.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    ProvisiondError,
    StoreUnavailable,
    Unauthorized,
)

__all__ = [
    "API_VERSION",
    "BODY_TOO_LARGE",
    "INTERNAL",
    "MALFORMED_JSON",
    "METHOD_NOT_ALLOWED",
    "POLICY",
    "ROUTE_NOT_FOUND",
    "DpsError",
    "dps_error_for",
    "render_dps_error",
]


# Domain error class -> (HTTP status, errorCode). The first matching class wins.
_TABLE: list[tuple[type[ProvisiondError], int, int]] = [
    (Unauthorized, 401, 401000),
    (NotFound, 404, 404201),
    (AlreadyExists, 409, 409201),
    (PreconditionFailed, 412, 412201),
    (InvalidInput, 400, 400201),
    (StoreUnavailable, 503, 503000),
]

# Request faults raised by the dialect itself.
BULK_TOO_LARGE = 400003
BAD_QUERY = 400004
REGISTRATION_NOT_FOUND = 404202
UNSUPPORTED_MEDIA_TYPE = 415000


def dps_error_for(exc: ProvisiondError) -> DpsError:
    """Translate a domain error with the table above."""
    for cls, status, code in _TABLE:
        if isinstance(exc, cls):
            return DpsError(status, code, exc.message)
    return DpsError(500, INTERNAL, "internal error")


POLICY = dps_policy(dps_error_for)
