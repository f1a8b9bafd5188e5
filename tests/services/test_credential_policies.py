"""Credential policies on both engines: sealed CA keys, revocation and CRLs, and crash safety."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from cryptography import x509
from sqlalchemy import select

from provisiond.domain.certificate_requests import check_csr
from provisiond.domain.enrollments import (
    Attestation,
    AttestationType,
    Enrollment,
    EnrollmentKind,
    SymmetricKeyAttestation,
)
from provisiond.domain.registration_results import EnrollmentMatch
from provisiond.domain.registrations import OperationStatus, RegistrationOperation
from provisiond.errors import AlreadyExists, InvalidInput, NotFound
from provisiond.services.credential_policies import CredentialPolicyService
from provisiond.services.issuance import CertificateIssuer
from provisiond.services.secrets import rotate
from provisiond.store import credential_policies as repo
from provisiond.store import enrollments
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


async def test_a_policy_with_valid_certificates_is_not_deleted(db: Database) -> None:
    """Deleting the CA while its leaves are valid left them valid with no CRL to list them."""
    clock = FakeClock()
    svc = service(db, clock)
    await svc.create("fleet")
    await issue_one(db, clock, "dev-1")
    with pytest.raises(InvalidInput, match=r"has 1 valid certificate.*dps certificate revoke"):
        await svc.delete("fleet")
    assert [p.name for p in await svc.all()] == ["fleet"]
    assert (await svc.crl("fleet")).number == 1


async def test_a_deleted_policy_issues_nothing_and_a_re_created_name_inherits_no_certificates(
    db: Database,
) -> None:
    clock = FakeClock()
    svc = service(db, clock)
    await svc.create("fleet")
    await issue_one(db, clock, "dev-1")
    await svc.revoke(registration_id="dev-1")
    await svc.delete("fleet")
    assert await svc.certificates() == []  # the records went with the CA
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
    with pytest.raises(NotFound):
        await svc.delete("fleet")
    await svc.create("fleet")
    assert await svc.certificates() == []
    with pytest.raises(NotFound):
        await svc.revoke(registration_id="dev-1")
    crl = x509.load_pem_x509_crl((await svc.crl("fleet")).pem.encode())
    assert list(crl) == []


async def test_expired_certificates_do_not_hold_a_policy_back(db: Database) -> None:
    clock = FakeClock()
    svc = service(db, clock)
    await svc.create("fleet", validity_days=7)
    await issue_one(db, clock, "dev-1")
    clock.advance(8 * 86400)
    await svc.delete("fleet")
    assert await svc.all() == []


async def test_revoking_a_certificate_whose_policy_is_gone_fails_loudly(db: Database) -> None:
    """Rows left by a delete before deletes took them along: revoking one publishes nothing, so
    it is refused (and nothing is marked), never reported as done."""
    clock = FakeClock()
    svc = service(db, clock)
    await svc.create("fleet")
    serial = await issue_one(db, clock, "dev-1")
    async with db.write() as conn:  # what a delete of the merged code left behind
        await conn.execute(credential_policies.delete())
    with pytest.raises(InvalidInput, match="which was deleted, so no CRL can list"):
        await svc.revoke(serial=serial)
    [cert] = await svc.certificates("dev-1")
    assert cert.revoked is None
    await svc.create("fleet")  # a re-created name does not take them over
    assert await svc.certificates() == []


async def test_the_issuer_signs_with_the_current_ca_after_a_rotation_and_a_re_creation(db: Database) -> None:
    """The issuer keeps opened CA keys; a resealed key or a new CA of the same name is reloaded."""
    clock = FakeClock()
    svc = service(db, clock)
    await svc.create("fleet")
    issuer = CertificateIssuer(PERIOD)

    async def issued_by(rid: str) -> x509.Name:
        enrollment = Enrollment(
            EnrollmentKind.INDIVIDUAL,
            rid,
            Attestation(AttestationType.SYMMETRIC_KEY),
            credential_policy="fleet",
        )
        op = RegistrationOperation(f"op-{rid}", rid, OperationStatus.ASSIGNING, clock(), clock())
        async with db.write() as conn:
            done = await issuer.issue(
                conn,
                op,
                EnrollmentMatch(enrollment, "symmetricKey"),
                check_csr(make_csr(rid).b64, rid),
                clock(),
            )
        assert done.certificate is not None
        leaf = x509.load_der_x509_certificate(done.certificate.chain[0])
        issuing = x509.load_der_x509_certificate(done.certificate.chain[1])
        leaf.verify_directly_issued_by(issuing)
        return issuing.subject

    first = await issued_by("dev-1")
    await rotate(db, grace=0)
    assert await issued_by("dev-2") == first
    await svc.revoke(registration_id="dev-1")
    await svc.revoke(registration_id="dev-2")
    await svc.delete("fleet")
    created = await svc.create("fleet")
    subject = await issued_by("dev-3")
    assert subject == x509.load_pem_x509_certificates(created.chain_pem.encode())[0].subject
    assert (await svc.certificates("dev-3"))[0].sha256_thumbprint  # recorded under the new CA


async def test_a_crl_drops_a_revoked_certificate_once_a_crl_listed_it_after_it_expired(db: Database) -> None:
    """RFC 5280: an entry may go once a CRL issued after the certificate's end listed it."""
    clock = FakeClock()
    svc = service(db, clock)
    await svc.create("fleet", validity_days=7)
    serial = await issue_one(db, clock, "dev-1")
    await svc.revoke(serial=serial)

    def listed(pem: str) -> bool:
        return (
            x509.load_pem_x509_crl(pem.encode()).get_revoked_certificate_by_serial_number(int(serial, 16))
            is not None
        )

    assert listed((await svc.crl("fleet")).pem)
    clock.advance(8 * 86400)  # past the certificate's end: the next CRL still lists it
    assert listed((await svc.crl("fleet")).pem)
    clock.advance(4 * 86400)  # the CRL before this one was issued after the end: dropped now
    assert not listed((await svc.crl("fleet")).pem)


