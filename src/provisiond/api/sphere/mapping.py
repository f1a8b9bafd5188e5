"""Sphere wire <-> domain: operations, devices, tenants, paging.

The core keeps one operation state vocabulary for every dialect; the Sphere rendering rules are:

- pending → NotStarted (0), in progress → InProgress (1), complete → Complete (2);
- finished with failed items → CompleteWithErrors (4) for a bulk claim, Failed (3) for a
  single-device operation (its one item failed);
- ``Error`` is set only then: Code 7 Conflict for a claim (the only way a claim item fails, since
  ids are checked before the operation exists);
- ``ResourceLocation`` is the device (single) or the tenant's device list (bulk);
  ``DetailsLocation`` is the operation's ``/details``, which lists every device with its own
  State and Error.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any
from uuid import UUID

from provisiond.api.sphere import errors as codes
from provisiond.api.sphere.errors import SphereError
from provisiond.api.sphere.schemas import (
    DeviceV2,
    ErrorCode,
    ErrorResponse,
    Operation,
    OperationDetails,
    OperationItem,
    OperationType,
    State,
    TenantV2,
)
from provisiond.domain.claims import ItemResult, OperationKind, OperationState
from provisiond.domain.sphere import CONFLICT, NOT_OWNED, SphereDevice, SphereOperation, Tenant

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "decode_continuation",
    "details_out",
    "device_ids_from_wire",
    "device_out",
    "encode_continuation",
    "operation_location",
    "operation_out",
    "page_size",
    "tenant_out",
    "timestamp",
]

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 1000  # larger requests get pages of this size
ROLES = ["Administrator"]  # a tenant token may do everything its tenant may

_TYPES = {
    OperationKind.SPHERE_CLAIM: OperationType.DEVICE_CLAIM,
    OperationKind.SPHERE_BULK_CLAIM: OperationType.BULK_DEVICE_CLAIM,
    OperationKind.SPHERE_RELEASE: OperationType.DEVICE_UNCLAIM,
}
_STATES = {
    OperationState.PENDING: State.NOT_STARTED,
    OperationState.IN_PROGRESS: State.IN_PROGRESS,
    OperationState.COMPLETE: State.COMPLETE,
    OperationState.FAILED: State.FAILED,
}
_ITEM_CODES = {CONFLICT: ErrorCode.CONFLICT, NOT_OWNED: ErrorCode.NOT_FOUND}


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 UTC with microseconds and ``Z``, e.g. ``2024-01-01T00:00:00.000000Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


def _tenant_url(base: str, tenant_id: UUID) -> str:
    return f"{base}/v2/tenants/{tenant_id}"


def operation_location(base: str, op: SphereOperation) -> str:
    """The URL a client polls (the 202's ``Location``)."""
    return f"{_tenant_url(base, op.tenant_id)}/operations/{op.id}"


def _state(op: SphereOperation) -> State:
    if op.core.state is OperationState.COMPLETE_WITH_ERRORS:
        return State.FAILED if op.device_id is not None else State.COMPLETE_WITH_ERRORS
    return _STATES[op.core.state]


def _error(op: SphereOperation, state: State) -> ErrorResponse | None:
    if state is State.FAILED and op.device_id is not None:
        return {"Code": ErrorCode.CONFLICT, "Message": f"device {op.device_id} is claimed by another tenant"}
    if state in (State.FAILED, State.COMPLETE_WITH_ERRORS):
        failed = op.core.total - op.core.succeeded
        return {
            "Code": ErrorCode.CONFLICT,
            "Message": f"{failed} of {op.core.total} devices are claimed by another tenant; "
            "DetailsLocation lists them",
        }
    return None


def operation_out(op: SphereOperation, base: str) -> Operation:
    """The Operation body; ``base`` is the server's URL as the client reached it."""
    state = _state(op)
    tenant = _tenant_url(base, op.tenant_id)
    resource = f"{tenant}/devices/{op.device_id}" if op.device_id is not None else f"{tenant}/devices"
    return {
        "OperationId": str(op.id),
        "OperationType": _TYPES[op.core.kind],
        "State": state,
        "TenantId": str(op.tenant_id),
        "CreatedDateUTC": op.core.created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "StartedDateUTC": timestamp(op.core.started),
        "CompletedDateUTC": timestamp(op.core.completed),
        "ResourceLocation": resource,
        "DetailsLocation": operation_location(base, op) + "/details",
        "Error": _error(op, state),
    }


def _item_out(device_id: str, result: ItemResult | None) -> OperationItem:
    if result is None:
        return {"DeviceId": device_id, "State": State.NOT_STARTED, "Error": None}
    if result.ok:
        return {"DeviceId": device_id, "State": State.COMPLETE, "Error": None}
    code = _ITEM_CODES.get(result.code or "", ErrorCode.OPERATION_FAILED)
    return {
        "DeviceId": device_id,
        "State": State.FAILED,
        "Error": {"Code": code, "Message": result.message or "failed"},
    }


def details_out(op: SphereOperation, items: list[tuple[str, ItemResult | None]]) -> OperationDetails:
    """Every device of the operation in request order with its own State and Error."""
    return {"OperationId": str(op.id), "Items": [_item_out(d, r) for d, r in items]}


def device_out(device: SphereDevice, tenant: Tenant) -> DeviceV2:
    return {
        "DeviceId": device.device_id,
        "TenantId": str(tenant.id),
        "ChipSku": device.chip_sku,
        "DeviceGroupId": str(device.device_group_id) if device.device_group_id else None,
        "ProductId": str(device.product_id) if device.product_id else None,
        "LastAvailableOSVersion": device.last_available_os_version,
        "LastInstalledOSVersion": device.last_installed_os_version,
        "LastOSUpdateUTC": timestamp(device.last_os_update),
        "LastUpdateRequestUTC": timestamp(device.last_update_request),
    }


def device_ids_from_wire(body: Any) -> list[str]:
    """The bulk claim body: a JSON array of strings (their syntax is the domain's to check)."""
    if not isinstance(body, list):
        raise SphereError(400, codes.INVALID_DEVICE_LIST, "the body is a JSON array of 1 to 1,000 device ids")
    for index, item in enumerate(body):
        if not isinstance(item, str):
            raise SphereError(400, codes.INVALID_DEVICE_ID, f"item {index}: a device id is a JSON string")
    return body


def tenant_out(tenant: Tenant) -> TenantV2:
    return {"Id": str(tenant.id), "Name": tenant.name, "Roles": list(ROLES)}


def page_size(text: str | None) -> int:
    """``maxPageSize``: 1 or more (default and ceiling 1,000; any larger number means 1,000)."""
    if text is None:
        return DEFAULT_PAGE_SIZE
    significant = text.lstrip("0")  # int() refuses more than 4,300 digits: never call it on those
    if not text.isascii() or not text.isdigit() or not significant:
        raise SphereError(
            400, codes.INVALID_PAGE_SIZE, f"maxPageSize is a positive integer, not {text[:20]!r}"
        )
    return MAX_PAGE_SIZE if len(significant) > 4 else min(int(significant), MAX_PAGE_SIZE)


def encode_continuation(last_device_id: str) -> str:
    """An opaque token naming the last device of a page (keyset paging)."""
    return base64.urlsafe_b64encode(bytes.fromhex(last_device_id)).rstrip(b"=").decode()


def decode_continuation(token: str | None) -> str | None:
    """The device id a ``Sphere-Continuation`` token names; a token we did not issue is a 400.
    An empty header is the first page, like no header (some clients always send it)."""
    if not token:
        return None
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 64 or encode_continuation(raw.hex()) != token:
        raise SphereError(400, codes.INVALID_CONTINUATION_TOKEN, "the Sphere-Continuation token is not valid")
    return raw.hex().upper()
