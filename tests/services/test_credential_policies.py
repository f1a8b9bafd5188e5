"""Credential policies on both engines: sealed CA keys, revocation and CRLs, and crash safety."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from sqlalchemy import select

from provisiond.domain.certificate_requests import check_csr
from provisiond.domain.enrollments import Attestation, AttestationType, Enrollment, EnrollmentKind
from provisiond.domain.registration_results import EnrollmentMatch
from provisiond.domain.registrations import OperationStatus, RegistrationOperation
from provisiond.errors import AlreadyExists, InvalidInput, NotFound
from provisiond.services.credential_policies import CredentialPolicyService
from provisiond.services.issuance import CertificateIssuer
from provisiond.services.secrets import rotate
from provisiond.store import credential_policies as repo
from provisiond.store.db import Database
from provisiond.store.tables import credential_policies
from tests.support.clock import FakeClock
from tests.support.issuance import make_csr

PERIOD = timedelta(days=7)


def service(db: Database, clock: FakeClock) -> CredentialPolicyService:
    return CredentialPolicyService(db, clock, PERIOD)


async def issue_one(db: Database, clock: FakeClock, rid: str, policy: str = "fleet") -> str:
    """Issue a certificate the way registration does (inside a write transaction); its serial."""
    enrollment = Enrollment(
        EnrollmentKind.INDIVIDUAL, rid, Attestation(AttestationType.SYMMETRIC_KEY), credential_policy=policy
    )
    op = RegistrationOperation(
        f"op-{rid}-{clock().timestamp()}", rid, OperationStatus.ASSIGNING, clock(), clock()
    )
    async with db.write() as conn:
        done = await CertificateIssuer(PERIOD).issue(
            conn, op, EnrollmentMatch(enrollment, "symmetricKey"), check_csr(make_csr(rid).b64, rid), clock()
        )
    assert done.certificate is not None
    return done.certificate.serial


async def test_a_policy_is_created_once_with_its_ca_key_sealed(db: Database) -> None:
    clock = FakeClock()
    created = await service(db, clock).create("fleet")
    assert created.key_type == "ec-p384" and created.validity_days == 30
    assert created.chain_pem.count("BEGIN CERTIFICATE") == 2
    async with db.read() as conn:
        sealed = (await conn.execute(select(credential_policies.c.sealed_key))).scalar_one()
    assert sealed.startswith("v1.") and "PRIVATE KEY" not in sealed
    with pytest.raises(AlreadyExists):
        await service(db, clock).create("FLEET")  # names compare case-insensitively


@pytest.mark.parametrize(
    ("name", "days"), [("ab", 30), ("a" * 51, 30), ("bad_name", 30), ("fleet", 6), ("fleet", 91)]
)
async def test_names_and_validity_outside_the_rules_are_refused(db: Database, name: str, days: int) -> None:
    with pytest.raises(InvalidInput):
        await service(db, FakeClock()).create(name, validity_days=days)


async def test_a_crl_url_no_certificate_can_carry_is_refused_at_create(db: Database) -> None:
    """A non-ASCII --crl-url once passed create and failed every later issue."""
    with pytest.raises(InvalidInput, match="not an ASCII URI"):
        await service(db, FakeClock()).create("fleet", crl_url="https://crl.exämple.com/fleet.crl")
    assert await service(db, FakeClock()).all() == []


async def test_secrets_rotate_reseals_the_ca_key_and_it_still_signs(db: Database) -> None:
    clock = FakeClock()
    await service(db, clock).create("fleet")
    result = await rotate(db, grace=0)
    async with db.read() as conn:
        sealed_with = (await conn.execute(select(credential_policies.c.sealed_with))).scalar_one()
    assert sealed_with == result.key_id and result.resealed >= 1
    await issue_one(db, clock, "dev-1")


async def test_a_crl_exists_from_creation_and_is_re_signed_by_every_revocation(db: Database) -> None:
    clock = FakeClock()
    svc = service(db, clock)
    await svc.create("fleet")
    empty = await svc.crl("fleet")
    assert empty.number == 1 and list(x509.load_pem_x509_crl(empty.pem.encode())) == []
    first, second = await issue_one(db, clock, "dev-1"), await issue_one(db, clock, "dev-1")
    other = await issue_one(db, clock, "dev-2")
    clock.advance(60)
    assert await svc.revoke(registration_id="DEV-1") == sorted([first, second])  # ids are case-insensitive
    crl = x509.load_pem_x509_crl((await svc.crl("fleet")).pem.encode())
    assert {r.serial_number for r in crl} == {int(first, 16), int(second, 16)}
    assert await svc.revoke(registration_id="dev-1") == []  # nothing new to revoke
    assert await svc.revoke(serial=":".join(other[i : i + 2] for i in range(0, len(other), 2)).lower()) == [
        other
    ]
    assert (await svc.crl("fleet")).number == 3
    with pytest.raises(NotFound):
        await svc.revoke(serial="ABCDEF")


async def test_the_worker_housekeeping_re_signs_a_crl_once_half_its_window_passed(db: Database) -> None:
    clock = FakeClock()
    svc = service(db, clock)
    await svc.create("fleet")
    clock.advance(PERIOD.total_seconds() / 2 - 60)
    assert await svc.refresh_due() == 0
    clock.advance(120)
    assert await svc.refresh_due() == 1
    assert await svc.refresh_due() == 0
    current = await svc.crl("fleet")
    assert current.number == 2 and current.next_update == (clock() + PERIOD).replace(microsecond=0)


async def test_a_certificate_signed_in_a_transaction_that_rolls_back_is_not_recorded(db: Database) -> None:
    """A crash before commit: the certificate never left the process, and no row claims it."""
    clock = FakeClock()
    await service(db, clock).create("fleet")
    enrollment = Enrollment(
        EnrollmentKind.INDIVIDUAL,
        "dev-1",
        Attestation(AttestationType.SYMMETRIC_KEY),
        credential_policy="fleet",
    )
    op = RegistrationOperation("op-1", "dev-1", OperationStatus.ASSIGNING, clock(), clock())
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await CertificateIssuer().issue(
                conn,
                op,
                EnrollmentMatch(enrollment, "symmetricKey"),
                check_csr(make_csr("dev-1").b64, "dev-1"),
                clock(),
            )
            raise RuntimeError("crash before commit")
    assert await service(db, clock).certificates() == []


async def test_a_deleted_policy_issues_nothing_and_its_certificates_stay_listed(db: Database) -> None:
    clock = FakeClock()
    svc = service(db, clock)
    await svc.create("fleet")
    await issue_one(db, clock, "dev-1")
    await svc.delete("fleet")
    enrollment = Enrollment(
        EnrollmentKind.INDIVIDUAL,
        "dev-1",
        Attestation(AttestationType.SYMMETRIC_KEY),
        credential_policy="fleet",
    )
    op = RegistrationOperation("op-2", "dev-1", OperationStatus.ASSIGNING, clock(), clock())
    async with db.write() as conn:
        done = await CertificateIssuer().issue(
            conn,
            op,
            EnrollmentMatch(enrollment, "symmetricKey"),
            check_csr(make_csr("dev-1").b64, "dev-1"),
            clock(),
        )
        assert await repo.load_ca(conn, "fleet") is None
    assert done.certificate is None and done.issuance == "credentialPolicyDeleted"
    assert len(await svc.certificates("dev-1")) == 1
    with pytest.raises(NotFound):
        await svc.delete("fleet")
