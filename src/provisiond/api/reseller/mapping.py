"""Wire <-> core for the reseller dialect: prefixed ids, vendors, identifiers, companies, devices,
operations with their deviceErrors, page tokens and page sizes.

Decisions (see docs/reseller.md):

- ``vendor`` is written ``GOOGLE`` / ``SAMSUNG`` (the style of the model's other enums) and read in
  any case. ``deviceId`` and ``operationId`` are ``google/<n>`` or ``samsung/<n>``; ``companyId``
  is the bare number (its vendor sits beside it in the CompanyReference).
- A device's prefix is the vendor of the customer that holds it for the caller.
- Page tokens are opaque, bound to the method that issued them; ``""`` means the last page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from provisiond.api.reseller import schemas as wire
from provisiond.api.reseller.errors import ErrorCode, ResellerError, error_object, parse_error_code
from provisiond.domain.claims import (
    Claim,
    ClaimItem,
    Customer,
    Device,
    Item,
    ItemResult,
    ItemStatus,
    Operation,
    OperationKind,
    OperationState,
    Partner,
    SectionType,
)
from provisiond.domain.device_identifiers import DeviceIdentifier, Vendor

__all__ = [
    "MAX_PAGE_SIZE",
    "company_out",
    "device_error",
    "device_out",
    "failed_operation",
    "identifier_in",
    "identifier_out",
    "is_reseller_kind",
    "kinds_in",
    "next_token",
    "number_in",
    "operation_out",
    "owner_claim",
    "page_size",
    "prefixed_in",
    "prefixed_out",
    "reference_out",
    "result_error",
    "search_identifier",
    "states_in",
    "token_in",
    "vendor_in",
    "wire_item",
]

MAX_PAGE_SIZE = 100

VENDOR_NAMES = {Vendor.GOOGLE: "GOOGLE", Vendor.SAMSUNG: "SAMSUNG"}
_VENDORS = {vendor.value: vendor for vendor in Vendor}  # a dict: Vendor(text) is slow per device

OPERATION_TYPES = {
    OperationKind.CLAIM: "CLAIM_DEVICES",
    OperationKind.UNCLAIM: "UNCLAIM_DEVICES",
    OperationKind.UPDATE_METADATA: "UPDATE_CLAIMS",  # created by zero-touch updateMetadataAsync
}
_KINDS = {name: kind for kind, name in OPERATION_TYPES.items()}

STATES = {
    OperationState.PENDING: "IN_PROGRESS",  # stored, not yet taken by a worker
    OperationState.IN_PROGRESS: "IN_PROGRESS",
    OperationState.COMPLETE: "COMPLETE",
    OperationState.COMPLETE_WITH_ERRORS: "COMPLETE_WITH_ERRORS",
    OperationState.FAILED: "FAILED",
}
_STATE_FILTERS = {
    "IN_PROGRESS": [OperationState.PENDING, OperationState.IN_PROGRESS],
    "COMPLETE": [OperationState.COMPLETE],
    "COMPLETE_WITH_ERRORS": [OperationState.COMPLETE_WITH_ERRORS],
    "FAILED": [OperationState.FAILED],
}

_MAX_ID_DIGITS = 18  # every id fits a signed 64-bit integer


def _bad(message: str, code: ErrorCode = ErrorCode.INVALID_PARAM_DEFAULT) -> ResellerError:
    return ResellerError(400, code, message)


# -- vendors and ids -------------------------------------------------------------------------------


def vendor_in(text: str | None) -> Vendor | None:
    """A vendor named on the wire (any case), ``None`` if not named; an unknown name is malformed."""
    if text is None or not text.strip():
        return None
    vendor = _VENDORS.get(text.strip().lower())
    if vendor is None:
        raise _bad(f"vendor {text!r} is neither GOOGLE nor SAMSUNG")
    return vendor


def number_in(value: str | int | None) -> int | None:
    """A server-assigned number from the wire (``"123"`` or ``123``); ``None`` if absent or malformed."""
    if isinstance(value, int):
        return value if 0 < value < 1 << 63 else None
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > _MAX_ID_DIGITS:
        return None
    number = int(value)
    return number if number > 0 else None


def prefixed_in(text: str | None) -> tuple[Vendor, int] | None:
    """``google/<n>`` or ``samsung/<n>`` (prefix in any case) as (vendor, n); ``None`` if malformed."""
    prefix, slash, rest = (text or "").partition("/")
    if not slash:
        return None
    vendor = _VENDORS.get(prefix.lower())
    number = number_in(rest)
    return None if vendor is None or number is None else (vendor, number)


def prefixed_out(vendor: Vendor, number: int) -> str:
    return f"{vendor.value}/{number}"


# -- identifiers, companies, devices ---------------------------------------------------------------


def identifier_in(d: wire.DeviceIdentifier | None) -> DeviceIdentifier:
    """The identifier as given; the core validates and normalises it per device."""
    if d is None:
        return DeviceIdentifier()
    return DeviceIdentifier(d.imei, d.meid, d.serial_number, d.manufacturer, d.model)


def search_identifier(d: wire.DeviceIdentifier | None) -> DeviceIdentifier | None:
    """A (possibly partial) identifier to search by, in stored form; ``None`` if it names nothing."""

    def given(value: str | None) -> str | None:
        return value if value is not None and value.strip() else None

    if d is None:
        return None
    imei, meid = given(d.imei), given(d.meid)
    found = DeviceIdentifier(
        imei=imei.strip() if imei else None,
        meid=meid.strip().upper() if meid else None,  # stored MEIDs are upper-case
        serial_number=given(d.serial_number),
        manufacturer=given(d.manufacturer),
        model=given(d.model),
    )
    return found if found != DeviceIdentifier() else None


def identifier_out(d: DeviceIdentifier) -> wire.DeviceIdentifier:
    return wire.DeviceIdentifier(d.imei, d.serial_number, d.meid, d.manufacturer, d.model)


def reference_out(c: Customer) -> wire.CompanyReference:
    return wire.CompanyReference(str(c.id), VENDOR_NAMES[c.vendor])


def company_out(c: Customer) -> wire.Company:
    return wire.Company(reference_out(c), c.name, dict(c.vendor_params))


def owner_claim(device: Device, partner: Partner) -> Claim | None:
    """The caller's claim on a device: its zero-touch section first (the reseller model's)."""
    mine = [c for c in device.claims if c.partner_id == partner.id]
    mine.sort(key=lambda c: c.section_type is not SectionType.ZERO_TOUCH)
    return mine[0] if mine else None


def device_out(device: Device, partner: Partner, customers: Mapping[int, Customer]) -> wire.Device:
    """A Device as the caller sees it: its customer, order number and vendorParams from its claim."""
    claim = owner_claim(device, partner)
    customer = customers.get(claim.customer_id) if claim is not None else None
    vendor = customer.vendor if customer is not None else Vendor.GOOGLE
    return wire.Device(
        prefixed_out(vendor, device.id),
        identifier_out(device.identifier),
        reference_out(customer) if customer is not None else None,
        claim.order_number if claim is not None else None,
        dict(claim.vendor_params) if claim is not None else {},
    )


# -- paging ----------------------------------------------------------------------------------------


def page_size(value: int | None) -> int:
    """``pageSize``: null, 0 or anything over 100 means 100; a negative size is malformed."""
    if value is not None and value < 0:
        raise _bad(f"pageSize must not be negative, not {value}")
    return MAX_PAGE_SIZE if not value else min(value, MAX_PAGE_SIZE)


def _token(method: str, after: int) -> str:
    return base64.urlsafe_b64encode(f"{method}:{after}".encode()).decode().rstrip("=")


def next_token(method: str, after: int | None, more: bool) -> str:
    """The token of the page after ``after`` (the last id shown), or ``""`` on the last page."""
    return _token(method, after) if more and after is not None else ""


def token_in(method: str, token: str | None) -> int | None:
    """The id a page token continues after; ``None`` (first page) for a null or empty token."""
    if not token:
        return None
    try:
        text = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):  # ValueError: a non-ASCII token
        text = ""
    name, _, after = text.partition(":")
    number = number_in(after)
    if name != method or number is None:
        raise _bad("the page token is not one this method issued", ErrorCode.INVALID_PAGE_TOKEN)
    return number


# -- operations ------------------------------------------------------------------------------------


def kinds_in(text: str | None) -> list[OperationKind]:
    """listOperations' ``operationType`` filter (any case); all three types if none is given.

    Listing the three by name keeps other kinds of operations (Azure Sphere's, which belong to
    tenants, not partners) out of this dialect whatever their owner id.
    """
    if text is None or not text.strip():
        return list(OPERATION_TYPES)
    kind = _KINDS.get(text.strip().upper())
    if kind is None:
        raise _bad(f"operationType {text!r} is not one of {', '.join(_KINDS)}")
    return [kind]


def states_in(text: str | None) -> list[OperationState] | None:
    """listOperations' ``state`` filter (any case); ``None`` for all states."""
    if text is None or not text.strip():
        return None
    states = _STATE_FILTERS.get(text.strip().upper())
    if states is None:
        raise _bad(f"state {text!r} is not one of {', '.join(_STATE_FILTERS)}")
    return states


