"""Credential policy rows (issuing CA, sealed key, current CRL) and issued-certificate rows.

The issuing CA's private key is sealed at this edge like every other secret (store/keyring.py,
the row identity ``credential_policies/{key}`` as associated data), so no service handles
ciphertext and a rotation reseals it with the rest (store/secrets.py).

Row locks (PostgreSQL; SQLite's one writer is serialised already) keep the policy row and its
certificates consistent: a CRL re-sign takes ``FOR NO KEY UPDATE`` before it reads the revoked
serials (two revocations at once both reach the CRL), an issue takes ``FOR KEY SHARE`` (issues
never wait on each other or on a re-sign), and a delete takes ``FOR UPDATE`` before it counts the
live certificates (so no certificate can be issued between the count and the delete).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.credential_policies import CredentialPolicy, IssuedCertificate, policy_key
from provisiond.domain.issuing_ca import IssuingCa, chain_pem, load_key, private_key_pem
from provisiond.store.db import keyring_of
from provisiond.store.keyring import key_id_of
from provisiond.store.tables import credential_policies as p
from provisiond.store.tables import issued_certificates as c

__all__ = [
    "CaCache",
    "Crl",
    "crl_number",
    "delete_policy",
    "due_crls",
    "first_registration_id",
    "get_certificate",
    "get_crl",
    "get_policy",
    "get_upper_crls",
    "insert_certificate",
    "insert_policy",
    "list_certificates",
    "list_policies",
    "live_certificates",
    "load_ca",
    "lock_policy",
    "policy_exists",
    "policy_row",
    "revoke",
    "revoked_serials",
    "set_crl",
]

Crl = tuple[bytes, int, datetime]  # DER, CRL number, nextUpdate
# Opened CAs by policy key, with the sealed text they were opened from: opening an RSA key costs
# ~45 ms (its validation), too much inside every registration's write transaction. A rotation or
# a re-created policy changes the sealed text, which replaces the entry.
CaCache = dict[str, tuple[str, IssuingCa]]

_POLICY_COLUMNS = (
    p.c.name,
    p.c.validity_days,
    p.c.key_type,
    p.c.crl_url,
    p.c.chain_pem,
    p.c.created,
    p.c.crl_next_update,
)


def policy_row(key: str) -> str:
    """The associated data a policy's sealed CA key is bound to."""
    return f"credential_policies/{key}"


def _policy(row: Any) -> CredentialPolicy:
    return CredentialPolicy(*row)


async def insert_policy(
    conn: AsyncConnection,
    name: str,
    validity_days: int,
    key_type: str,
    crl_url: str | None,
    ca: IssuingCa,
    crl: Crl,
    now: datetime,
) -> bool:
    """Insert unless a policy of that name exists; report whether it was inserted."""
    key = policy_key(name)
    if await policy_exists(conn, name):
        return False
    # Rows a policy of this name left before deletes took its certificates along must not become
    # the new CA's (its CRL would list serials it never signed).
    await conn.execute(delete(c).where(c.c.policy_key == key))
    sealed = keyring_of(conn).seal(private_key_pem(ca.key), policy_row(key))
    der, number, next_update = crl
    await conn.execute(
        insert(p).values(
            key=key,
            name=name,
            validity_days=validity_days,
            key_type=key_type,
            crl_url=crl_url,
            chain_pem=chain_pem(ca.chain),
            sealed_key=sealed,
            sealed_with=key_id_of(sealed),
            created=now,
            crl=base64.b64encode(der).decode(),
            crl_number=number,
            crl_next_update=next_update,
            upper_crls="".join(_pem_crl(der) for der in ca.upper_crls) or None,
        )
    )
    return True


def _pem_crl(der: bytes) -> str:
    return x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM).decode()


async def get_upper_crls(conn: AsyncConnection, name: str) -> str:
    """The PEM CRLs of the CAs above the issuing CA ('' when none were made)."""
    value = (await conn.execute(select(p.c.upper_crls).where(p.c.key == policy_key(name)))).scalar()
    return value or ""


