"""How a device registration reads in the audit trail (``device.register``), and the event it
emits when it ends (``io.provisiond.dps.registration.assigned|failed|disabled``).

One entry per register call that authenticated, as the device: its outcome (assigned, disabled,
failed, or assigning while a custom-allocation webhook decides, whose decision is a second
entry), the hub, the attestation type, the transport and the source address. A call refused
before the device is known (a bad signature, an unknown id) changes nothing and is not recorded:
an anonymous client could otherwise fill the trail.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond import telemetry
from provisiond.domain.audit import Actor, ActorKind
from provisiond.domain.registrations import RegistrationOperation
from provisiond.services import audit, events

__all__ = ["record_registration"]


async def record_registration(conn: AsyncConnection, op: RegistrationOperation) -> None:
    """Record ``op``'s result, in the transaction that wrote it."""
    state = op.state
    context = op.context
    details: dict[str, str | None] = {
        "operationId": op.operation_id,
        "attestation": context.get("attestation") or (state.attestation_type if state else None),
        "enrollment": context.get("enrollment"),
        "hub": state.assigned_hub if state else None,
    }
    if state is not None and state.substatus:
        details["substatus"] = state.substatus
    if state is not None and state.error_message:
        details["error"] = state.error_message[:500]
    await audit.record(
        conn,
        "device.register",
        op.registration_id,
        state.status if state is not None else op.status.value,
        details=details,
        actor=Actor(ActorKind.DEVICE, op.registration_id),
        at=op.updated,
        # the address the device registered from, also when a webhook decides after a restart
        source=context.get("client_ip"),
    )
    if state is not None and state.status in _ENDED:
        data: dict[str, object] = {
            "registrationId": op.registration_id,
            "status": state.status,
            "assignedHub": state.assigned_hub,
            "deviceId": state.device_id,
            "attestation": details["attestation"],
            "enrollmentGroupId": state.enrollment_group_id,
        }
        if state.substatus:
            data["substatus"] = state.substatus
        if state.error_message:
            data["errorMessage"] = state.error_message[:500]
        transport = audit.current().transport
        seconds = (op.updated - op.created).total_seconds()
        via = transport.value if transport is not None else "unknown"
        telemetry.registration_ended(state.status, str(details["attestation"]), via, seconds)
        event = f"io.provisiond.dps.registration.{state.status}"
        await events.emit(conn, event, op.registration_id, None, data, at=op.updated)


_ENDED = frozenset({"assigned", "failed", "disabled"})
