"""The reseller dialect's error table and policy: ErrorCode, HTTP status, and the
``{"error": Error}`` body.

Every code emitted here is listed in ``docs/reseller.md``; keep the two in step. Statuses:

- 400: the request (or, for a synchronous call, its one device) is malformed or breaks a rule;
- 403: the bearer token is missing or not valid;
- 404: a named customer, device or operation does not exist or is not the caller's (the two are
  indistinguishable on purpose);
- 409: a synchronous claim meets a device that already has an owner (the same customer:
  DUPLICATE_DEVICE; another one: AUTHORIZATION_FAIL);
- 500: an unexpected fault (INTERNAL_SERVER_ERROR; retrying may help);
- 501: NOT_IMPLEMENTED (a method the server, or the vendor, does not offer).
"""

from __future__ import annotations

import uuid
from enum import StrEnum

import msgspec
from starlette.responses import Response

from provisiond.api.edge import ErrorPolicy
from provisiond.api.http import BodyTooLarge
from provisiond.api.reseller import schemas as wire
from provisiond.domain.device_identifiers import InvalidDeviceIdentifier
from provisiond.errors import (
    InvalidInput,
    NotFound,
    ProvisiondError,
    StoreUnavailable,
    Unauthorized,
)
from provisiond.services.claims import TooManyItems

__all__ = [
    "POLICY",
    "PREFIX",
    "ErrorCode",
    "ResellerError",
    "error_object",
    "new_error_id",
    "parse_error_code",
    "render_error",
    "reseller_error_for",
]

PREFIX = "/reseller/v1"  # every method is POST {PREFIX}/<method>


class ErrorCode(StrEnum):
    """The reseller library's ErrorCode enum, in its objects-page spelling (the one we emit)."""

    INVALID_PARAM_DEFAULT = "INVALID_PARAM_DEFAULT"
    INVALID_PAGE_TOKEN = "INVALID_PAGE_TOKEN"  # noqa: S105 - an error code, not a secret
    INVALID_CUSTOMER_ID = "INVALID_CUSTOMER_ID"
    INVALID_DEVICE_IMEI = "INVALID_DEVICE_IMEI"
    INVALID_DEVICE_MEID = "INVALID_DEVICE_MEID"
    INVALID_DEVICE_SERIAL = "INVALID_DEVICE_SERIAL"
    INVALID_OPERATION_ID = "INVALID_OPERATION_ID"
    INVALID_RESELLER_ID = "INVALID_RESELLER_ID"
    INVALID_MANUFACTURER = "INVALID_MANUFACTURER"
    INVALID_IDENTIFIER_SET = "INVALID_IDENTIFIER_SET"
    INVALID_MODEL = "INVALID_MODEL"
    INVALID_DEVICE_ID = "INVALID_DEVICE_ID"
    INVALID_DEVICE = "INVALID_DEVICE"
    DUPLICATE_DEVICE = "DUPLICATE_DEVICE"
    DEVICE_UPLOAD_COUNT_EXCEEDED = "DEVICE_UPLOAD_COUNT_EXCEEDED"
    AUTHORIZATION_FAIL = "AUTHORIZATION_FAIL"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    NOT_IMPLEMENTED = "NOT_IMPLEMENTED"


# Error.message: the library's description of each code; Error.vendorMsg says what exactly was wrong.
_DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.INVALID_PARAM_DEFAULT: "The input parameter is invalid; see vendorMsg.",
    ErrorCode.INVALID_PAGE_TOKEN: "The page token is invalid.",
    ErrorCode.INVALID_CUSTOMER_ID: "The customer ID is invalid.",
    ErrorCode.INVALID_DEVICE_IMEI: "Invalid IMEI.",
    ErrorCode.INVALID_DEVICE_MEID: "Invalid MEID.",
    ErrorCode.INVALID_DEVICE_SERIAL: "Invalid serial number.",
    ErrorCode.INVALID_OPERATION_ID: "The operation ID is invalid.",
    ErrorCode.INVALID_RESELLER_ID: "The reseller ID is invalid.",
    ErrorCode.INVALID_MANUFACTURER: "The manufacturer is invalid or not supported.",
    ErrorCode.INVALID_IDENTIFIER_SET: "The identifiers are not sufficient for the request.",
    ErrorCode.INVALID_MODEL: "The model is invalid or not supported.",
    ErrorCode.INVALID_DEVICE_ID: "The device ID is invalid.",
    ErrorCode.INVALID_DEVICE: "The device does not exist.",
    ErrorCode.DUPLICATE_DEVICE: "The device was already claimed for the same customer; no action is needed.",
    ErrorCode.DEVICE_UPLOAD_COUNT_EXCEEDED: "The request holds more devices than the limit (100,000).",
    ErrorCode.AUTHORIZATION_FAIL: "You have no access to the resource, or it does not exist.",
    ErrorCode.INTERNAL_SERVER_ERROR: "Internal server error; the request may be retried.",
    ErrorCode.NOT_IMPLEMENTED: "The method is not supported by the server.",
}

