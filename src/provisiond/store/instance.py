"""The DPS instance row and its shared access policies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.instance import DpsInstance
from provisiond.domain.policies import Policy, Right
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


def _policy(row: object) -> Policy:
    return Policy(
        name=row.name,  # type: ignore[attr-defined]
        primary_key=row.primary_key,  # type: ignore[attr-defined]
        secondary_key=row.secondary_key,  # type: ignore[attr-defined]
        rights=frozenset(Right(r) for r in row.rights.split(",")),  # type: ignore[attr-defined]
    )


async def get_policy(conn: AsyncConnection, name: str) -> Policy | None:
    row = (await conn.execute(select(dps_policies).where(dps_policies.c.name == name))).first()
    return _policy(row) if row else None


async def list_policies(conn: AsyncConnection) -> list[Policy]:
    rows = await conn.execute(select(dps_policies).order_by(dps_policies.c.name))
    return [_policy(row) for row in rows]


async def insert_policy(conn: AsyncConnection, policy: Policy) -> bool:
    """Insert unless a policy of that name exists; report whether it was inserted."""
    if await get_policy(conn, policy.name) is not None:
        return False
    await conn.execute(
        insert(dps_policies).values(
            name=policy.name,
            primary_key=policy.primary_key,
            secondary_key=policy.secondary_key,
            rights=",".join(sorted(r.value for r in policy.rights)),
        )
    )
    return True


async def delete_policy(conn: AsyncConnection, name: str) -> bool:
    result = await conn.execute(delete(dps_policies).where(dps_policies.c.name == name))
    return result.rowcount > 0
