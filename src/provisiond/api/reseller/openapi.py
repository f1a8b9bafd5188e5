"""The reseller object model's OpenAPI document.

Answers are described by the very structs the routes encode (``schemas``), each closed with
``additionalProperties: false`` and with the enums ``mapping`` writes, so the fuzzer checks every
answer field for field. Requests are described by the structs below: the fields of ``schemas``'s
request objects (a test keeps the names in step) with the constraints the dialect and the core
enforce (id syntax, page sizes, identifier syntax, list limits), so generated requests get past
decoding and reach the methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from provisiond.api.openapi import (
    DialectDocument,
    Operation,
    Schema,
    json_content,
    msgspec_components,
    ref,
)
from provisiond.api.reseller import schemas as wire
from provisiond.api.reseller.errors import PREFIX, ErrorCode
from provisiond.api.reseller.mapping import MAX_PAGE_SIZE, OPERATION_TYPES, STATES, VENDOR_NAMES
from provisiond.domain.claims import MAX_ITEMS
from provisiond.domain.device_identifiers import DEFAULT_MANUFACTURERS, MAX_SERIAL_LENGTH

__all__ = ["DOCUMENT", "REQUESTS"]

_INT64 = 2**63 - 1
_NUMBER = r"[1-9][0-9]{0,17}"  # a server-assigned id: positive, at most 18 digits (mapping.number_in)

CompanyId = Annotated[str, Meta(pattern=f"^{_NUMBER}$")] | Annotated[int, Meta(ge=1, le=_INT64)]
PrefixedId = Annotated[str, Meta(pattern=f"^(google|samsung|GOOGLE|SAMSUNG)/{_NUMBER}$")]
PageSize = Annotated[int, Meta(ge=0, le=_INT64)]
VendorName = Literal["GOOGLE", "SAMSUNG"]
_PRINTABLE = r"[^\s\x00-\x1f\x7f-\x9f]"  # what a serial may start and end with
Serial = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_SERIAL_LENGTH,
        pattern=f"^{_PRINTABLE}(?:[^\\x00-\\x1f\\x7f-\\x9f]*{_PRINTABLE})?$",
    ),
]


class _In(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """A request object as documented; the server ignores unknown fields, the document lists none."""


class DeviceIdentifierIn(_In, kw_only=True):
    imei: Annotated[str, Meta(pattern="^[0-9]{15}$")] | None = None
    serial_number: Serial | None = None
    meid: Annotated[str, Meta(pattern="^[0-9A-Fa-f]{14}[0-9A-Fa-f]?$")] | None = None
    manufacturer: str | None = None
    model: str | None = None


class CompanyReferenceIn(_In, kw_only=True):
    company_id: CompanyId | None = None
    vendor: VendorName | None = None


class NewCompanyReference(_In, kw_only=True):
    """createCustomer's reference: the server assigns ``companyId``."""

    vendor: VendorName | None = None


class CompanyIn(_In, kw_only=True):
    company_reference: NewCompanyReference | None = None
    company_name: Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]
    vendor_params: dict[str, str] | None = None


class ListCustomersRequest(_In, kw_only=True):
    page_size: PageSize | None = None
    page_token: str | None = None
    vendor_params: dict[str, str] | None = None


class GoogleCompanyReference(_In, kw_only=True):
    """claimDevice's customer: a SAMSUNG one is answered 501 (Samsung claims only asynchronously)."""

    company_id: CompanyId
    vendor: Literal["GOOGLE"] | None = None


class DeviceClaim(_In, kw_only=True):
    """claimDevice's request: without the device or the customer it is a 400 (the async methods
    report those per device instead)."""

    device_identifier: DeviceIdentifierIn
    customer: GoogleCompanyReference
    order_number: str | None = None
    vendor_params: dict[str, str] | None = None


class AsyncDeviceClaim(_In, kw_only=True):
    device_identifier: DeviceIdentifierIn | None = None
    customer: CompanyReferenceIn | None = None
    order_number: str | None = None
    vendor_params: dict[str, str] | None = None


class DeviceUnclaim(_In, kw_only=True):
    device_id: PrefixedId | None = None
    device_identifier: DeviceIdentifierIn | None = None
    vendor_params: dict[str, str] | None = None


class ClaimDevicesAsyncRequest(_In, kw_only=True):
    claims: Annotated[list[AsyncDeviceClaim], Meta(max_length=MAX_ITEMS)]
    vendor_params: dict[str, str] | None = None