async def policy_exists(conn: AsyncConnection, name: str) -> bool:
    return (await conn.execute(select(p.c.key).where(p.c.key == policy_key(name)))).first() is not None


async def get_policy(conn: AsyncConnection, name: str) -> CredentialPolicy | None:
    row = (await conn.execute(select(*_POLICY_COLUMNS).where(p.c.key == policy_key(name)))).first()
    return _policy(row) if row else None


async def list_policies(conn: AsyncConnection) -> list[CredentialPolicy]:
    return [_policy(row) for row in await conn.execute(select(*_POLICY_COLUMNS).order_by(p.c.key))]


async def lock_policy(conn: AsyncConnection, name: str, *, for_delete: bool = False) -> bool:
    """Lock the policy row for the rest of the transaction (a re-sign, or ``for_delete``);
    ``False`` when there is no such policy."""
    stmt = select(p.c.key).where(p.c.key == policy_key(name))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(key_share=not for_delete)  # FOR NO KEY UPDATE / FOR UPDATE
    return (await conn.execute(stmt)).first() is not None


async def live_certificates(conn: AsyncConnection, name: str, now: datetime) -> int:
    """How many of the policy's certificates are neither revoked nor expired at ``now``."""
    stmt = select(func.count()).where(
        c.c.policy_key == policy_key(name), c.c.revoked.is_(None), c.c.not_after > now
    )
    return int((await conn.execute(stmt)).scalar_one())


async def delete_policy(conn: AsyncConnection, name: str) -> bool:
    """Delete the policy and the records of its certificates (a re-created name starts empty)."""
    key = policy_key(name)
    await conn.execute(delete(c).where(c.c.policy_key == key))
    return (await conn.execute(delete(p).where(p.c.key == key))).rowcount == 1


async def load_ca(
    conn: AsyncConnection, name: str, cache: CaCache | None = None, *, to_issue: bool = False
) -> tuple[CredentialPolicy, IssuingCa] | None:
    """The policy and its issuing CA with the key opened, to sign with; ``None`` if it is gone.

    ``to_issue`` holds the row (``FOR KEY SHARE``) until the transaction ends, so that a delete
    that counts the live certificates waits for the one being issued; ``cache`` keeps opened CAs.
    """
    stmt = select(*_POLICY_COLUMNS, p.c.key, p.c.sealed_key).where(p.c.key == policy_key(name))
    if to_issue and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=True, key_share=True)
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    policy = _policy(row[: len(_POLICY_COLUMNS)])
    cached = cache.get(row.key) if cache is not None else None
    if cached is not None and cached[0] == row.sealed_key:
        return policy, cached[1]
    pem = keyring_of(conn).open(row.sealed_key, policy_row(row.key))
    chain = tuple(x509.load_pem_x509_certificates(row.chain_pem.encode()))
    ca = IssuingCa(load_key(pem.encode()), chain)
    if cache is not None:
        cache[row.key] = (row.sealed_key, ca)
    return policy, ca


async def get_crl(conn: AsyncConnection, name: str) -> Crl | None:
    row = (
        await conn.execute(
            select(p.c.crl, p.c.crl_number, p.c.crl_next_update).where(p.c.key == policy_key(name))
        )
    ).first()
    return (base64.b64decode(row.crl), row.crl_number, row.crl_next_update) if row else None


async def crl_number(conn: AsyncConnection, name: str) -> int | None:
    """The number of the policy's current CRL (``None``: no such policy): what a cache of the
    served CRL compares before it reads the CRL itself."""
    stmt = select(p.c.crl_number).where(p.c.key == policy_key(name))
    value = (await conn.execute(stmt)).scalar()
    return int(value) if value is not None else None


