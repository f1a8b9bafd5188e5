"""What both DPS dialects' OpenAPI documents share: the error body, ``api-version``, certificate
info and the SAS scheme (the wire itself is in ``dps_wire``)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from provisiond.api.dps_wire import API_VERSIONS, ISSUANCE_API_VERSION
from provisiond.api.openapi import Closed, json_content, query_param, ref

__all__ = [
    "API_VERSION_PARAM",
    "ERROR",
    "ErrorDetails",
    "RegistrationStateFields",
    "X509CertificateInfo",
    "dps_errors",
    "sas_scheme",
]


class ErrorDetails(msgspec.Struct, forbid_unknown_fields=True):
    """ProvisioningServiceErrorDetails: every DPS failure, in both dialects."""

    errorCode: int
    trackingId: str
    message: str
    timestampUtc: str
    info: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class X509CertificateInfo(msgspec.Struct, forbid_unknown_fields=True):
    subjectName: str
    sha1Thumbprint: str
    sha256Thumbprint: str
    issuerName: str
    notBeforeUtc: str | None
    notAfterUtc: str | None
    serialNumber: str
    version: int


_Substatus = Literal[
    "initialAssignment", "deviceDataMigrated", "deviceDataReset", "reprovisionedToInitialAssignment"
]


class RegistrationStateFields(Closed):
    """A registration state as both DPS APIs show it (the service API's DeviceRegistrationState;
    the device API's DeviceRegistrationResult adds the attestation's own fields)."""

    registrationId: str
    createdDateTimeUtc: str | None
    status: Literal["unassigned", "assigning", "assigned", "failed", "disabled"]
    lastUpdatedDateTimeUtc: str | None
    etag: str
    assignedHub: str | UnsetType = UNSET
    deviceId: str | UnsetType = UNSET
    substatus: (
        Literal[
            "initialAssignment", "deviceDataMigrated", "deviceDataReset", "reprovisionedToInitialAssignment"
        ]
        | UnsetType
    ) = UNSET
    errorCode: int | UnsetType = UNSET
    errorMessage: str | UnsetType = UNSET
    payload: Any | UnsetType = UNSET


ERROR = "ProvisioningServiceErrorDetails"

API_VERSION_PARAM = query_param(
    "api-version",
    f"The API version. {ISSUANCE_API_VERSION} adds certificate issuance; the others answer alike.",
    {"type": "string", "enum": sorted(API_VERSIONS)},
    required=True,
)


def dps_errors(*statuses: int) -> dict[str, dict[str, Any]]:
    """The error answers an operation can give, each a ProvisioningServiceErrorDetails."""
    reasons = {
        400: "The request is malformed: body, parameter or api-version (errorCode says which).",
        401: "The caller is not authenticated, or lacks the right.",
        404: "No such resource.",
        409: "The resource already exists.",
        412: "The If-Match etag does not match.",
        413: "The body is over the limit.",
        415: "The body is not JSON.",
        429: "Too early: the caller came back before its Retry-After.",
        503: "The database is unavailable; retry.",
    }
    return {str(s): json_content(ref(ERROR), reasons[s]) for s in statuses}


def sas_scheme(description: str) -> dict[str, Any]:
    """A SharedAccessSignature in the Authorization header."""
    return {"type": "apiKey", "in": "header", "name": "Authorization", "description": description}
