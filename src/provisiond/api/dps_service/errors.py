"""The DPS error table: domain errors and request faults to HTTP status and six-digit errorCode.

Every code emitted here is listed in ``docs/errors.md``; keep the two in step.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from starlette.responses import Response

from provisiond.api.http import json_response
from provisiond.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    ProvisiondError,
    StoreUnavailable,
    Unauthorized,
)

__all__ = ["DpsError", "dps_error_for", "render_dps_error"]


class DpsError(Exception):
    """A failure in DPS terms: HTTP status, six-digit errorCode, message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


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
MALFORMED_JSON = 400001
API_VERSION = 400002
BULK_TOO_LARGE = 400003
BAD_QUERY = 400004
REGISTRATION_NOT_FOUND = 404202
ROUTE_NOT_FOUND = 404000
METHOD_NOT_ALLOWED = 405000
BODY_TOO_LARGE = 413000
UNSUPPORTED_MEDIA_TYPE = 415000
INTERNAL = 500000


def dps_error_for(exc: ProvisiondError) -> DpsError:
    """Translate a domain error with the table above."""
    for cls, status, code in _TABLE:
        if isinstance(exc, cls):
            return DpsError(status, code, exc.message)
    return DpsError(500, INTERNAL, "internal error")


def render_dps_error(err: DpsError) -> Response:
    """The DPS error body (ProvisioningServiceErrorDetails) and the ``x-ms-error-code`` header."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = {
        "errorCode": err.code,
        "trackingId": str(uuid.uuid4()),
        "message": err.message,
        "timestampUtc": now,
    }
    return json_response(body, err.status, headers={"x-ms-error-code": str(err.code)})
