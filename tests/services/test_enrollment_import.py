"""``EnrollmentService.import_batch`` (``enroll import``) on both engines: created, updated,
unchanged and failed per item; keys a row leaves out are kept; a dry run writes nothing."""

from __future__ import annotations

from provisiond.domain.audit import AuditFilter
from provisiond.domain.enrollments import (
    Attestation,
    AttestationType,
    Enrollment,
    EnrollmentKind,
    SymmetricKeyAttestation,
)
from provisiond.errors import InvalidInput
from provisiond.services.audit import AuditService
from provisiond.services.enrollments import EnrollmentService, ImportStatus, ItemRejected
from provisiond.store.db import Database

KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="


def sym(rid: str, keys: SymmetricKeyAttestation | None = None, **fields: object) -> Enrollment:
    return Enrollment(
        EnrollmentKind.INDIVIDUAL,
        rid,
        Attestation(AttestationType.SYMMETRIC_KEY, symmetric_key=keys),
        **fields,
    )


async def test_statuses_in_order_and_a_rerun_is_unchanged(db: Database) -> None:
    service = EnrollmentService(db)
    items = [sym("a"), ItemRejected("b", InvalidInput("bad row")), sym("c", device_id="dc")]
    first = await service.import_batch(items)
    assert [(r.id, r.status, r.reason) for r in first] == [
        ("a", ImportStatus.CREATED, None),
        ("b", ImportStatus.FAILED, "bad row"),
        ("c", ImportStatus.CREATED, None),
    ]
    keys = (await service.get(EnrollmentKind.INDIVIDUAL, "a")).attestation.symmetric_key
    again = await service.import_batch(items)
    assert [r.status for r in again] == [ImportStatus.UNCHANGED, ImportStatus.FAILED, ImportStatus.UNCHANGED]
    assert (await service.get(EnrollmentKind.INDIVIDUAL, "a")).attestation.symmetric_key == keys  # kept

    changed = await service.import_batch(
        [sym("a", provisioning_enabled=False), sym("c", SymmetricKeyAttestation(KEY, KEY))]
    )
    assert [r.status for r in changed] == [ImportStatus.UPDATED, ImportStatus.UPDATED]
    assert (
        await service.get(EnrollmentKind.INDIVIDUAL, "c")
    ).attestation.symmetric_key == SymmetricKeyAttestation(KEY, KEY)
    actions = [e.action for e in await AuditService(db).entries(AuditFilter(), 10)]
    assert actions == ["enrollment.update", "enrollment.disable", "enrollment.create", "enrollment.create"]


async def test_a_dry_run_reports_and_writes_nothing(db: Database) -> None:
    service = EnrollmentService(db)
    report = await service.import_batch([sym("a"), sym("b", iot_hubs=("nowhere.example",))], dry_run=True)
    assert [r.status for r in report] == [ImportStatus.CREATED, ImportStatus.FAILED]
    assert "nowhere.example" in (report[1].reason or "")
    assert (await service.page(EnrollmentKind.INDIVIDUAL, None, 10)).items == []
    assert await AuditService(db).entries(AuditFilter(), 10) == []
