"""Sphere wire models: PascalCase names and integer enums, exactly as the public API v2 has them.

Responses only: the one request body (a bulk claim) is a bare JSON array of device-id strings.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TypedDict

__all__ = [
    "PREFIX",
    "DevicePage",
    "DeviceV2",
    "ErrorCode",
    "ErrorDetails",
    "ErrorResponse",
    "Operation",
    "OperationDetails",
    "OperationItem",
    "OperationType",
    "State",
    "TenantV2",
]

PREFIX = "/v2/tenants"  # every route of the dialect is under it


class OperationType(IntEnum):
    DEVICE_CLAIM = 0
    DEVICE_UNCLAIM = 1
    DEVICE_UPDATE_DEVICE_GROUP = 2
    MIGRATE_TENANT = 3
    CREATE_PRODUCT = 4
    DEPLOY_TO_DEVICE_GROUP = 5
    DEPLOY_TO_OS_FEED = 6
    IMAGE_UPLOAD = 7
    TENANT_CREATION = 8
    DELETE_DEVICE_GROUP = 9
    DELETE_PRODUCT = 10
    BULK_DEVICE_CLAIM = 11


class State(IntEnum):
    NOT_STARTED = 0
    IN_PROGRESS = 1
    COMPLETE = 2
    FAILED = 3
    COMPLETE_WITH_ERRORS = 4


class ErrorCode(IntEnum):
    """``Operation.Error.Code``."""

    OPERATION_FAILED = 0
    TENANT_IN_MIGRATION = 1
    TENANT_MIGRATION_REQUIRED = 2
    CLIENT_UPDATE_REQUIRED = 3
    INTERNAL_SERVER_ERROR = 4
    BAD_REQUEST = 5
    FORBIDDEN = 6
    CONFLICT = 7
    NOT_FOUND = 8


class ErrorResponse(TypedDict):
    Code: int
    Message: str


class Operation(TypedDict):
    OperationId: str
    OperationType: int
    State: int
    TenantId: str
    CreatedDateUTC: str
    StartedDateUTC: str | None
    CompletedDateUTC: str | None
    ResourceLocation: str
    DetailsLocation: str
    Error: ErrorResponse | None


class OperationItem(TypedDict):
    """One device of an operation, as ``DetailsLocation`` lists it (our extension)."""

    DeviceId: str
    State: int
    Error: ErrorResponse | None


class OperationDetails(TypedDict):
    OperationId: str
    Items: list[OperationItem]


class DeviceV2(TypedDict):
    DeviceId: str
    TenantId: str
    ChipSku: int
    DeviceGroupId: str | None
    ProductId: str | None
    LastAvailableOSVersion: str | None
    LastInstalledOSVersion: str | None
    LastOSUpdateUTC: str | None
    LastUpdateRequestUTC: str | None


class DevicePage(TypedDict):
    Items: list[DeviceV2]
    ContinuationToken: str | None


class TenantV2(TypedDict):
    Id: str
    Name: str
    Roles: list[str]


class ErrorDetails(TypedDict):
    """One entry of the error array every HTTP failure answers with (PublicApiErrorDetails)."""

    ErrorCode: str
    Detail: str
    Status: int
    Title: str
