"""The DPS error body and error policy, shared by DPS's two dialects (service API and device API).

Both dialects answer failures with ProvisioningServiceErrorDetails; each keeps its own table of
which domain failure gets which code (``dps_service/errors.py``, ``dps_device/errors.py``) and
builds its ``ErrorPolicy`` from it with ``dps_policy``. The codes of a failed registration are
here, in one table, because both dialects show a registration state.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from provisiond.api.edge import ErrorPolicy
from provisiond.api.http import BodyTooLarge, json_response
from provisiond.domain.certificates import CertificateInfo
from provisiond.domain.registrations import RegistrationFailure
from provisiond.errors import ProvisiondError
from provisiond.jsontext import dumps

__all__ = [
    "API_VERSION",
    "API_VERSIONS",
    "BODY_TOO_LARGE",
    "CERTIFICATE_REQUEST_REJECTED",
    "INTERNAL",
    "ISSUANCE_API_VERSION",
    "MALFORMED_JSON",
    "METHOD_NOT_ALLOWED",
    "ROUTE_NOT_FOUND",
    "DpsError",
    "certificate_info_out",
    "check_api_version",
    "dps_error_body",
    "dps_policy",
    "issuance_version",
    "registration_error_code",
    "render_dps_error",
    "timestamp",
]

MALFORMED_JSON = 400001
API_VERSION = 400002
ROUTE_NOT_FOUND = 404000
METHOD_NOT_ALLOWED = 405000
BODY_TOO_LARGE = 413000
INTERNAL = 500000
CERTIFICATE_REQUEST_REJECTED = 400037  # IoT Hub's code for a CSR that fails verification

# The errorCode of each failure a registration state records (docs/errors.md, "Codes inside a
# failed registration"), shown by the device API's registrationState and the service API's
# DeviceRegistrationState alike.
_REGISTRATION_ERROR_CODES = {
    RegistrationFailure.DISABLED: 401006,
    RegistrationFailure.NO_HUB: 400206,
    RegistrationFailure.CUSTOM_FAILED: 400207,
    RegistrationFailure.CUSTOM_NO_HUB: 400208,
    RegistrationFailure.CUSTOM_UNAUTHORIZED: 400209,
    RegistrationFailure.HUB_FAILED: 400209,  # as DPS reports a hub write failure (reference §2.8)
}


# The api-version that adds certificate issuance: ``credentialPolicyName`` on enrollments (service
# API), ``csr`` and ``issuedCertificateChain`` (device API). Everything else is the same wire.
ISSUANCE_API_VERSION = "2025-07-01-preview"

# Every api-version an official SDK sends, and the issuance preview.
API_VERSIONS = frozenset(
    {
        "2018-04-01",
        "2018-09-01-preview",
        "2018-11-01",
        "2019-03-31",
        "2021-06-01",
        "2021-10-01",
        ISSUANCE_API_VERSION,
    }
)


def issuance_version(version: str | None) -> bool:
    """Whether a request's api-version has certificate issuance (the 2025-07-01-preview fields)."""
    return version == ISSUANCE_API_VERSION


def timestamp(value: datetime | None) -> str | None:
    """DPS's ISO 8601 UTC form, e.g. ``2024-01-01T00:00:00.000000Z`` (values are UTC)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    # msgspec writes an aware UTC datetime as RFC 3339 with "Z" about five times faster than
    # datetime.isoformat (a query page formats two per item); it leaves out a zero fraction,
    # which DPS's form always has.
    text = dumps(value)
    return text[1:-1] if value.microsecond else text[1:-2] + ".000000Z"


class DpsError(Exception):
    """A failure in DPS terms: HTTP status, six-digit errorCode, message, optional retry-after."""

    def __init__(self, status: int, code: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


def certificate_info_out(i: CertificateInfo) -> dict[str, Any]:
    """X509CertificateInfo as DPS writes it."""
    return {
        "subjectName": i.subject_name,
        "sha1Thumbprint": i.sha1_thumbprint,
        "sha256Thumbprint": i.sha256_thumbprint,
        "issuerName": i.issuer_name,
        "notBeforeUtc": timestamp(i.not_before),
        "notAfterUtc": timestamp(i.not_after),
        "serialNumber": i.serial_number,
        "version": i.version,
    }


def registration_error_code(failure: RegistrationFailure | None) -> int | None:
    """The ``errorCode`` a registration state shows for its failure (``None``: it did not fail)."""
    return _REGISTRATION_ERROR_CODES[failure] if failure is not None else None


def check_api_version(request: Request) -> None:
    """Refuse a missing or unknown ``api-version`` query parameter."""
    version = request.query_params.get("api-version")
    if version not in API_VERSIONS:
        shown = "missing" if version is None else f"{version!r} is not supported"
        raise DpsError(400, API_VERSION, f"api-version {shown}; use one of {', '.join(sorted(API_VERSIONS))}")


def dps_error_body(err: DpsError) -> dict[str, Any]:
    """ProvisioningServiceErrorDetails (the JSON of every DPS error, over HTTP and MQTT)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "errorCode": err.code,
        "trackingId": str(uuid.uuid4()),
        "message": err.message,
        "timestampUtc": now,
    }


def render_dps_error(err: DpsError) -> Response:
    """The error body with the ``x-ms-error-code`` header (and Retry-After for 429)."""
    body = dps_error_body(err)
    headers = {"x-ms-error-code": str(err.code)}
    if err.retry_after is not None:
        headers["Retry-After"] = str(err.retry_after)
    return json_response(body, err.status, headers=headers)


def _unrouted(status: int) -> DpsError:
    if status == 405:
        return DpsError(status, METHOD_NOT_ALLOWED, "method not allowed")
    return DpsError(status, ROUTE_NOT_FOUND, "no such resource")


def _too_large(exc: BodyTooLarge) -> DpsError:
    return DpsError(413, BODY_TOO_LARGE, str(exc))


def _malformed(exc: Exception) -> DpsError:
    return DpsError(400, MALFORMED_JSON, f"malformed JSON body: {exc}")


def _internal() -> DpsError:
    return DpsError(500, INTERNAL, "internal error")


def dps_policy(translate: Callable[[ProvisiondError], DpsError]) -> ErrorPolicy[DpsError]:
    """The error policy of a DPS dialect: every failure in DPS's error format.

    ``translate`` is the dialect's own table from domain errors to DPS errors; everything else
    (size, malformed JSON, bugs, unknown routes) is answered alike by both DPS dialects.
    """
    return ErrorPolicy(
        error=DpsError,
        render=render_dps_error,
        translate=translate,
        too_large=_too_large,
        malformed=_malformed,
        internal=_internal,
        unrouted=_unrouted,
    )
