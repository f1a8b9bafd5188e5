"""Operation items and results to and from the JSON kept in ``operation_items.request`` and
``operation_results.result``.

Like ``codec.py`` for enrollments, this is the store's own format (snake_case), not a wire format,
and the only place that spells it: the services that submit and read operations and the worker
that runs them all go through these functions, so one change of the format is one change here.

- A zero-touch or reseller-model item is ``{"core": …, "wire": …}``: the core's fields, and the
  dialect's own request item (kept so that it can render per-item errors in its vocabulary).
- An Azure Sphere item is ``{"device_id": …}`` (the upper-case device id).
- A result is ``ItemResult.as_json()``.
"""

from __future__ import annotations

from typing import Any

from provisiond.domain.claims import (
    ClaimItem,
    Item,
    ItemResult,
    OperationKind,
    SectionType,
    UnclaimItem,
    UpdateItem,
)
from provisiond.domain.device_identifiers import DeviceIdentifier
from provisiond.jsontext import dumps, loads

__all__ = [
    "dump_claim_item",
    "dump_result",
    "dump_sphere_item",
    "load_claim_item",
    "load_result",
    "load_sphere_item",
]


def _dump_identifier(d: DeviceIdentifier | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "imei": d.imei,
        "meid": d.meid,
        "serial": d.serial_number,
        "manufacturer": d.manufacturer,
        "model": d.model,
    }


def _load_identifier(doc: dict[str, Any] | None) -> DeviceIdentifier | None:
    if doc is None:
        return None
    return DeviceIdentifier(doc["imei"], doc["meid"], doc["serial"], doc["manufacturer"], doc["model"])


def dump_claim_item(item: Item, wire: Any) -> str:
    """A claim, unclaim or metadata item as stored with its operation, beside its wire form."""
    if isinstance(item, ClaimItem):
        core: dict[str, Any] = {
            "identifier": _dump_identifier(item.identifier),
            "customer_id": item.customer_id,
            "section": item.section_type.value,
            "order_number": item.order_number,
            "metadata": item.metadata,
            "vendor_params": item.vendor_params,
        }
    elif isinstance(item, UnclaimItem):
        core = {
            "device_id": item.device_id,
            "identifier": _dump_identifier(item.identifier),
            "section": item.section_type.value,
        }
    else:
        core = {
            "device_id": item.device_id,
            "identifier": _dump_identifier(item.identifier),
            "metadata": item.metadata,
        }
    return dumps({"core": core, "wire": wire})


def load_claim_item(kind: OperationKind, text: str) -> tuple[Item, Any]:
    """An item of an operation of ``kind`` and its wire form (``dump_claim_item`` reversed)."""
    doc = loads(text)
    core = doc["core"]
    item: Item
    if kind is OperationKind.CLAIM:
        identifier = _load_identifier(core["identifier"])
        assert identifier is not None  # a claim always names its device by identifier
        item = ClaimItem(
            identifier,
            core["customer_id"],
            SectionType(core["section"]),
            core["order_number"],
            core["metadata"],
            core["vendor_params"],
        )
    elif kind is OperationKind.UNCLAIM:
        item = UnclaimItem(
            core["device_id"], _load_identifier(core["identifier"]), SectionType(core["section"])
        )
    else:
        item = UpdateItem(core["device_id"], _load_identifier(core["identifier"]), core["metadata"])
    return item, doc["wire"]


def dump_sphere_item(device_id: str) -> str:
    """An Azure Sphere item (one device id) as stored with its operation."""
    return dumps({"device_id": device_id})


def load_sphere_item(text: str) -> str:
    """The device id of a stored Azure Sphere item."""
    device_id: str = loads(text)["device_id"]
    return device_id


def dump_result(result: ItemResult) -> str:
    """One item's result as stored in ``operation_results``."""
    return dumps(result.as_json())


def load_result(text: str) -> ItemResult:
    return ItemResult.from_json(loads(text))
