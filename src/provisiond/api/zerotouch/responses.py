"""The zero-touch answers as Structs, for the OpenAPI document: one per JSON object ``mapping``,
``lro`` and ``errors`` write, field for field, with the values they can hold.

Nothing encodes or decodes with these (the routes write plain JSON values, which is faster for a
100,000-item operation); the fuzzer checks every answer against their schemas, and a test decodes
real answers with them (``forbid_unknown_fields``), so a field added on one side only fails.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from provisiond.api.openapi import Closed
from provisiond.api.zerotouch.lro import METADATA_TYPE, RESPONSE_TYPE

__all__ = ["RESPONSES", "Error", "Operation"]

# proto3 JSON writes int64 as a decimal string; our ids are positive.
Int64Out = Annotated[str, Meta(pattern="^[0-9]{1,19}$")]
Section = Literal["SECTION_TYPE_SIM_LOCK", "SECTION_TYPE_ZERO_TOUCH"]


class Company(Closed):
    """``mapping.company_out``: ``ownerEmails`` is input-only, as on Google's API."""

    companyId: Int64Out
    companyName: str
    name: Annotated[str, Meta(pattern="^partners/[0-9]+/customers/[0-9]+$")]
    termsStatus: Literal["TERMS_STATUS_NOT_ACCEPTED"]
    adminEmails: list[str] | UnsetType = UNSET


class ListCustomersResponse(Closed):
    customers: list[Company]
    totalSize: Annotated[int, Meta(ge=0)]
    nextPageToken: str | UnsetType = UNSET


class ClaimDeviceResponse(Closed):
    deviceId: Int64Out
    deviceName: Annotated[str, Meta(pattern="^partners/[0-9]+/devices/[0-9]+$")]


class Empty(Closed):
    """``devices.unclaim`` answers ``{}`` (googleapiclient cannot parse an empty 200)."""


class DeviceIdentifier(Closed):
    """``mapping.identifier_out``: the identifier fields a device record holds."""

    imei: str | UnsetType = UNSET
    meid: str | UnsetType = UNSET
    serialNumber: str | UnsetType = UNSET
    manufacturer: str | UnsetType = UNSET
    model: str | UnsetType = UNSET


class DeviceMetadata(Closed):
    entries: dict[str, str]


class DeviceClaim(Closed):
    ownerCompanyId: Int64Out
    resellerId: Int64Out
    sectionType: Section


class Device(Closed):
    deviceId: Int64Out
    name: Annotated[str, Meta(pattern="^partners/[0-9]+/devices/[0-9]+$")]
    deviceIdentifier: DeviceIdentifier
    deviceMetadata: DeviceMetadata
    claims: list[DeviceClaim]


class FindDevicesByDeviceIdentifierResponse(Closed):
    devices: list[Device]
    totalSize: Annotated[int, Meta(ge=0)]
    nextPageToken: str | UnsetType = UNSET


class FindDevicesByOwnerResponse(FindDevicesByDeviceIdentifierResponse):
    pass


# -- operations ------------------------------------------------------------------------------------
# Each perDeviceStatus repeats its request item as the request's Struct encodes it (``schemas.echo``:
# fields given and not null, int64 as strings), or as ``lro`` rebuilds it for another dialect's work.


class DeviceIdentifierEcho(Closed):
    imei: str | UnsetType = UNSET
    imei2: str | UnsetType = UNSET
    meid: str | UnsetType = UNSET
    meid2: str | UnsetType = UNSET
    serialNumber: str | UnsetType = UNSET
    manufacturer: str | UnsetType = UNSET
    model: str | UnsetType = UNSET
    deviceType: str | UnsetType = UNSET
    chromeOsAttestedDeviceId: str | UnsetType = UNSET


class DeviceMetadataEcho(Closed):
    entries: dict[str, str] | UnsetType = UNSET


Int64Echo = Annotated[str, Meta(pattern="^-?[0-9]{1,19}$")]


class PartnerClaimEcho(Closed):
    sectionType: Section
    deviceIdentifier: DeviceIdentifierEcho | UnsetType = UNSET
    customerId: Int64Echo | UnsetType = UNSET
    googleWorkspaceCustomerId: str | UnsetType = UNSET
    deviceMetadata: DeviceMetadataEcho | UnsetType = UNSET
    configurationId: Int64Echo | UnsetType = UNSET
    preProvisioningToken: str | UnsetType = UNSET
    simlockProfileId: Int64Echo | UnsetType = UNSET