def wire_item(
    device_id: str | None, identifier: wire.DeviceIdentifier | None, refused: tuple[ErrorCode, str] | None
) -> dict[str, Any]:
    """What an async item keeps of its request, to render its deviceError exactly as it was sent.

    ``refused`` is a fault this dialect found before the core saw the item (a malformed deviceId,
    nothing naming a device); the core is then handed an item that names no device.
    """
    item: dict[str, Any] = {"reseller": True}
    if device_id is not None:
        item["deviceId"] = device_id
    if identifier is not None:
        item["deviceIdentifier"] = msgspec.to_builtins(identifier)
    if refused is not None:
        item["refused"] = [refused[0].value, refused[1]]
    return item


def _result_code(result: ItemResult) -> ErrorCode:
    """The ErrorCode of a failed item.

    A missing device and another's device both read AUTHORIZATION_FAIL, so a partner cannot tell
    whether someone else holds a device (the core says INVALID_DEVICE for the first).
    """
    if result.status is ItemStatus.DUPLICATE:
        return ErrorCode.DUPLICATE_DEVICE
    if result.status in (ItemStatus.NOT_FOUND, ItemStatus.SECTION_NOT_YOURS):
        return ErrorCode.AUTHORIZATION_FAIL
    if result.status is ItemStatus.PERMISSION_DENIED:
        return ErrorCode.INVALID_CUSTOMER_ID
    return parse_error_code(result.code or "") or ErrorCode.INTERNAL_SERVER_ERROR


