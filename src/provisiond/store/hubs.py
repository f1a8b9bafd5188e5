"""Linked IoT hubs, the region table, and the instance's default allocation policy."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.allocation import LinkedHub, RegionRule
from provisiond.domain.enrollments import AllocationPolicy
from provisiond.store.engine_specific import insert_for
from provisiond.store.tables import dps_hubs, dps_instance, dps_regions

__all__ = [
    "get_allocation_policy",
    "list_hubs",
    "list_regions",
    "put_hub",
    "put_region",
    "remove_hub",
    "remove_region",
    "set_allocation_policy",
]


# Built once: these run on every registration.
_LIST_HUBS = select(
    dps_hubs.c.host_name, dps_hubs.c.weight, dps_hubs.c.region, dps_hubs.c.connector
).order_by(dps_hubs.c.key)
_LIST_REGIONS = select(dps_regions).order_by(dps_regions.c.network)
_POLICY = select(dps_instance.c.allocation_policy).where(dps_instance.c.id == 1)


async def list_hubs(conn: AsyncConnection) -> list[LinkedHub]:
    rows = await conn.execute(_LIST_HUBS)
    return [LinkedHub(row.host_name, row.weight, row.region, row.connector) for row in rows]


async def put_hub(conn: AsyncConnection, hub: LinkedHub) -> None:
    """Link a hub, or update the weight and region of a linked one."""
    ins = insert_for(conn, dps_hubs).values(
        key=hub.host_name.lower(), host_name=hub.host_name, weight=hub.weight, region=hub.region
    )
    await conn.execute(
        ins.on_conflict_do_update(
            index_elements=[dps_hubs.c.key],
            set_={
                "host_name": ins.excluded.host_name,
                "weight": ins.excluded.weight,
                "region": ins.excluded.region,
            },
        )
    )


async def remove_hub(conn: AsyncConnection, host_name: str) -> bool:
    result = await conn.execute(delete(dps_hubs).where(dps_hubs.c.key == host_name.lower()))
    return result.rowcount == 1


async def list_regions(conn: AsyncConnection) -> list[RegionRule]:
    rows = await conn.execute(_LIST_REGIONS)
    return [RegionRule(row.network, row.region) for row in rows]


async def put_region(conn: AsyncConnection, rule: RegionRule) -> None:
    ins = insert_for(conn, dps_regions).values(network=rule.network, region=rule.region)
    await conn.execute(
        ins.on_conflict_do_update(
            index_elements=[dps_regions.c.network], set_={"region": ins.excluded.region}
        )
    )


async def remove_region(conn: AsyncConnection, network: str) -> bool:
    result = await conn.execute(delete(dps_regions).where(dps_regions.c.network == network))
    return result.rowcount == 1


async def get_allocation_policy(conn: AsyncConnection) -> AllocationPolicy:
    value = (await conn.execute(_POLICY)).scalar()
    return AllocationPolicy(value or AllocationPolicy.HASHED.value)


async def set_allocation_policy(conn: AsyncConnection, policy: AllocationPolicy) -> None:
    await conn.execute(
        update(dps_instance).where(dps_instance.c.id == 1).values(allocation_policy=policy.value)
    )
