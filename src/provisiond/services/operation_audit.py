"""How claims read in the audit trail: per operation, with counts, never per device; and the
events they emit (``io.provisiond.claims.operation.completed``, ``….device.claimed|unclaimed``).

A durable operation (zero-touch, the reseller model, Sphere) is recorded twice: when it is
submitted (``operation.submit``, by its partner or tenant, with the number of items, in the
transaction that stores it) and when the worker finishes it (``operation.complete``, by the
system, with the succeeded and failed counts, in the transaction of its last batch). A
synchronous claim, unclaim or metadata update of one device is one entry (``device.claim``…).
The target of both operation entries is the operation's core id, the number in its
zero-touch name ``operations/…`` (a Sphere operation's public id is a detail).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.audit import SYSTEM, Outcome
from provisiond.domain.claims import ClaimItem, Item, ItemResult, Operation, OperationKind, OperationState
from provisiond.domain.device_identifiers import Vendor
from provisiond.services import audit, events

__all__ = ["record_completed", "record_item", "record_submitted"]

_SYNC_EVENTS = {
    OperationKind.CLAIM: "io.provisiond.claims.device.claimed",
    OperationKind.UNCLAIM: "io.provisiond.claims.device.unclaimed",
}
_SYNC_ACTIONS = {
    OperationKind.CLAIM: "device.claim",
    OperationKind.UNCLAIM: "device.unclaim",
    OperationKind.UPDATE_METADATA: "device.updateMetadata",
}


def _owner(op: Operation) -> str:
    return f"{op.owner.kind.value}:{op.owner_id}"


async def record_submitted(conn: AsyncConnection, op: Operation, public_id: str | None = None) -> None:
    details: dict[str, str | int | None] = {
        "kind": op.kind.value,
        "vendor": op.vendor.value if op.vendor else None,
        "items": op.total,
    }
    if public_id is not None:
        details["sphereOperationId"] = public_id
    await audit.record(
        conn, "operation.submit", str(op.id), Outcome.SUBMITTED, details=details, at=op.created
    )


async def record_completed(conn: AsyncConnection, op: Operation) -> None:
    """``op`` as it stands after its last batch (its final counts)."""
    outcome = Outcome.COMPLETE if op.state is OperationState.COMPLETE else Outcome.COMPLETE_WITH_ERRORS
    details = {
        "kind": op.kind.value,
        "owner": _owner(op),
        "items": op.total,
        "succeeded": op.succeeded,
        "failed": op.total - op.succeeded,
    }
    await audit.record(
        conn, "operation.complete", str(op.id), outcome, details=details, actor=SYSTEM, at=op.completed
    )
    data = {k: v for k, v in details.items() if k != "owner"} | {"operationId": str(op.id), "state": outcome}
    source = _source(op.owner.kind.value, op.owner_id)
    await events.emit(
        conn, "io.provisiond.claims.operation.completed", str(op.id), source, data, at=op.completed
    )


def _source(owner_kind: str, owner_id: object) -> str:
    """``/provisiond/partners/{id}`` or ``/provisiond/tenants/{id}``."""
    return f"/provisiond/{owner_kind}s/{owner_id}"


async def record_item(
    conn: AsyncConnection,
    kind: OperationKind,
    vendor: Vendor,
    item: Item,
    result: ItemResult,
    partner_id: int,
) -> None:
    """A synchronous call on one device (no operation) by partner ``partner_id``: one entry,
    whatever its result, and an event when a claim or unclaim succeeded."""
    details: dict[str, str | None] = {
        "vendor": vendor.value,
        "status": result.status.value,
        "code": result.code,
    }
    if isinstance(item, ClaimItem) and item.customer_id is not None:
        details["customer"] = str(item.customer_id)
    target = str(result.device_id) if result.device_id is not None else _identifier(item)
    outcome = Outcome.SUCCESS if result.ok else Outcome.FAILURE
    await audit.record(conn, _SYNC_ACTIONS[kind], target, outcome, details=details)
    event = _SYNC_EVENTS.get(kind)
    if event is not None and result.ok:
        data = {"deviceId": target, **{k: v for k, v in details.items() if v is not None}}
        await events.emit(conn, event, target, _source("partner", partner_id), data)


def _identifier(item: Item) -> str:
    identifier = item.identifier
    if identifier is None:
        return "unknown"
    return identifier.imei or identifier.meid or identifier.serial_number or "unknown"