class UnclaimDevicesAsyncRequest(_In, kw_only=True):
    unclaims: Annotated[list[DeviceUnclaim], Meta(max_length=MAX_ITEMS)]
    vendor_params: dict[str, str] | None = None


class GetOperationRequest(_In, kw_only=True):
    operation_id: PrefixedId
    vendor_params: dict[str, str] | None = None


class ListOperationsRequest(_In, kw_only=True):
    operation_type: Literal["CLAIM_DEVICES", "UNCLAIM_DEVICES", "UPDATE_CLAIMS"] | None = None
    state: Literal["IN_PROGRESS", "COMPLETE", "COMPLETE_WITH_ERRORS", "FAILED"] | None = None
    page_size: PageSize | None = None
    page_token: str | None = None
    vendor_params: dict[str, str] | None = None


class FindDevicesByDeviceIdentifierRequest(_In, kw_only=True):
    device_identifier: DeviceIdentifierIn
    page_size: PageSize | None = None
    page_token: str | None = None
    vendor_params: dict[str, str] | None = None


class FindDevicesByOwnerRequest(_In, kw_only=True):
    customers: Annotated[list[CompanyReferenceIn], Meta(min_length=1, max_length=100)]
    page_size: PageSize | None = None
    page_token: str | None = None
    vendor_params: dict[str, str] | None = None


# method -> (documented request, the struct the route decodes with, answer, summary, extra statuses)
REQUESTS: dict[str, tuple[type[_In], type[msgspec.Struct], type[msgspec.Struct], str, tuple[int, ...]]] = {
    "createCustomer": (CompanyIn, wire.CompanyIn, wire.Company, "Create a customer.", ()),
    "listCustomers": (
        ListCustomersRequest,
        wire.ListCustomersRequest,
        wire.ListCustomersResponse,
        "A page of your customers.",
        (),
    ),
    "claimDevice": (
        DeviceClaim,
        wire.DeviceClaim,
        wire.ClaimDeviceResponse,
        "Claim one device for a customer, now.",
        (404, 409, 501),
    ),
    "claimDevicesAsync": (
        ClaimDevicesAsyncRequest,
        wire.ClaimDevicesAsyncRequest,
        wire.OperationsResponse,
        f"Claim up to {MAX_ITEMS} devices: one operation per vendor.",
        (),
    ),
    "unclaimDevice": (
        DeviceUnclaim,
        wire.DeviceUnclaim,
        wire.ClaimDeviceResponse,
        "Unclaim one device, now.",
        (404,),
    ),
    "unclaimDevicesAsync": (
        UnclaimDevicesAsyncRequest,
        wire.UnclaimDevicesAsyncRequest,
        wire.OperationsResponse,
        f"Unclaim up to {MAX_ITEMS} devices: one operation per vendor.",
        (),
    ),
    "getOperation": (
        GetOperationRequest,
        wire.GetOperationRequest,
        wire.Operation,
        "An operation, with its deviceErrors once it has ended.",
        (404,),
    ),
    "listOperations": (
        ListOperationsRequest,
        wire.ListOperationsRequest,
        wire.ListOperationsResponse,
        "A page of your operations.",
        (),
    ),
    "findDevicesByDeviceIdentifier": (
        FindDevicesByDeviceIdentifierRequest,
        wire.FindDevicesByDeviceIdentifierRequest,
        wire.FindDevicesResponse,
        "A page of your devices matching a (partial) identifier.",
        (),
    ),
    "findDevicesByOwner": (
        FindDevicesByOwnerRequest,
        wire.FindDevicesByOwnerRequest,
        wire.FindDevicesResponse,
        f"A page of the devices of up to 100 of your customers ({MAX_PAGE_SIZE} per page).",
        (404,),
    ),
}

_REASONS = {
    400: "The request is malformed or breaks a rule (error.code says which).",
    403: "The bearer token is missing or is no partner's (AUTHORIZATION_FAIL).",
    404: "A named customer, device or operation does not exist or is not yours.",
    409: "The device already has an owner (DUPLICATE_DEVICE: this customer; else AUTHORIZATION_FAIL).",
    500: "An unexpected fault, or the database is unavailable; retry.",
    501: "claimDevice for a SAMSUNG customer (use claimDevicesAsync).",
}

ERROR = "ErrorResponse"

