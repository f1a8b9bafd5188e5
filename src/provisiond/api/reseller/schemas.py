"""Wire models of the reseller dialect (docs/reseller.md): the reseller library's objects as camelCase JSON.

Requests are decoded by msgspec straight into these structs (no intermediate tree of dicts), with
strict types: a number where a string belongs is a malformed request. Unknown fields are ignored.
Fields the model requires per device (``deviceIdentifier``, ``customer``) are optional here, so that
a device lacking one is reported per device rather than failing the whole request.

Response objects carry every field (``null`` where there is no value, ``""`` for the last page's
``nextPageToken`` and a failed operation's ``operationId``); only ``DeviceIdentifier`` omits the IDs
it does not hold.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "ClaimDeviceResponse",
    "ClaimDevicesAsyncRequest",
    "Company",
    "CompanyIn",
    "CompanyReference",
    "CompanyReferenceIn",
    "Device",
    "DeviceClaim",
    "DeviceIdentifier",
    "DeviceOperationError",
    "DeviceUnclaim",
    "Error",
    "ErrorResponse",
    "FindDevicesByDeviceIdentifierRequest",
    "FindDevicesByOwnerRequest",
    "FindDevicesResponse",
    "GetOperationRequest",
    "ListCustomersRequest",
    "ListCustomersResponse",
    "ListOperationsRequest",
    "ListOperationsResponse",
    "Operation",
    "OperationsResponse",
    "UnclaimDevicesAsyncRequest",
]

VendorParams = dict[str, str]


class _In(msgspec.Struct, rename="camel", gc=False):
    """A request object: camelCase keys, unknown keys ignored.

    ``gc=False``: decoded JSON cannot form reference cycles, and 100,000 claims would otherwise be
    some 300,000 more objects for every garbage collection pass to walk (2/3 of planning time).
    """


class _Out(msgspec.Struct, rename="camel"):
    """A response object: camelCase keys, every field written."""


# -- shared ----------------------------------------------------------------------------------------


class DeviceIdentifier(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """Hardware IDs of one device, in requests and responses; absent IDs are omitted on output."""

    imei: str | None = None
    serial_number: str | None = None
    meid: str | None = None
    manufacturer: str | None = None
    model: str | None = None


class CompanyReferenceIn(_In):
    company_id: str | int | None = None  # a string in the model; a JSON number is accepted too
    vendor: str | None = None  # GOOGLE or SAMSUNG, any case


class CompanyReference(_Out):
    company_id: str
    vendor: str


class Error(_Out):
    code: str
    message: str
    vendor_msg: str
    error_id: str
    vendor_params: VendorParams


class ErrorResponse(_Out):
    """CommonException: the body of every failed call."""

    error: Error


# -- customers -------------------------------------------------------------------------------------


class CompanyIn(_In):
    """createCustomer's request: a Company without its server-assigned ``companyId``."""

    company_reference: CompanyReferenceIn | None = None
    company_name: str | None = None
    vendor_params: VendorParams | None = None


class Company(_Out):
    company_reference: CompanyReference
    company_name: str
    vendor_params: VendorParams


class ListCustomersRequest(_In):
    page_size: int | None = None
    page_token: str | None = None
    vendor_params: VendorParams | None = None


class ListCustomersResponse(_Out):
    customers: list[Company]
    total_count: int
    next_page_token: str
    vendor_params: VendorParams


# -- claims ----------------------------------------------------------------------------------------


class DeviceClaim(_In):
    device_identifier: DeviceIdentifier | None = None
    customer: CompanyReferenceIn | None = None
    order_number: str | None = None
    vendor_params: VendorParams | None = None


class DeviceUnclaim(_In):
    """Left open by the library (docs/reseller.md): ``deviceId`` or ``deviceIdentifier`` or both."""

    device_id: str | None = None
    device_identifier: DeviceIdentifier | None = None
    vendor_params: VendorParams | None = None


class ClaimDevicesAsyncRequest(_In):
    claims: list[DeviceClaim]
    vendor_params: VendorParams | None = None


class UnclaimDevicesAsyncRequest(_In):
    unclaims: list[DeviceUnclaim]
    vendor_params: VendorParams | None = None


class ClaimDeviceResponse(_Out):
    """Also the answer of unclaimDevice, whose response the model leaves open."""

    device_id: str
    vendor_params: VendorParams


# -- operations ------------------------------------------------------------------------------------


class DeviceOperationError(_Out):
    device_id: str
    device_identifier: DeviceIdentifier
    error: Error


class Operation(_Out):
    operation_id: str
    operation_type: str
    state: str
    device_errors: list[DeviceOperationError]
    vendor_params: VendorParams


class OperationsResponse(_Out):
    """The answer of claimDevicesAsync and unclaimDevicesAsync."""

    operations: list[Operation]


class GetOperationRequest(_In):
    operation_id: str | None = None
    vendor_params: VendorParams | None = None


class ListOperationsRequest(_In):
    operation_type: str | None = None
    state: str | None = None
    page_size: int | None = None
    page_token: str | None = None
    vendor_params: VendorParams | None = None


class ListOperationsResponse(_Out):
    operations: list[Operation]
    total_count: int
    next_page_token: str
    vendor_params: VendorParams


# -- devices ---------------------------------------------------------------------------------------


class Device(_Out):
    device_id: str
    device_identifier: DeviceIdentifier
    customer: CompanyReference | None  # None only if the claim went away while the page was read
    order_number: str | None
    vendor_params: VendorParams


class FindDevicesByDeviceIdentifierRequest(_In):
    device_identifier: DeviceIdentifier | None = None
    page_size: int | None = None
    page_token: str | None = None
    vendor_params: VendorParams | None = None


class FindDevicesByOwnerRequest(_In):
    customers: list[CompanyReferenceIn] | None = None
    page_size: int | None = None
    page_token: str | None = None
    vendor_params: VendorParams | None = None


class FindDevicesResponse(_Out):
    devices: list[Device]
    total_count: int
    next_page_token: str
    vendor_params: VendorParams
