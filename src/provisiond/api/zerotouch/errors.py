"""The zero-touch error table, Google's error body, and the error policy.

Every failure under ``/v1/`` is answered ``{"error": {"code": <http>, "message": …, "status": …}}``
(https://cloud.google.com/apis/design/errors); both official clients take their error text from
``error.message``. Every status emitted here is listed in ``docs/zerotouch.md``; keep the two in step.
"""

from __future__ import annotations

from starlette.responses import Response

from provisiond.api.edge import ErrorPolicy
from provisiond.api.http import BodyTooLarge, json_response
from provisiond.api.zerotouch.schemas import WireDecodeError
from provisiond.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    ProvisiondError,
    StoreUnavailable,
    Throttled,
    Unauthorized,
)

__all__ = ["MAX_BODY", "POLICY", "ZtError", "render_error", "zt_error_for"]

MAX_BODY = 32 * 1024 * 1024  # 100,000 claims fit with room to spare; the body is capped before parsing

# HTTP status -> Google canonical code (google.rpc.Code), for the statuses this dialect emits.
_CANONICAL = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

UNAUTHENTICATED_MISSING = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential."
)
UNAUTHENTICATED_INVALID = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential."
)


class ZtError(Exception):
    """A failure in zero-touch terms: the HTTP status (which fixes the canonical code) and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# Domain error class -> HTTP status. The first matching class wins.
_TABLE: list[tuple[type[ProvisiondError], int]] = [
    (Unauthorized, 401),
    (NotFound, 404),
    (AlreadyExists, 409),
    (PreconditionFailed, 400),
    (InvalidInput, 400),  # TooManyItems (over 100,000 items) is one: nothing is written
    (Throttled, 429),
    (StoreUnavailable, 503),
]


def zt_error_for(exc: ProvisiondError) -> ZtError:
    """Translate a domain error with the table above."""
    for cls, status in _TABLE:
        if isinstance(exc, cls):
            message = UNAUTHENTICATED_INVALID if status == 401 else exc.message
            return ZtError(status, message)
    return ZtError(500, "Internal error encountered.")


def render_error(err: ZtError) -> Response:
    """Google's error body; a 401 also says which scheme to use, as Google's front end does."""
    body = {"error": {"code": err.status, "message": err.message, "status": _CANONICAL[err.status]}}
    headers = {"WWW-Authenticate": 'Bearer realm="provisiond"'} if err.status == 401 else None
    return json_response(body, err.status, headers=headers)


def _too_large(exc: BodyTooLarge) -> ZtError:
    # Google's front end answers an oversized payload with 400 and this wording.
    return ZtError(400, f"Request payload size exceeds the limit: {exc.limit} bytes.")


def _malformed(exc: Exception) -> ZtError:
    return ZtError(400, f"Invalid JSON payload received. {exc}")


def _internal() -> ZtError:
    return ZtError(500, "Internal error encountered.")


def _unrouted(status: int) -> ZtError:
    """An unknown route (404 NOT_FOUND) or method (405 UNIMPLEMENTED)."""
    if status == 405:
        return ZtError(405, "Method not allowed on this resource.")
    return ZtError(404, "The requested URL was not found on this server.")


# Every failure under /v1/ is answered in Google's error format, never a bare 500. Bodies are
# decoded by ``schemas.decode``, which reports every refusal as a WireDecodeError.
POLICY = ErrorPolicy(
    error=ZtError,
    render=render_error,
    translate=zt_error_for,
    too_large=_too_large,
    malformed=_malformed,
    internal=_internal,
    unrouted=_unrouted,
    malformed_types=(WireDecodeError,),
)
