"""Credential policies and the certificates they issued: the operator's use cases, and CRLs.

A policy's CRL exists from the policy's creation (empty), and is re-signed in the transaction of
every revocation, so a revocation and the CRL that shows it commit together. The operation worker
calls ``refresh_due`` (``services/worker.py`` housekeeping) so that a CRL is re-signed once half of
its ``nextUpdate`` window has passed: a broker that reloads it never holds one past nextUpdate
while a server or worker runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.credential_policies import (
    DEFAULT_VALIDITY_DAYS,
    CredentialPolicy,
    IssuedCertificate,
    check_policy_name,
    check_validity_days,
    policy_key,
    serial_text,
)
from provisiond.domain.enrollments import EnrollmentKind
from provisiond.domain.issuing_ca import (
    IssuingCa,
    KeyType,
    build_crl,
    crl_distribution_points,
    generate_ca,
    import_ca,
    key_type_of,
)
from provisiond.domain.registration_ids import id_key
from provisiond.errors import AlreadyExists, InvalidInput, NotFound, ProvisiondError
from provisiond.services import audit
from provisiond.store import credential_policies as repo
from provisiond.store import enrollments, registrations
from provisiond.store.db import Database

__all__ = ["CredentialPolicyService", "CrlFile", "CrlNotStored", "resign_crl"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CrlFile:
    """A policy's current CRL as PEM text (what Mosquitto and nginx read), with its number;
    ``pem`` is followed by the CRLs of the CAs above the issuing CA, when the policy has them
    (nginx checks every CA of a chain)."""

    pem: str
    number: int
    next_update: datetime


class CrlNotStored(RuntimeError):
    """A re-signed CRL did not replace the one it was built on, though the policy row was locked:
    a bug, never a race to ignore (the revocation it carries would be missing from the CRL)."""


async def resign_crl(conn: AsyncConnection, name: str, now: datetime, period: timedelta) -> bool:
    """Sign the policy's CRL anew (every revoked serial, the next number), inside the caller's
    transaction; ``False`` when the policy is gone.

    The policy row is locked first, so a concurrent re-sign (another revocation, the worker)
    waits for this one and then reads every serial revoked so far, this one's included.
    """
    if not await repo.lock_policy(conn, name):
        return False
    loaded = await repo.load_ca(conn, name)
    current = await repo.get_crl(conn, name)
    if loaded is None or current is None:
        return False
    _, ca = loaded
    now = now.replace(microsecond=0)  # X.509 times have whole seconds: store what the CRL says
    number = current[1] + 1
    previous = x509.load_der_x509_crl(current[0]).last_update_utc
    crl = build_crl(ca, await repo.revoked_serials(conn, name, previous), number, now, now + period)
    der = crl.public_bytes(serialization.Encoding.DER)
    if not await repo.set_crl(conn, name, (der, number, now + period), replaces=current[1]):
        raise CrlNotStored(f"CRL {number} of {name} did not replace CRL {current[1]} under its row lock")
    return True


def _empty_crl(ca: IssuingCa, now: datetime, period: timedelta) -> repo.Crl:
    now = now.replace(microsecond=0)
    crl = build_crl(ca, (), 1, now, now + period)
    return crl.public_bytes(serialization.Encoding.DER), 1, now + period


@dataclass
class CredentialPolicyService:
    """Create, list and delete policies; read their chain and CRL; list and revoke certificates."""

    db: Database
    clock: Clock = utc_now
    crl_period: timedelta = field(default_factory=lambda: timedelta(days=7))
    # The served CRL by policy key, with its number: the unauthenticated route reads the number
    # only (one small column) and the CRL itself when it changed.
    _served: dict[str, tuple[int, bytes]] = field(default_factory=dict, init=False, repr=False)

    async def create(
        self,
        name: str,
        *,
        validity_days: int = DEFAULT_VALIDITY_DAYS,
        key_type: KeyType = KeyType.EC_P384,
        ca_pem: bytes | None = None,
        ca_key_pem: bytes | None = None,
        crl_url: str | None = None,
    ) -> CredentialPolicy:
        """A new policy with a generated root and issuing CA, or the operator's issuing CA."""
        check_policy_name(name)
        check_validity_days(validity_days)
        if crl_url is not None and not crl_url.lower().startswith(("http://", "https://")):
            raise InvalidInput(f"--crl-url must be an http:// or https:// URL, not {crl_url!r}")
        if crl_url is not None:
            crl_distribution_points(crl_url)  # what every leaf will carry: refused now, not at issue
        now = self.clock()
        if (ca_pem is None) != (ca_key_pem is None):
            raise InvalidInput("--ca-cert and --ca-key go together")
        if ca_pem is not None and ca_key_pem is not None:
            ca = import_ca(ca_pem, ca_key_pem, now, validity_days)
            key_type = key_type_of(ca.key)
        else:
            ca = generate_ca(name, key_type, now)  # before the transaction: RSA keys take time
        async with self.db.write() as conn:
            created = await repo.insert_policy(
                conn,
                name,
                validity_days,
                key_type.value,
                crl_url,
                ca,
                _empty_crl(ca, now, self.crl_period),
                now,
            )
            policy = await repo.get_policy(conn, name)
            if created and policy is not None:
                details = {
                    "validityDays": validity_days,
                    "keyType": key_type.value,
                    "imported": ca_pem is not None,
                }
                await audit.record(conn, "credentialPolicy.create", name, details=details)
        if not created or policy is None:
            raise AlreadyExists(f"credential policy {name!r} exists")
        return policy

    async def all(self) -> list[CredentialPolicy]:
        async with self.db.read() as conn:
            return await repo.list_policies(conn)

    async def get(self, name: str) -> CredentialPolicy:
        async with self.db.read() as conn:
            policy = await repo.get_policy(conn, name)
        if policy is None:
            raise NotFound(f"no credential policy {name!r}")
        return policy

    async def delete(self, name: str) -> None:
        """Delete the policy, its CA key, its CRL and the records of its certificates, once none
        of them is valid any more (each revoked or expired): deleting the CA earlier would leave
        valid certificates that no CRL can ever list. Enrollments naming it issue nothing from
        then on (their registrations record why), and a policy created later with the same name
        starts with no certificates."""
        now = self.clock()
        async with self.db.write() as conn:
            if not await repo.lock_policy(conn, name, for_delete=True):
                raise NotFound(f"no credential policy {name!r}")
            live = await repo.live_certificates(conn, name, now)
            if live:
                raise InvalidInput(
                    f"credential policy {name!r} has {live} valid certificate(s): revoke them first "
                    "(provisiond dps certificate revoke --registration ID or --serial S; "
                    "dps certificate list shows them), then delete it"
                )
            await repo.delete_policy(conn, name)
            await audit.record(conn, "credentialPolicy.delete", name)

    async def crl(self, name: str) -> CrlFile:
        """The policy's current CRL, re-signed first if it is due (so the file is never stale)."""
        await self.refresh_due(only=name)
        async with self.db.read() as conn:
            current = await repo.get_crl(conn, name)
            upper = await repo.get_upper_crls(conn, name)
        if current is None:
            raise NotFound(f"no credential policy {name!r}")
        return _crl_file(current, upper)

    async def crl_der(self, name: str) -> bytes:
        """The current CRL as DER, as served at ``/crl/{name}.crl`` (the worker keeps it fresh):
        the stored bytes, kept per CRL number, so a GET costs one small read."""
        key = policy_key(name)
        async with self.db.read() as conn:
            number = await repo.crl_number(conn, name)
            if number is None:
                raise NotFound(f"no credential policy {name!r}")
            served = self._served.get(key)
            if served is not None and served[0] == number:
                return served[1]
            current = await repo.get_crl(conn, name)
        if current is None:
            raise NotFound(f"no credential policy {name!r}")
        self._served[key] = (current[1], current[0])
        return current[0]

    async def certificates(self, registration_id: str | None = None) -> list[IssuedCertificate]:
        async with self.db.read() as conn:
            key = id_key(registration_id) if registration_id is not None else None
            return await repo.list_certificates(conn, key)

    async def revoke(self, *, registration_id: str | None = None, serial: str | None = None) -> list[str]:
        """Revoke one certificate, or every certificate a registration ever got; the serials
        revoked now (already revoked ones are not repeated). Each CRL concerned is re-signed in
        the same transaction."""
        now = self.clock()
        async with self.db.write() as conn:
            if registration_id is not None:
                key = id_key(registration_id)
                known = await repo.list_certificates(conn, key)
                revoked = await repo.revoke(conn, now, registration_key=key)
                what = f"registration {registration_id!r}"
            else:
                wanted = serial_text(serial or "")
                found = await repo.get_certificate(conn, wanted)
                known = [found] if found is not None else []
                revoked = await repo.revoke(conn, now, serials=[wanted])
                what = f"serial {serial}"
            if not known:
                raise NotFound(f"no certificate was issued to {what}")
            for policy in sorted({p for _, p in revoked}):
                if not await resign_crl(conn, policy, now, self.crl_period):
                    serials = ", ".join(s for s, p in revoked if p == policy)
                    raise InvalidInput(
                        f"{serials}: issued by credential policy {policy!r}, which was deleted, so no "
                        "CRL can list them; remove its issuing chain from every broker that trusts it"
                    )
            target = registration_id if registration_id is not None else serial_text(serial or "")
            details = {
                "by": "registration" if registration_id is not None else "serial",
                "revoked": len(revoked),
            }
            await audit.record(conn, "certificate.revoke", target, details=details)
        return [s for s, _ in revoked]

    async def still_enrolled(self, serials: list[str]) -> list[str]:
        """The registration ids of these certificates whose enrollment (or group) is enabled: such
        a device can register again with its onboarding credential and get a new certificate, so
        revoking alone does not stop it (``certificate revoke`` warns about them)."""
        async with self.db.read() as conn:
            certs = [await repo.get_certificate(conn, s) for s in serials]
            ids = sorted({c.registration_id for c in certs if c is not None})
            return [rid for rid in ids if await _may_register(conn, rid)]

    async def refresh_due(self, only: str | None = None) -> int:
        """Re-sign every CRL that has less than half its window left; how many were re-signed."""
        now = self.clock()
        async with self.db.read() as conn:
            due = await repo.due_crls(conn, now + self.crl_period / 2)
        done = 0
        for name in due:
            if only is not None and name.lower() != only.lower():
                continue
            try:
                done += await self._refresh(name, now)
            except (ProvisiondError, ValueError):  # one policy's broken key must not stop the others
                log.exception("could not re-sign the CRL of credential policy %s; the others go on", name)
        if done:
            log.info("re-signed %d CRL(s) before their nextUpdate", done)
        return done

    async def _refresh(self, name: str, now: datetime) -> bool:
        async with self.db.write() as conn:
            if not await repo.lock_policy(conn, name):
                return False  # deleted meanwhile
            fresh = await repo.get_crl(conn, name)
            if fresh is None or fresh[2] >= now + self.crl_period / 2:  # re-signed meanwhile
                return False
            return await resign_crl(conn, name, now, self.crl_period)


async def _may_register(conn: AsyncConnection, registration_id: str) -> bool:
    key = id_key(registration_id)
    individual = await enrollments.get_enrollment(conn, EnrollmentKind.INDIVIDUAL, key)
    if individual is not None:
        return individual.provisioning_enabled
    state = await registrations.get_state(conn, key)
    if state is None or state.enrollment_group_id is None:
        return False
    group = await enrollments.get_enrollment(conn, EnrollmentKind.GROUP, id_key(state.enrollment_group_id))
    return group is not None and group.provisioning_enabled


def _crl_file(current: repo.Crl, upper: str) -> CrlFile:
    der, number, next_update = current
    pem = x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM).decode()
    return CrlFile(pem + upper, number, next_update)