async def test_the_served_crl_is_the_current_one_after_every_re_sign(db: Database) -> None:
    clock = FakeClock()
    svc = service(db, clock)
    await svc.create("fleet")
    first = await svc.crl_der("fleet")
    assert await svc.crl_der("FLEET") == first
    await svc.revoke(serial=await issue_one(db, clock, "dev-1"))
    second = x509.load_der_x509_crl(await svc.crl_der("fleet"))
    assert second.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    with pytest.raises(NotFound):
        await svc.crl_der("other")


async def test_one_policy_whose_key_does_not_open_does_not_stop_the_others_crls(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    svc = service(db, clock)
    await svc.create("broken")
    await svc.create("fleet")
    async with db.write() as conn:  # sealed for another row: no key opens it here
        other = (
            await conn.execute(
                select(credential_policies.c.sealed_key).where(credential_policies.c.key == "fleet")
            )
        ).scalar_one()
        await conn.execute(
            credential_policies.update().where(credential_policies.c.key == "broken").values(sealed_key=other)
        )
    clock.advance(PERIOD.total_seconds())
    assert await svc.refresh_due() == 1
    assert (await svc.crl("fleet")).number == 2
    assert "could not re-sign the CRL of credential policy broken" in caplog.text


async def test_concurrent_revocations_both_reach_the_crl(db: Database) -> None:
    """Two revocations at once both read CRL number N; the policy row is locked before the revoked
    serials are read, so the second waits and signs N+2 with both (on PostgreSQL the second once
    lost its update silently and its serial was missing until the next housekeeping)."""
    clock = FakeClock()
    svc = service(db, clock)
    await svc.create("fleet")
    for round_ in range(3):  # several rounds: one lucky interleaving must not hide the race
        first = await issue_one(db, clock, f"a-{round_}")
        second = await issue_one(db, clock, f"b-{round_}")
        await asyncio.gather(svc.revoke(serial=first), svc.revoke(serial=second))
        crl = x509.load_pem_x509_crl((await svc.crl("fleet")).pem.encode())
        listed = {r.serial_number for r in crl}
        assert {int(first, 16), int(second, 16)} <= listed
        assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2 * round_ + 3


async def test_revoke_names_the_devices_whose_enabled_enrollment_can_get_a_new_certificate(
    db: Database,
) -> None:
    """Revoking alone does not stop a device whose onboarding credential still works."""
    clock = FakeClock()
    svc = service(db, clock)
    await svc.create("fleet")
    key = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U="
    attestation = Attestation(AttestationType.SYMMETRIC_KEY, SymmetricKeyAttestation(key, key))
    async with db.write() as conn:
        for rid, enabled in (("dev-on", True), ("dev-off", False)):
            await enrollments.insert_enrollment(
                conn,
                Enrollment(
                    EnrollmentKind.INDIVIDUAL,
                    rid,
                    attestation,
                    credential_policy="fleet",
                    provisioning_enabled=enabled,
                ).stamped(clock()),
            )
    on, off = await issue_one(db, clock, "dev-on"), await issue_one(db, clock, "dev-off")
    gone = await issue_one(db, clock, "dev-unenrolled")
    revoked = [*await svc.revoke(serial=on), *await svc.revoke(serial=off), *await svc.revoke(serial=gone)]
    assert await svc.still_enrolled(revoked) == ["dev-on"]