# The library's method pages spell two codes differently from its objects page; both spellings are
# read, the objects-page spelling is written (docs/reseller.md, "ErrorCode spelling drift").
_DRIFT = {
    "DUPLICATE_DEVICES": ErrorCode.DUPLICATE_DEVICE,
    "AUTHORIZATION_FAILED": ErrorCode.AUTHORIZATION_FAIL,
}


def parse_error_code(text: str) -> ErrorCode | None:
    """An ErrorCode read from a request (either spelling, any case); ``None`` if it is none."""
    name = text.strip().upper()
    if name in _DRIFT:
        return _DRIFT[name]
    try:
        return ErrorCode(name)
    except ValueError:
        return None


def new_error_id() -> str:
    """A fresh Error.errorId: unique, so a report can be matched with the server's log."""
    return uuid.uuid4().hex


def error_object(
    code: ErrorCode, vendor_msg: str, error_id: str, vendor_params: dict[str, str] | None = None
) -> wire.Error:
    """The Error object: the code, its description, and what exactly went wrong."""
    return wire.Error(code.value, _DESCRIPTIONS[code], vendor_msg, error_id, vendor_params or {})


class ResellerError(Exception):
    """A failed call in this dialect's terms: HTTP status, ErrorCode, detail, vendorParams, and
    the errorId it is answered with (fresh for every error)."""

    def __init__(
        self, status: int, code: ErrorCode, vendor_msg: str, vendor_params: dict[str, str] | None = None
    ) -> None:
        super().__init__(vendor_msg)
        self.status = status
        self.code = code
        self.vendor_msg = vendor_msg
        self.vendor_params = vendor_params or {}
        self.error_id = new_error_id()


def render_error(err: ResellerError) -> Response:
    """``{"error": Error}`` with the error's status and ``Content-Type: application/json``."""
    body = wire.ErrorResponse(error_object(err.code, err.vendor_msg, err.error_id, err.vendor_params))
    return Response(msgspec.json.encode(body), status_code=err.status, media_type="application/json")


# Domain error class -> (HTTP status, ErrorCode). The first matching class wins.
_TABLE: list[tuple[type[ProvisiondError], int, ErrorCode]] = [
    (TooManyItems, 400, ErrorCode.DEVICE_UPLOAD_COUNT_EXCEEDED),
    (Unauthorized, 403, ErrorCode.AUTHORIZATION_FAIL),
    (NotFound, 404, ErrorCode.AUTHORIZATION_FAIL),
    (InvalidInput, 400, ErrorCode.INVALID_PARAM_DEFAULT),
    (StoreUnavailable, 500, ErrorCode.INTERNAL_SERVER_ERROR),
]


def reseller_error_for(exc: ProvisiondError) -> ResellerError:
    """Translate a domain error with the table above (identifier errors carry their own code)."""
    if isinstance(exc, InvalidDeviceIdentifier):
        return ResellerError(400, ErrorCode(exc.code), exc.message)
    for cls, status, code in _TABLE:
        if isinstance(exc, cls):
            return ResellerError(status, code, exc.message)
    return ResellerError(500, ErrorCode.INTERNAL_SERVER_ERROR, "internal error")


def _too_large(exc: BodyTooLarge) -> ResellerError:
    # 413 is not among the model's answers; an oversized body is a bad request.
    return ResellerError(400, ErrorCode.INVALID_PARAM_DEFAULT, str(exc))


def _malformed(exc: Exception) -> ResellerError:  # not JSON, too deep, or wrong JSON types
    return ResellerError(400, ErrorCode.INVALID_PARAM_DEFAULT, f"malformed request body: {exc}")


def _internal() -> ResellerError:
    return ResellerError(500, ErrorCode.INTERNAL_SERVER_ERROR, "internal error")


def _unrouted(status: int) -> ResellerError:
    """An unknown method or HTTP verb under ``/reseller/``: NOT_IMPLEMENTED, whatever ``status``."""
    _ = status  # 404 (no such method) and 405 (not POST) are both a method the server lacks
    return ResellerError(501, ErrorCode.NOT_IMPLEMENTED, f"the server offers only POST {PREFIX}/<method>")


def _error_id_note(err: ResellerError) -> str:
    return f" (errorId {err.error_id})"  # the errorId the caller got finds the traceback


# Every failure is answered as ``{"error": Error}``, never as a bare 500.
POLICY = ErrorPolicy(
    error=ResellerError,
    render=render_error,
    translate=reseller_error_for,
    too_large=_too_large,
    malformed=_malformed,
    internal=_internal,
    unrouted=_unrouted,
    log_note=_error_id_note,
)
