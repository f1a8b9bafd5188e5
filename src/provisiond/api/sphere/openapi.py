"""The Azure Sphere public API's OpenAPI document.

Answers are the structs below, which mirror ``mapping``'s TypedDicts (``schemas``) field for
field, closed to other fields, with the integer enums the API uses; the error answer is the
PublicApiErrorDetails array ``errors`` renders. Requests: the path ids with the syntax the domain
checks (128 hex characters, UUIDs), and the bulk claim's bare JSON array of ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from msgspec import Meta

from provisiond.api.openapi import (
    Closed,
    DialectDocument,
    Operation,
    Schema,
    header_param,
    json_content,
    msgspec_components,
    path_param,
    query_param,
    ref,
)
from provisiond.api.sphere import errors as codes
from provisiond.api.sphere.mapping import MAX_PAGE_SIZE
from provisiond.api.sphere.schemas import PREFIX, ErrorCode, OperationType, State
from provisiond.domain.sphere import DEVICE_ID_LENGTH, MAX_BULK_CLAIM

__all__ = ["DOCUMENT"]

DEVICE_ID_PATTERN = f"^[0-9A-Fa-f]{{{DEVICE_ID_LENGTH}}}$"
_UUID = {"type": "string", "format": "uuid"}
_TIME = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$"
Timestamp = Annotated[str, Meta(pattern=_TIME)]
Uuid = Annotated[str, Meta(pattern="^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
DeviceId = Annotated[str, Meta(pattern="^[0-9A-F]{128}$")]  # answers show the stored, upper-case form


class ErrorResponse(Closed):
    Code: ErrorCode
    Message: str


class OperationOut(Closed):
    OperationId: Uuid
    OperationType: OperationType
    State: State
    TenantId: Uuid
    CreatedDateUTC: Timestamp
    StartedDateUTC: Timestamp | None
    CompletedDateUTC: Timestamp | None
    ResourceLocation: str
    DetailsLocation: str
    Error: ErrorResponse | None


class OperationItem(Closed):
    DeviceId: DeviceId
    State: State
    Error: ErrorResponse | None


class OperationDetails(Closed):
    OperationId: Uuid
    Items: list[OperationItem]


class DeviceV2(Closed):
    DeviceId: DeviceId
    TenantId: Uuid
    ChipSku: int
    DeviceGroupId: Uuid | None
    ProductId: Uuid | None
    LastAvailableOSVersion: str | None
    LastInstalledOSVersion: str | None
    LastOSUpdateUTC: Timestamp | None
    LastUpdateRequestUTC: Timestamp | None


class DevicePage(Closed):
    Items: list[DeviceV2]
    ContinuationToken: str | None


class TenantV2(Closed):
    Id: Uuid
    Name: str
    Roles: list[str]


class PublicApiErrorDetails(Closed):
    ErrorCode: str
    Detail: str
    Status: int
    Title: str


ERROR = "PublicApiErrorDetailsList"
_CODES: dict[int, tuple[str, ...]] = {
    400: (
        codes.INVALID_JSON,
        codes.REQUEST_TOO_LARGE,
        codes.INVALID_DEVICE_LIST,
        "TooManyDevices",
        codes.INVALID_DEVICE_ID,
        codes.INVALID_PAGE_SIZE,
        codes.INVALID_CONTINUATION_TOKEN,
        codes.BAD_REQUEST,
    ),
    401: ("Unauthorized",),
    403: (codes.FORBIDDEN,),
    404: ("OperationNotFound", "DeviceNotFound", codes.ROUTE_NOT_FOUND),
    503: ("ServiceUnavailable",),
}
_REASONS = {
    400: "The request is malformed: a device id, the body, maxPageSize or the continuation token.",
    401: "No bearer token, or one that is no tenant's.",
    403: "The path's tenant is not the token's.",
    404: "No such device or operation among the tenant's.",
    503: "The database is unavailable; retry.",
}
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "Always `Bearer`.", "schema": {"type": "string"}}}


def _errors(*statuses: int) -> dict[str, dict[str, Any]]:
    answers: dict[str, dict[str, Any]] = {}
    for status in (*statuses, 401, 503):
        answer = json_content(ref(f"{ERROR}{status}"), _REASONS[status])
        if status == 401:
            answer["headers"] = _WWW_AUTHENTICATE
        answers[str(status)] = answer
    return dict(sorted(answers.items()))


_TENANT = path_param("tenantId", "The caller's tenant (the token's).", _UUID)
_DEVICE = path_param(
    "deviceId",
    f"{DEVICE_ID_LENGTH} hexadecimal characters, any case.",
    {"type": "string", "pattern": DEVICE_ID_PATTERN},
)
_OPERATION = path_param("operationId", "The operation's id (from a 202's Location).", _UUID)
_TAGS = ("Devices",)


def _accepted(description: str) -> dict[str, Any]:
    return {
        **json_content(ref("Operation"), description),
        "headers": {
            "Location": {
                "description": "The operation's URL, to poll (Async Operations - Get).",
                "required": True,
                "schema": {"type": "string", "format": "uri"},
            }
        },
    }


def _operations() -> Iterator[Operation]:
    tenant = f"{PREFIX}/{{tenantId}}"
    yield Operation(
        "GET",
        PREFIX,
        "Tenants_List",
        "The tenants the token gives access to (its own).",
        {"200": json_content({"type": "array", "items": ref("TenantV2")}, "The tenant."), **_errors()},
        tags=("Tenants",),
    )
    yield Operation(
        "PUT",
        f"{tenant}/devices/{{deviceId}}/claim",
        "Devices_Claim",
        "Claim a device for the tenant (final: there is no public unclaim).",
        {"202": _accepted("The claim's operation."), **_errors(400, 403)},
        (_TENANT, _DEVICE),
        tags=_TAGS,
    )
    yield Operation(
        "PUT",
        f"{tenant}/devices",
        "Devices_BulkClaim",
        f"Claim up to {MAX_BULK_CLAIM} devices in one operation.",
        {"202": _accepted("The bulk claim's operation."), **_errors(400, 403)},
        (_TENANT,),
        {
            "required": True,
            **json_content(
                {
                    "type": "array",
                    "items": {"type": "string", "pattern": DEVICE_ID_PATTERN},
                    "minItems": 1,
                    "maxItems": MAX_BULK_CLAIM,
                },
                "The device ids.",
            ),
        },
        tags=_TAGS,
    )
    yield Operation(
        "GET",
        f"{tenant}/devices",
        "Devices_List",
        "A page of the tenant's devices, in device id order.",
        {"200": json_content(ref("DevicePage"), "The page."), **_errors(400, 403)},
        (
            _TENANT,
            query_param(
                "maxPageSize",
                f"Devices per page; larger numbers mean {MAX_PAGE_SIZE}.",
                {"type": "integer", "minimum": 1},
            ),
            header_param("Sphere-Continuation", "The ContinuationToken of the page before."),
        ),
        tags=_TAGS,
    )
    yield Operation(
        "GET",
        f"{tenant}/devices/{{deviceId}}",
        "Devices_Get",
        "One of the tenant's devices.",
        {"200": json_content(ref("DeviceV2"), "The device."), **_errors(400, 403, 404)},
        (_TENANT, _DEVICE),
        tags=_TAGS,
    )
    yield Operation(
        "GET",
        f"{tenant}/operations/{{operationId}}",
        "AsyncOperations_Get",
        "An operation of the tenant's.",
        {"200": json_content(ref("Operation"), "The operation."), **_errors(403, 404)},
        (_TENANT, _OPERATION),
        tags=("AsyncOperations",),
    )
    yield Operation(
        "GET",
        f"{tenant}/operations/{{operationId}}/details",
        "AsyncOperations_GetDetails",
        "Every device of an operation, with its own State and Error (our extension).",
        {"200": json_content(ref("OperationDetails"), "The devices."), **_errors(403, 404)},
        (_TENANT, _OPERATION),
        tags=("AsyncOperations",),
    )


def _error_list(status: int) -> Schema:
    """The error array of one status: a single PublicApiErrorDetails with that status's codes."""
    entry = ref("PublicApiErrorDetails")
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": 1,
        "items": {
            "allOf": [
                entry,
                {
                    "properties": {
                        "ErrorCode": {"enum": list(_CODES[status])},
                        "Status": {"const": status},
                    }
                },
            ]
        },
    }


def _components() -> dict[str, Schema]:
    components = msgspec_components(
        [OperationOut, OperationDetails, DevicePage, TenantV2, PublicApiErrorDetails]
    )
    components["Operation"] = {**components.pop("OperationOut"), "title": "Operation"}
    for status in _CODES:
        components[f"{ERROR}{status}"] = _error_list(status)
    return components


DOCUMENT = DialectDocument(
    name="sphere",
    title="provisiond: Azure Sphere public API v2 (tenants, device claims)",
    api_version="v2",
    description=(
        "Tenants, devices and device claims of the Azure Sphere public API v2: PascalCase names, "
        "integer enums, claims answered 202 with an Operation to poll. Every failure is a JSON "
        "array of one PublicApiErrorDetails. Every call needs the tenant's bearer token "
        "(provisiond tenant create)."
    ),
    operations=_operations,
    components=_components,
    security_schemes={
        "tenantToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "A tenant's token (provisiond tenant create / rotate-token).",
        }
    },
)
