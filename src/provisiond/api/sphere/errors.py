"""The Sphere error table, the error array, and the error policy that renders every failure in it.

Every HTTP failure answers with a JSON array of PublicApiErrorDetails
``[{"ErrorCode", "Detail", "Status", "Title"}]``. Every code emitted here is listed in
``docs/errors.md``; keep the two in step.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from starlette.responses import Response

from provisiond.api.edge import ErrorPolicy
from provisiond.api.http import BodyTooLarge, json_response
from provisiond.api.sphere.schemas import ErrorDetails
from provisiond.domain.sphere import (
    InvalidDeviceId,
    InvalidDeviceList,
    TooManyDevices,
    UnknownDevice,
    UnknownOperation,
)
from provisiond.errors import InvalidInput, NotFound, ProvisiondError, StoreUnavailable, Unauthorized

__all__ = [
    "BAD_REQUEST",
    "FORBIDDEN",
    "INTERNAL",
    "INVALID_CONTINUATION_TOKEN",
    "INVALID_DEVICE_ID",
    "INVALID_DEVICE_LIST",
    "INVALID_PAGE_SIZE",
    "METHOD_NOT_ALLOWED",
    "POLICY",
    "ROUTE_NOT_FOUND",
    "SphereError",
    "render_sphere_error",
    "sphere_error_for",
]

log = logging.getLogger(__name__)

# Request faults the dialect finds itself.
BAD_REQUEST = "BadRequest"
INVALID_JSON = "InvalidJson"
INVALID_DEVICE_ID = "InvalidDeviceId"
INVALID_DEVICE_LIST = "InvalidDeviceList"
REQUEST_TOO_LARGE = "RequestBodyTooLarge"
INVALID_PAGE_SIZE = "InvalidPageSize"
INVALID_CONTINUATION_TOKEN = "InvalidContinuationToken"  # noqa: S105 - an error code, not a secret
FORBIDDEN = "Forbidden"
ROUTE_NOT_FOUND = "NotFound"
METHOD_NOT_ALLOWED = "MethodNotAllowed"
INTERNAL = "InternalServerError"

# Domain error class -> (HTTP status, ErrorCode). The first matching class wins.
_TABLE: list[tuple[type[ProvisiondError], int, str]] = [
    (Unauthorized, 401, "Unauthorized"),
    (UnknownOperation, 404, "OperationNotFound"),
    (UnknownDevice, 404, "DeviceNotFound"),
    (NotFound, 404, ROUTE_NOT_FOUND),
    (InvalidDeviceId, 400, INVALID_DEVICE_ID),
    (TooManyDevices, 400, "TooManyDevices"),
    (InvalidDeviceList, 400, INVALID_DEVICE_LIST),
    (InvalidInput, 400, BAD_REQUEST),
    (StoreUnavailable, 503, "ServiceUnavailable"),
]


class SphereError(Exception):
    """A failure in Sphere terms: HTTP status, ErrorCode string, detail."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def sphere_error_for(exc: ProvisiondError) -> SphereError:
    """Translate a domain error with the table above."""
    for cls, status, code in _TABLE:
        if isinstance(exc, cls):
            return SphereError(status, code, exc.message)
    log.error("no Sphere error for %s: %s", type(exc).__name__, exc.message)
    return SphereError(500, INTERNAL, "internal error")


def render_sphere_error(err: SphereError) -> Response:
    """The error array (one entry); a 401 also names the scheme it wants."""
    body: list[ErrorDetails] = [
        {
            "ErrorCode": err.code,
            "Detail": err.detail,
            "Status": err.status,
            "Title": HTTPStatus(err.status).phrase,
        }
    ]
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    return json_response(body, err.status, headers=headers)


def _too_large(exc: BodyTooLarge) -> SphereError:  # Sphere answers an oversized body with 400, not 413
    return SphereError(400, REQUEST_TOO_LARGE, str(exc))


def _malformed(exc: Exception) -> SphereError:
    return SphereError(400, INVALID_JSON, f"malformed JSON body: {exc}")


def _internal() -> SphereError:
    return SphereError(500, INTERNAL, "internal error")


def _unrouted(status: int) -> SphereError:
    """An unknown route or method under this dialect's paths."""
    if status == 405:
        return SphereError(405, METHOD_NOT_ALLOWED, "method not allowed")
    return SphereError(404, ROUTE_NOT_FOUND, "no such resource")


# Every failure is answered with the Sphere error array, never a bare 500.
POLICY = ErrorPolicy(
    error=SphereError,
    render=render_sphere_error,
    translate=sphere_error_for,
    too_large=_too_large,
    malformed=_malformed,
    internal=_internal,
    unrouted=_unrouted,
)