_VENDOR_PARAMS: dict[str, dict[str, Schema]] = {
    "ListCustomersRequest": {"vendor": {"enum": ["GOOGLE", "SAMSUNG"], "description": "Any case."}},
    "GetOperationRequest": {
        "errorCode": {
            "enum": [code.value for code in ErrorCode],
            "description": "List only the deviceErrors with this code (any case).",
        }
    },
    "DeviceUnclaim": {
        "vendor": {"enum": ["GOOGLE", "SAMSUNG"]},
        "customerId": {"pattern": f"^{_NUMBER}$", "description": "Your SAMSUNG customer (Samsung only)."},
    },
}
_VENDOR_PARAMS["UnclaimDevicesAsyncRequest"] = _VENDOR_PARAMS["DeviceUnclaim"]


def _operations() -> Iterator[Operation]:
    for method, (request, _, answer, summary, extra) in REQUESTS.items():
        statuses = sorted({400, 403, 500, *extra})
        required = any(f.required for f in msgspec.structs.fields(request))
        yield Operation(
            "POST",
            f"{PREFIX}/{method}",
            method,
            summary,
            {
                "200": json_content(ref(answer.__name__), summary),
                **{str(s): json_content(ref(ERROR), _REASONS[s]) for s in statuses},
            },
            request_body={
                "required": required,
                **json_content(ref(request.__name__), "The request object; an empty body is {}."),
            },
            tags=(method.removesuffix("Async"),),
        )


def _closed(schema: Schema) -> None:
    """Answers carry no field beyond those listed (the structs encode exactly their fields)."""
    if schema.get("type") == "object" and "properties" in schema:
        schema["additionalProperties"] = False


def _refine(components: dict[str, Schema], name: str, field: str, extra: Schema) -> None:
    """Narrow one answer field to what ``mapping`` writes (an enum where the struct says str)."""
    prop = components[name]["properties"][field]
    if "anyOf" in prop:  # nullable: narrow the non-null branch
        null = {"type": "null"}
        prop["anyOf"] = [branch if branch == null else {**branch, **extra} for branch in prop["anyOf"]]
    else:
        prop.update(extra)


def _components() -> dict[str, Schema]:
    components = msgspec_components([request for request, *_ in REQUESTS.values()])
    for name, params in _VENDOR_PARAMS.items():
        vendor_params: Schema = {
            "type": "object",
            "properties": {key: {"type": "string", **rule} for key, rule in params.items()},
            "additionalProperties": {"type": "string"},
        }
        components[name]["properties"]["vendorParams"] = {"anyOf": [vendor_params, {"type": "null"}]}
    manufacturer = components["DeviceIdentifierIn"]["properties"]["manufacturer"]
    manufacturer["anyOf"][0] = {
        "type": "string",
        "enum": list(DEFAULT_MANUFACTURERS),
        "description": "Build.MANUFACTURER, any case; the default allow-list (a deployment may set its own).",
    }
    answers = msgspec_components([answer for *_, answer, _, _ in REQUESTS.values()] + [wire.ErrorResponse])
    for schema in answers.values():
        _closed(schema)
    vendors = {"enum": sorted(VENDOR_NAMES.values())}
    _refine(answers, "CompanyReference", "vendor", vendors)
    _refine(answers, "Operation", "operationType", {"enum": sorted(OPERATION_TYPES.values())})
    _refine(answers, "Operation", "state", {"enum": sorted(set(STATES.values()))})
    _refine(answers, "Error", "code", {"enum": [code.value for code in ErrorCode]})
    _refine(answers, "Device", "deviceId", {"pattern": f"^(google|samsung)/{_NUMBER}$"})
    _refine(answers, "ClaimDeviceResponse", "deviceId", {"pattern": f"^(google|samsung)/{_NUMBER}$"})
    _refine(answers, "Operation", "operationId", {"pattern": f"^((google|samsung)/{_NUMBER})?$"})
    overlap = set(components) & set(answers)
    if overlap:
        raise ValueError(f"request and answer schemas share names: {sorted(overlap)}")
    return {**components, **answers}


DOCUMENT = DialectDocument(
    name="reseller",
    title="provisiond: reseller object model (Common Android Reseller Library)",
    api_version="v1",
    description=(
        "The Common Android Reseller Library's objects as JSON: every method is "
        f"`POST {PREFIX}/{{method}}` with the method's request object as the body and its response "
        'object as the answer; every failure is `{"error": Error}`. Any other path, method name or '
        "HTTP verb under /reseller/ answers 501 NOT_IMPLEMENTED. The caller is the partner whose "
        "bearer token it sends (the same partners as the zero-touch API)."
    ),
    operations=_operations,
    components=_components,
    security_schemes={
        "partnerToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "A partner's token (provisiond partner create / rotate-token).",
        }
    },
)