_NOT_YOURS = "the device does not exist or is not claimed by you"


def result_error(
    result: ItemResult, vendor: Vendor, error_id: str, *, claim: bool
) -> tuple[ErrorCode, wire.Error]:
    """The Error of a failed item; a duplicate names the caller's own device in vendorParams.

    An unclaim or update of a device that is missing, unclaimed or someone else's gets one and the
    same message, so that not even vendorMsg tells the three apart.
    """
    code = _result_code(result)
    params = {}
    if result.status is ItemStatus.DUPLICATE and result.device_id is not None:
        params["deviceId"] = prefixed_out(vendor, result.device_id)
    message = result.message or ""
    if result.status is ItemStatus.NOT_FOUND or (result.status is ItemStatus.SECTION_NOT_YOURS and not claim):
        message = _NOT_YOURS
    return code, error_object(code, message, error_id, params)


def device_error(
    vendor: Vendor, item: Item, stored: Any, result: ItemResult, error_id: str
) -> wire.DeviceOperationError:
    """One deviceErrors entry: deviceId and deviceIdentifier as the request gave them.

    Items that another dialect stored (zero-touch operations seen through listOperations and
    getOperation) are rendered from the core item instead.
    """
    if isinstance(stored, dict) and stored.get("reseller") is True:
        device_id = str(stored.get("deviceId", ""))
        identifier = msgspec.convert(stored.get("deviceIdentifier") or {}, wire.DeviceIdentifier)
        refused = stored.get("refused")
    else:
        number = None if isinstance(item, ClaimItem) else item.device_id
        device_id = prefixed_out(vendor, number) if number is not None else ""
        identifier = identifier_out(item.identifier) if item.identifier else wire.DeviceIdentifier()
        refused = None
    if refused:
        error = error_object(ErrorCode(refused[0]), refused[1], error_id)
    else:
        _, error = result_error(result, vendor, error_id, claim=isinstance(item, ClaimItem))
    return wire.DeviceOperationError(device_id, identifier, error)


def operation_params(op: Operation) -> dict[str, str]:
    """Operation.vendorParams: progress counters (strings, as the map is a string map)."""
    return {
        "devicesCount": str(op.total),
        "processedCount": str(op.processed),
        "successCount": str(op.succeeded),
        "progress": str(op.progress),
    }


def is_reseller_kind(kind: OperationKind) -> bool:
    """Whether this dialect shows operations of ``kind`` (claims, unclaims, metadata updates)."""
    return kind in OPERATION_TYPES


def operation_out(
    op: Operation,
    results: Sequence[tuple[Item, Any, ItemResult | None]] = (),
    only: ErrorCode | None = None,
) -> wire.Operation:
    """An Operation; deviceErrors lists every processed item that did not plainly succeed
    (duplicates included), in request order, optionally only those with code ``only``."""
    vendor = op.vendor
    assert vendor is not None  # a partner's operation always names its back end
    operation_id = prefixed_out(vendor, op.id)
    errors = []
    for seq, (item, stored, result) in enumerate(results):
        if result is None or result.status is ItemStatus.SUCCESS:
            continue
        entry = device_error(vendor, item, stored, result, f"{operation_id}#{seq}")
        if only is None or entry.error.code == only.value:
            errors.append(entry)
    return wire.Operation(
        operation_id, OPERATION_TYPES[op.kind], STATES[op.state], errors, operation_params(op)
    )


def failed_operation(
    kind: OperationKind,
    vendor: Vendor,
    entries: Sequence[tuple[int, dict[str, Any]]],
    code: ErrorCode,
    reason: str,
    batch_id: str,
) -> wire.Operation:
    """An Operation that failed before it started: empty operationId, state FAILED, every device
    of the group in deviceErrors with the same error; nothing of it was stored."""
    errors = [
        wire.DeviceOperationError(
            str(stored.get("deviceId", "")),
            msgspec.convert(stored.get("deviceIdentifier") or {}, wire.DeviceIdentifier),
            error_object(code, reason, f"{batch_id}#{index}"),
        )
        for index, stored in entries
    ]
    params = {"vendor": VENDOR_NAMES[vendor], "devicesCount": str(len(entries)), "reason": reason}
    return wire.Operation("", OPERATION_TYPES[kind], "FAILED", errors, params)
