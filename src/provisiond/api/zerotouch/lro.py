"""Long-running operations of claimAsync, unclaimAsync and updateMetadataAsync (docs/zerotouch.md).

The JSON is ``{name, done, metadata, response}``: ``metadata`` says how far the operation got;
``response`` holds ``successCount`` and, once ``done``, one ``perDeviceStatus`` per request item in
request order, each repeating its request item. The top-level ``error`` is never set: every
device's outcome is in its own ``result``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from provisiond.api.zerotouch.mapping import REFUSED, WIRE_KEY, identifier_out
from provisiond.domain.claims import (
    ClaimItem,
    ItemResult,
    ItemStatus,
    Operation,
    OperationKind,
    OperationState,
    UnclaimItem,
    UpdateItem,
)

__all__ = ["METADATA_TYPE", "RESPONSE_TYPE", "ZT_KINDS", "operation_id", "operation_name", "operation_out"]

_PROTO = "type.googleapis.com/google.android.device.provisioning.v1."
METADATA_TYPE = _PROTO + "DevicesLongRunningOperationMetadata"
RESPONSE_TYPE = _PROTO + "DevicesLongRunningOperationResponse"

_NAME_RE = re.compile(r"apibatchoperation/([0-9]{1,19})")

_PROCESSING = {
    OperationState.PENDING: "BATCH_PROCESS_PENDING",
    OperationState.IN_PROGRESS: "BATCH_PROCESS_IN_PROGRESS",
}
_ITEM_KEY = {
    OperationKind.CLAIM: "claim",
    OperationKind.UNCLAIM: "unclaim",
    OperationKind.UPDATE_METADATA: "updateMetadata",
}
ZT_KINDS = frozenset(_ITEM_KEY)  # the operation kinds this dialect renders (not Azure Sphere's)
_S = "SINGLE_DEVICE_STATUS_"
SUCCESS = _S + "SUCCESS"
# Core outcome -> per-device status. DUPLICATE (already this customer's) is a success: nothing to do.
_STATUS = {
    ItemStatus.SUCCESS: SUCCESS,
    ItemStatus.DUPLICATE: SUCCESS,
    ItemStatus.INVALID_IDENTIFIER: _S + "INVALID_DEVICE_IDENTIFIER",
    ItemStatus.PERMISSION_DENIED: _S + "PERMISSION_DENIED",
    ItemStatus.SECTION_NOT_YOURS: _S + "SECTION_NOT_YOURS",
    ItemStatus.NOT_FOUND: _S + "INVALID_DEVICE_IDENTIFIER",
}


def operation_name(op_id: int) -> str:
    """Real names look like ``operations/apibatchoperation/<digits>``; ours do too."""
    return f"operations/apibatchoperation/{op_id}"


def operation_id(rest: str) -> int | None:
    """The operation id in the part of the name after ``operations/``, or ``None``."""
    found = _NAME_RE.fullmatch(rest)
    number = int(found.group(1)) if found else None
    return number if number is not None and number < 1 << 63 else None  # ids are int64 in the store


def _request_of(item: ClaimItem | UnclaimItem | UpdateItem, wire: Any) -> dict[str, Any]:
    """The request item: as this dialect stored it, or rebuilt from the core item for operations
    another dialect (the reseller model) submitted."""
    if isinstance(wire, dict) and WIRE_KEY in wire:
        stored: dict[str, Any] = wire[WIRE_KEY]
        return stored
    out: dict[str, Any] = {}
    if isinstance(item, ClaimItem):
        out["deviceIdentifier"] = identifier_out(item.identifier)
        out["sectionType"] = item.section_type.value
        if item.customer_id is not None:
            out["customerId"] = str(item.customer_id)
        if item.metadata is not None:
            out["deviceMetadata"] = {"entries": item.metadata}
        return out
    if item.device_id is not None:
        out["deviceId"] = str(item.device_id)
    if item.identifier is not None:
        out["deviceIdentifier"] = identifier_out(item.identifier)
    if isinstance(item, UnclaimItem):
        out["sectionType"] = item.section_type.value
    else:
        out["deviceMetadata"] = {"entries": item.metadata}
    return out


def _failure(status: str, identifier: str, message: str) -> dict[str, str]:
    return {"status": _S + status, "errorIdentifier": identifier, "errorMessage": message}


def _result_out(
    item: ClaimItem | UnclaimItem | UpdateItem, wire: Any, result: ItemResult | None
) -> dict[str, str]:
    if isinstance(wire, dict) and wire.get(REFUSED):
        return _failure(
            "INVALID_SECTION_TYPE",
            "INVALID_SECTION_TYPE",
            "a request is processed in the sectionType of its first item; this item names another",
        )
    if result is None:  # only for a done operation whose item was never run: not expected
        return _failure("UNKNOWN_ERROR", "UNKNOWN_ERROR", "the item was not processed")
    if result.ok:
        return {"status": SUCCESS, "deviceId": str(result.device_id)}
    by_id_only = not isinstance(item, ClaimItem) and item.identifier is None
    if by_id_only and result.status in (ItemStatus.SECTION_NOT_YOURS, ItemStatus.NOT_FOUND):
        # A server-assigned deviceId that is not among the partner's claimed devices: answer as for
        # an id that does not exist, so another partner's device ids do not leak (as GET does).
        return _failure(
            "INVALID_DEVICE_IDENTIFIER", "INVALID_DEVICE", "no such device among your claimed devices"
        )
    message = result.message or result.status.value
    return {"status": _STATUS[result.status], "errorIdentifier": result.code or "", "errorMessage": message}


def operation_out(
    op: Operation,
    results: Sequence[tuple[ClaimItem | UnclaimItem | UpdateItem, Any, ItemResult | None]] | None,
) -> dict[str, Any]:
    """The Operation JSON; ``results`` (every item, in order) are read only once ``op.done``."""
    metadata = {
        "@type": METADATA_TYPE,
        "processingStatus": "BATCH_PROCESS_PROCESSED" if op.done else _PROCESSING[op.state],
        "progress": 100 if op.done else op.progress,
        "devicesCount": op.total,
    }
    response: dict[str, Any] = {"@type": RESPONSE_TYPE, "successCount": op.succeeded}
    if op.done and results is not None:
        key = _ITEM_KEY[op.kind]
        per_device = [
            {key: _request_of(item, wire), "result": _result_out(item, wire, result)}
            for item, wire, result in results
        ]
        response["successCount"] = sum(1 for entry in per_device if entry["result"]["status"] == SUCCESS)
        response["perDeviceStatus"] = per_device
    return {"name": operation_name(op.id), "done": op.done, "metadata": metadata, "response": response}
