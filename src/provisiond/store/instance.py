"""The DPS instance row and its shared access policies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.instance import DpsInstance
from provisiond.domain.policies import Policy, Right
from provisiond.store.db import keyring_of
from provisiond.store.keyring import Keyring, key_id_of
from provisiond.store.tables import dps_instance, dps_policies

__all__ = ["delete_policy", "get_instance", "get_policy", "insert_instance", "insert_policy", "list_policies"]


async def get_instance(conn: AsyncConnection) -> DpsInstance | None:
    row = (await conn.execute(select(dps_instance).where(dps_instance.c.id == 1))).first()
    return DpsInstance(id_scope=row.id_scope, service_host=row.service_host) if row else None


async def insert_instance(conn: AsyncConnection, instance: DpsInstance, now: datetime) -> None:
    await conn.execute(
        insert(dps_instance).values(
            id=1, id_scope=instance.id_scope, service_host=instance.service_host, created=now
        )
    )


def policy_row(name: str) -> str:
    """The associated data a policy's sealed keys are bound to."""
    return f"dps_policies/{name}"


def _policy(keyring: Keyring, row: Any) -> Policy:
    primary, secondary = keyring.open(row.sealed_keys, policy_row(row.name)).split(" ")
    return Policy(
        name=row.name,
        primary_key=primary,
        secondary_key=secondary,
        rights=frozenset(Right(r) for r in row.rights.split(",")),
    )


async def get_policy(conn: AsyncConnection, name: str) -> Policy | None:
    row = (await conn.execute(select(dps_policies).where(dps_policies.c.name == name))).first()
    return _policy(keyring_of(conn), row) if row else None


async def list_policies(conn: AsyncConnection) -> list[Policy]:
    rows = await conn.execute(select(dps_policies).order_by(dps_policies.c.name))
    keyring = keyring_of(conn)
    return [_policy(keyring, row) for row in rows]


async def insert_policy(conn: AsyncConnection, policy: Policy) -> bool:
    """Insert unless a policy of that name exists; report whether it was inserted."""
    if await get_policy(conn, policy.name) is not None:
        return False
    sealed = keyring_of(conn).seal(f"{policy.primary_key} {policy.secondary_key}", policy_row(policy.name))
    await conn.execute(
        insert(dps_policies).values(
            name=policy.name,
            rights=",".join(sorted(r.value for r in policy.rights)),
            sealed_keys=sealed,
            sealed_with=key_id_of(sealed),
        )
    )
    return True


async def delete_policy(conn: AsyncConnection, name: str) -> bool:
    result = await conn.execute(delete(dps_policies).where(dps_policies.c.name == name))
    return result.rowcount > 0