class PartnerUnclaimEcho(Closed):
    sectionType: Section
    deviceId: Int64Echo | UnsetType = UNSET
    deviceIdentifier: DeviceIdentifierEcho | UnsetType = UNSET
    vacationModeDays: int | UnsetType = UNSET
    vacationModeExpireTime: str | UnsetType = UNSET


class UpdateMetadataArgumentsEcho(Closed):
    deviceId: Int64Echo | UnsetType = UNSET
    deviceIdentifier: DeviceIdentifierEcho | UnsetType = UNSET
    deviceMetadata: DeviceMetadataEcho | UnsetType = UNSET


class PerDeviceStatusInBatch(Closed):
    """``lro._result_out``: ``deviceId`` on success, ``errorIdentifier`` and ``errorMessage`` else."""

    status: Literal[
        "SINGLE_DEVICE_STATUS_SUCCESS",
        "SINGLE_DEVICE_STATUS_INVALID_DEVICE_IDENTIFIER",
        "SINGLE_DEVICE_STATUS_PERMISSION_DENIED",
        "SINGLE_DEVICE_STATUS_SECTION_NOT_YOURS",
        "SINGLE_DEVICE_STATUS_INVALID_SECTION_TYPE",
        "SINGLE_DEVICE_STATUS_UNKNOWN_ERROR",
    ]
    deviceId: Int64Out | UnsetType = UNSET
    errorIdentifier: str | UnsetType = UNSET
    errorMessage: str | UnsetType = UNSET


class OperationPerDevice(Closed):
    """One of ``claim``, ``unclaim`` and ``updateMetadata`` (the operation's kind), and its result."""

    result: PerDeviceStatusInBatch
    claim: PartnerClaimEcho | UnsetType = UNSET
    unclaim: PartnerUnclaimEcho | UnsetType = UNSET
    updateMetadata: UpdateMetadataArgumentsEcho | UnsetType = UNSET


# The ``@type`` of ``metadata`` and ``response``: exactly these type URLs.
_MetadataType = Annotated[str, Meta(pattern=f"^{re.escape(METADATA_TYPE)}$")]
_ResponseType = Annotated[str, Meta(pattern=f"^{re.escape(RESPONSE_TYPE)}$")]


class DevicesLongRunningOperationMetadata(Closed):
    type: _MetadataType = msgspec.field(name="@type")
    processingStatus: Literal["BATCH_PROCESS_PENDING", "BATCH_PROCESS_IN_PROGRESS", "BATCH_PROCESS_PROCESSED"]
    progress: Annotated[int, Meta(ge=0, le=100)]
    devicesCount: Annotated[int, Meta(ge=0)]


class DevicesLongRunningOperationResponse(Closed):
    """``perDeviceStatus`` (every item, in request order) only once the operation is done."""

    type: _ResponseType = msgspec.field(name="@type")
    successCount: Annotated[int, Meta(ge=0)]
    perDeviceStatus: list[OperationPerDevice] | UnsetType = UNSET


class Operation(Closed):
    """``lro.operation_out``: ``error`` is never set (each device's outcome is in its result)."""

    name: Annotated[str, Meta(pattern="^operations/apibatchoperation/[0-9]{1,19}$")]
    done: bool
    metadata: DevicesLongRunningOperationMetadata
    response: DevicesLongRunningOperationResponse


class Status(Closed):
    """``errors.render_error``: ``details`` is Google's, never sent here."""

    code: Literal[400, 401, 403, 404, 405, 409, 429, 500, 503]
    message: str
    status: Literal[
        "INVALID_ARGUMENT",
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
        "NOT_FOUND",
        "UNIMPLEMENTED",
        "ALREADY_EXISTS",
        "RESOURCE_EXHAUSTED",
        "INTERNAL",
        "UNAVAILABLE",
    ]
    details: list[dict[str, Any]] | UnsetType = UNSET


class Error(Closed):
    """Google's error body, every failure of this dialect."""

    error: Status


RESPONSES = [
    Company,
    ListCustomersResponse,
    ClaimDeviceResponse,
    Empty,
    Device,
    DeviceMetadata,
    FindDevicesByDeviceIdentifierResponse,
    FindDevicesByOwnerResponse,
    Operation,
    Error,
]