async def set_crl(conn: AsyncConnection, name: str, crl: Crl, replaces: int) -> bool:
    """Store a newly signed CRL only over the one it was built to replace (number ``replaces``):
    two processes re-signing at once cannot put an older CRL over a newer one."""
    der, number, next_update = crl
    result = await conn.execute(
        update(p)
        .where(p.c.key == policy_key(name), p.c.crl_number == replaces)
        .values(crl=base64.b64encode(der).decode(), crl_number=number, crl_next_update=next_update)
    )
    return result.rowcount == 1


async def due_crls(conn: AsyncConnection, before: datetime) -> list[str]:
    """Names of the policies whose CRL's nextUpdate is earlier than ``before``."""
    return list(
        (await conn.execute(select(p.c.name).where(p.c.crl_next_update < before).order_by(p.c.key))).scalars()
    )


async def insert_certificate(conn: AsyncConnection, cert: IssuedCertificate, registration_key: str) -> None:
    await conn.execute(
        insert(c).values(
            serial=cert.serial,
            policy_key=policy_key(cert.policy),
            registration_key=registration_key,
            registration_id=cert.registration_id,
            sha256_thumbprint=cert.sha256_thumbprint,
            not_before=cert.not_before,
            not_after=cert.not_after,
            issued=cert.issued,
            operation_id=cert.operation_id,
            revoked=cert.revoked,
        )
    )


_CERT_COLUMNS = (
    c.c.serial,
    c.c.policy_key,
    c.c.registration_id,
    c.c.sha256_thumbprint,
    c.c.not_before,
    c.c.not_after,
    c.c.issued,
    c.c.operation_id,
    c.c.revoked,
)


async def first_registration_id(conn: AsyncConnection, registration_key: str) -> str | None:
    """The registration id, as spelt then, of the oldest certificate recorded for a registration."""
    stmt = (
        select(c.c.registration_id)
        .where(c.c.registration_key == registration_key)
        .order_by(c.c.issued, c.c.serial)
        .limit(1)
    )
    return (await conn.execute(stmt)).scalar()


async def get_certificate(conn: AsyncConnection, serial: str) -> IssuedCertificate | None:
    row = (await conn.execute(select(*_CERT_COLUMNS).where(c.c.serial == serial))).first()
    return IssuedCertificate(*row) if row else None


async def list_certificates(
    conn: AsyncConnection, registration_key: str | None = None
) -> list[IssuedCertificate]:
    """Issued certificates, oldest first; of one registration when ``registration_key`` is given."""
    stmt = select(*_CERT_COLUMNS)
    if registration_key is not None:
        stmt = stmt.where(c.c.registration_key == registration_key)
    return [IssuedCertificate(*row) for row in await conn.execute(stmt.order_by(c.c.issued, c.c.serial))]


async def revoke(
    conn: AsyncConnection, now: datetime, *, serials: Sequence[str] = (), registration_key: str | None = None
) -> list[tuple[str, str]]:
    """Mark not-yet-revoked certificates revoked; the (serial, policy key) of each one marked."""
    stmt = update(c).where(c.c.revoked.is_(None))
    if registration_key is not None:
        stmt = stmt.where(c.c.registration_key == registration_key)
    else:
        stmt = stmt.where(c.c.serial.in_(list(serials)))
    rows = await conn.execute(stmt.values(revoked=now).returning(c.c.serial, c.c.policy_key))
    return sorted((row.serial, row.policy_key) for row in rows)


async def revoked_serials(
    conn: AsyncConnection, name: str, expired_before: datetime
) -> list[tuple[int, datetime]]:
    """The revoked certificates of a policy for its next CRL: all but those that expired before
    ``expired_before`` (the thisUpdate of the CRL being replaced, which listed them after they
    expired: RFC 5280 section 3.3 lets the next one drop them, so the CRL does not grow forever)."""
    rows = await conn.execute(
        select(c.c.serial, c.c.revoked)
        .where(
            c.c.policy_key == policy_key(name),
            c.c.revoked.is_not(None),
            c.c.not_after >= expired_before,
        )
        .order_by(c.c.serial)
    )
    return [(int(row.serial, 16), row.revoked) for row in rows]
