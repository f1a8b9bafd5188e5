"""Rows that hold sealed secrets, seen as such: the outer-key check and resealing for a rotation.

Every table with a sealed column records the id of the key that sealed it (``sealed_with``), so a
rotation finds what is left to reseal with an indexed-free but narrow query, in bounded batches,
and each batch is a conditional write: a row that a server rewrote meanwhile is left for the next
batch, never overwritten with stale content.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, Table, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.jsontext import dumps, loads
from provisiond.store.codec import enrollment_row
from provisiond.store.credential_policies import policy_row as ca_row
from provisiond.store.db import keyring_of
from provisiond.store.engine_specific import insert_for
from provisiond.store.events import subscription_row
from provisiond.store.hub_connections import hub_row
from provisiond.store.instance import policy_row
from provisiond.store.keyring import Keyring, key_id_of
from provisiond.store.tables import (
    credential_policies,
    dps_hubs,
    dps_policies,
    enrollments,
    event_subscriptions,
    outer_key_check,
    tpm_keys,
)
from provisiond.store.tpm import tpm_row

__all__ = ["CHECK_ROW", "ensure_check", "has_sealed_secrets", "reseal_batch"]

CHECK_ROW = "outer_key_check/1"


async def has_sealed_secrets(conn: AsyncConnection) -> str | None:
    """The id of a key this database's secrets are sealed with, if it holds any sealed secret."""
    exists = await conn.run_sync(lambda sync: inspect(sync).has_table(outer_key_check.name))
    if not exists:
        return None  # a database from before secrets were sealed, or a new one
    columns = [outer_key_check.c.sealed_with, dps_policies.c.sealed_with, enrollments.c.sealed_with]
    if await conn.run_sync(lambda sync: inspect(sync).has_table(credential_policies.name)):
        columns.append(credential_policies.c.sealed_with)  # from migration 0009 on
    for column in columns:
        found = (await conn.execute(select(column).where(column.is_not(None)).limit(1))).scalar()
        if found is not None:
            return str(found)
    return None


async def ensure_check(conn: AsyncConnection) -> None:
    """Prove the connection's keyring opens this database's secrets (``SecretUnreadable`` if not).

    The outer-key check is opened; a database without one (emptied by hand, say) gets one, once
    a sealed secret it holds, if any, has been opened with the same keyring.
    """
    keyring = keyring_of(conn)
    row = (await conn.execute(select(outer_key_check.c.sealed))).first()
    if row is not None:
        keyring.open(row.sealed, CHECK_ROW)
        return
    policy = (await conn.execute(select(dps_policies.c.name, dps_policies.c.sealed_keys).limit(1))).first()
    if policy is not None:
        keyring.open(policy.sealed_keys, policy_row(policy.name))
    sealed = keyring.seal("provisiond", CHECK_ROW)
    stmt = insert_for(conn, outer_key_check).values(id=1, sealed_with=key_id_of(sealed), sealed=sealed)
    await conn.execute(stmt.on_conflict_do_nothing())  # two processes starting at once


async def reseal_batch(conn: AsyncConnection, current: str, limit: int) -> int:
    """Reseal up to ``limit`` sealed values not yet under ``current``; how many were found."""
    keyring = keyring_of(conn)
    found = await _reseal_check(conn, keyring, current)
    found += await _reseal_column(conn, keyring, current, limit - found, _POLICY_KEYS)
    if found < limit:
        found += await _reseal_enrollments(conn, keyring, current, limit - found)
    for column in (_TPM_KEYS, _CA_KEYS, _HUB_SECRETS, _EVENT_SECRETS):
        if found < limit:
            found += await _reseal_column(conn, keyring, current, limit - found, column)
    return found


@dataclass(frozen=True, slots=True)
class _SealedColumn:
    """A table whose rows hold one sealed value, bound to the row by ``row_of(id)``."""

    table: Table
    id: Column[str]
    sealed: Column[str]
    row_of: Callable[[str], str]


_POLICY_KEYS = _SealedColumn(dps_policies, dps_policies.c.name, dps_policies.c.sealed_keys, policy_row)
_TPM_KEYS = _SealedColumn(tpm_keys, tpm_keys.c.key, tpm_keys.c.sealed, tpm_row)
_CA_KEYS = _SealedColumn(
    credential_policies, credential_policies.c.key, credential_policies.c.sealed_key, ca_row
)
# Connector secrets of linked hubs; a hub without a connector has NULL ``sealed_with`` and is skipped.
_HUB_SECRETS = _SealedColumn(dps_hubs, dps_hubs.c.key, dps_hubs.c.sealed, hub_row)
# Event subscription signing secrets (``whsec_…``).
_EVENT_SECRETS = _SealedColumn(
    event_subscriptions, event_subscriptions.c.id, event_subscriptions.c.sealed, subscription_row
)


async def _reseal_check(conn: AsyncConnection, keyring: Keyring, current: str) -> int:
    row = (
        await conn.execute(select(outer_key_check).where(outer_key_check.c.sealed_with != current))
    ).first()
    if row is None:
        return 0
    sealed = keyring.seal(keyring.open(row.sealed, CHECK_ROW), CHECK_ROW)
    await conn.execute(
        update(outer_key_check)
        .where(outer_key_check.c.id == row.id, outer_key_check.c.sealed_with == row.sealed_with)
        .values(sealed=sealed, sealed_with=key_id_of(sealed))
    )
    return 1


async def _reseal_column(
    conn: AsyncConnection, keyring: Keyring, current: str, limit: int, column: _SealedColumn
) -> int:
    """Reseal up to ``limit`` values of ``column`` not under ``current``; how many were found.

    Each update is conditional on the key it read, so a row a server rewrote meanwhile (a new
    TPM challenge, say) is left alone: it is already sealed under a key the rotation accepts.
    """
    sealed_with = column.table.c.sealed_with
    rows = (
        await conn.execute(
            select(column.id, column.sealed, sealed_with).where(sealed_with != current).limit(limit)
        )
    ).all()
    for ident, value, old in rows:
        row = column.row_of(ident)
        sealed = keyring.seal(keyring.open(value, row), row)
        await conn.execute(
            update(column.table)
            .where(column.id == ident, sealed_with == old)
            .values({column.sealed.name: sealed, "sealed_with": key_id_of(sealed)})
        )
    return len(rows)


async def _reseal_enrollments(conn: AsyncConnection, keyring: Keyring, current: str, limit: int) -> int:
    t = enrollments
    rows = (
        await conn.execute(
            select(t.c.kind, t.c.key, t.c.etag, t.c.doc)
            .where(t.c.sealed_with.is_not(None), t.c.sealed_with != current)
            .limit(limit)
        )
    ).all()
    for kind, key, etag, text in rows:
        doc = loads(text)
        row = enrollment_row(kind, key)
        sealed = keyring.seal(keyring.open(doc["attestation"]["symmetric_key"], row), row)
        doc["attestation"]["symmetric_key"] = sealed
        # The etag is unchanged: the record's content is the same, only its sealing is new.
        await conn.execute(
            update(t)
            .where(t.c.kind == kind, t.c.key == key, t.c.etag == etag)
            .values(doc=dumps(doc), sealed_with=key_id_of(sealed))
        )
    return len(rows)
