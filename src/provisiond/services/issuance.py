"""The hook where registration meets certificate issuance.

``RegistrationService`` calls ``checked`` once the device is authenticated (a bad CSR is refused
before anything is written) and ``issue`` inside the write transaction that records the
operation: the leaf is signed and its row written in that transaction, before the registration
can report ``assigned``, so a crash can never leave a certificate the records do not know (an
uncommitted one never left the process). An operation that stays ``assigning`` while another
system decides (custom allocation; hub connectors later) is issued for in that first
transaction too; the second transaction, which records ``assigned`` or ``failed``, calls
``settled`` and, once its result is the one recorded, ``revoke_failed``: a registration that
ends ``failed`` keeps no valid certificate.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.certificate_requests import CertificateRequest, check_csr
from provisiond.domain.credential_policies import (
    IssuanceOutcome,
    IssuedCertificate,
    IssuedChain,
    serial_text,
)
from provisiond.domain.enrollments import EnrollmentKind
from provisiond.domain.issuing_ca import CannotIssue, issue_leaf
from provisiond.domain.registration_ids import id_key
from provisiond.domain.registration_results import EnrollmentMatch
from provisiond.domain.registrations import OperationStatus, RegistrationOperation
from provisiond.services.credential_policies import resign_crl
from provisiond.store import credential_policies as repo

__all__ = ["CertificateIssuer", "ReadCsr"]

log = logging.getLogger(__name__)

ReadCsr = Callable[[], object]  # the ``csr`` of the device's body, ``None`` when it sent none


@dataclass(frozen=True, slots=True)
class CertificateIssuer:
    """Signs and records device certificates for registrations; ``crl_period`` is the CRL's
    ``nextUpdate`` window (``PROVISIOND_CRL_NEXT_UPDATE_DAYS``) used when a revocation re-signs it."""

    crl_period: timedelta = field(default_factory=lambda: timedelta(days=7))
    _cas: repo.CaCache = field(default_factory=dict, compare=False, repr=False)  # opened CA keys

    def checked(self, read_csr: ReadCsr | None, registration_id: str) -> CertificateRequest | None:
        """The device's CSR, checked (``CsrRejected``, a 400, when it breaks a rule)."""
        text = read_csr() if read_csr is not None else None
        return check_csr(text, registration_id) if text is not None else None

    async def issue(
        self,
        conn: AsyncConnection,
        op: RegistrationOperation,
        match: EnrollmentMatch,
        request: CertificateRequest | None,
        now: datetime,
    ) -> RegistrationOperation:
        """The operation with its certificate signed and recorded (in ``conn``'s transaction),
        or with why none was: an enrollment without a credential policy issues nothing.
        An operation already ``failed`` (or disabled) gets nothing."""
        if request is None or op.status is OperationStatus.FAILED:
            return op
        name = match.enrollment.credential_policy
        if name is None:
            return _outcome(op, IssuanceOutcome.NO_POLICY)
        loaded = await repo.load_ca(conn, name, self._cas, to_issue=True)
        if loaded is None:
            return _outcome(op, IssuanceOutcome.POLICY_DELETED)
        policy, ca = loaded
        request = replace(request, registration_id=await _common_name(conn, match, op.registration_id))
        try:
            leaf = issue_leaf(ca, request, policy.validity_days, policy.crl_url, now)
        except CannotIssue as exc:  # the device gets a 503 and may retry once the operator fixed it
            log.warning("credential policy %s cannot issue to %s: %s", policy.name, op.registration_id, exc)
            raise CannotIssue(f"credential policy {policy.name!r} cannot issue: {exc.message}") from None
        der = leaf.public_bytes(serialization.Encoding.DER)
        record = IssuedCertificate(
            serial=serial_text(leaf.serial_number),
            policy=policy.name,
            registration_id=request.registration_id,
            sha256_thumbprint=hashlib.sha256(der).hexdigest().upper(),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            issued=now,
            operation_id=op.operation_id,
        )
        await repo.insert_certificate(conn, record, id_key(op.registration_id))
        chain = (der, *(c.public_bytes(serialization.Encoding.DER) for c in ca.chain))
        issued = replace(op, certificate=IssuedChain(record.serial, chain))
        return _outcome(issued, IssuanceOutcome.ISSUED)

    def settled(self, done: RegistrationOperation) -> RegistrationOperation:
        """A pending operation's result with what its CSR got recorded on the state too."""
        return _outcome(done, IssuanceOutcome(done.issuance)) if done.issuance is not None else done

    async def revoke_failed(self, conn: AsyncConnection, done: RegistrationOperation, now: datetime) -> None:
        """Revoke the certificate of an operation recorded ``failed`` (and re-sign its CRL)."""
        if done.status is not OperationStatus.FAILED or done.certificate is None:
            return
        for serial, policy in await repo.revoke(conn, now, serials=[done.certificate.serial]):
            if not await resign_crl(conn, policy, now, self.crl_period):  # a delete waits for live ones
                log.error("certificate %s of a failed registration: its policy %s is gone", serial, policy)


async def _common_name(conn: AsyncConnection, match: EnrollmentMatch, registration_id: str) -> str:
    """The leaf's CN: one spelling per device, whatever case it registers with (ids compare
    case-insensitively, so "DEV-1" and "dev-1" are one device, and a broker that takes the CN as
    the username must see one name). The CSR's CN matched the request's id exactly; the leaf
    gets the id as enrolled, or for a group member the id of its first certificate."""
    if match.enrollment.kind is EnrollmentKind.INDIVIDUAL:
        return match.enrollment.id
    first = await repo.first_registration_id(conn, id_key(registration_id))
    return first if first is not None else registration_id


def _outcome(op: RegistrationOperation, outcome: IssuanceOutcome) -> RegistrationOperation:
    serial = op.certificate.serial if op.certificate is not None else None
    state = op.state and replace(op.state, issuance=outcome.value, issued_serial=serial)
    return replace(op, issuance=outcome.value, state=state)
