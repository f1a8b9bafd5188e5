"""How an enrollment write reads in the audit trail (created, updated, enabled or disabled), and
the event it emits (``io.provisiond.dps.enrollment[group].created|updated|deleted``), both in the
write's transaction.

Kept beside ``services/enrollments.py`` rather than in it so each write path there gains one
line. Enabling or disabling is an update of ``provisioningStatus`` on the wire; operators ask
"who disabled this device", so a write that flips it is recorded as ``enable``/``disable``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.audit import Outcome
from provisiond.domain.enrollments import Enrollment, EnrollmentKind
from provisiond.services import audit, events

__all__ = ["announce", "record_delete", "record_write", "refused_change", "resource", "write_change"]

_EVENT_VERBS = {
    "create": "created",
    "update": "updated",
    "enable": "updated",
    "disable": "updated",
    "delete": "deleted",
}


def resource(kind: EnrollmentKind) -> str:
    """The action prefix of a kind: ``enrollment`` (individual) or ``enrollmentGroup``."""
    return "enrollment" if kind is EnrollmentKind.INDIVIDUAL else "enrollmentGroup"


def _status(record: Enrollment) -> str:
    return "enabled" if record.provisioning_enabled else "disabled"


def write_change(prior: Enrollment | None, written: Enrollment, bulk: str | None = None) -> audit.Change:
    """A create or replace of ``written`` (``prior``: the record it replaced, if any)."""
    if prior is None:
        verb = "create"
    elif prior.provisioning_enabled != written.provisioning_enabled:
        verb = "enable" if written.provisioning_enabled else "disable"
    else:
        verb = "update"
    details: dict[str, str | None] = {
        "attestation": written.attestation.type.value,
        "provisioningStatus": _status(written),
    }
    if bulk is not None:
        details["bulk"] = bulk
    return audit.Change(f"{resource(written.kind)}.{verb}", written.id, details=details, at=written.updated)


def refused_change(
    kind: EnrollmentKind, verb: str, enrollment_id: str, reason: str, bulk: str
) -> audit.Change:
    """A bulk item refused while the rest of its batch was written."""
    details = {"bulk": bulk, "reason": reason[:500]}
    return audit.Change(f"{resource(kind)}.{verb}", enrollment_id, Outcome.FAILURE, details)


async def record_write(
    conn: AsyncConnection, prior: Enrollment | None, written: Enrollment, bulk: str | None = None
) -> None:
    """Record a create or replace of ``written`` in ``conn``'s transaction."""
    change = write_change(prior, written, bulk)
    await audit.record_all(conn, [change])
    await announce(conn, [change])


async def record_delete(
    conn: AsyncConnection, kind: EnrollmentKind, enrollment_id: str, bulk: str | None = None
) -> None:
    details = {"bulk": bulk} if bulk is not None else None
    await audit.record(conn, f"{resource(kind)}.delete", enrollment_id, details=details)
    await announce(conn, [audit.Change(f"{resource(kind)}.delete", enrollment_id)])


async def announce(conn: AsyncConnection, changes: list[audit.Change]) -> None:
    """Emit an event for each successful change (refused bulk items change nothing)."""
    subs = await events.subscribers(conn)
    if not subs:
        return
    source = await events.dps_source(conn)
    for change in changes:
        if change.outcome != Outcome.SUCCESS:
            continue
        prefix, verb = change.action.split(".")
        kind = "enrollment" if prefix == "enrollment" else "enrollmentgroup"
        id_name = "registrationId" if kind == "enrollment" else "enrollmentGroupId"
        data: dict[str, object] = {id_name: change.target, **(change.details or {})}
        data.pop("bulk", None)
        event = f"io.provisiond.dps.{kind}.{_EVENT_VERBS[verb]}"
        await events.emit(conn, event, change.target, source, data, at=change.at, subscribers=subs)
