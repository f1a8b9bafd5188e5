"""Linked hubs, the region table and the default allocation policy of the instance."""

from __future__ import annotations

import ipaddress

from provisiond.domain.allocation import LinkedHub, RegionRule, check_hub_host_name
from provisiond.domain.enrollments import AllocationPolicy
from provisiond.errors import InvalidInput, NotFound
from provisiond.services import audit
from provisiond.store import hubs as repo
from provisiond.store.db import Database

__all__ = ["HubService"]


class HubService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, host_name: str, weight: int = 1, region: str | None = None) -> LinkedHub:
        """Link a hub (or change the weight and region of a linked one)."""
        name = check_hub_host_name(host_name)
        if weight < 1 or weight > 1000:
            raise InvalidInput("a hub's weight is between 1 and 1000")
        hub = LinkedHub(name, weight, region or None)
        async with self._db.write() as conn:
            await repo.put_hub(conn, hub)
            await audit.record(
                conn, "hub.add", hub.host_name, details={"weight": weight, "region": hub.region}
            )
        return hub

    async def hubs(self) -> list[LinkedHub]:
        async with self._db.read() as conn:
            return await repo.list_hubs(conn)

    async def remove(self, host_name: str) -> None:
        async with self._db.write() as conn:
            if not await repo.remove_hub(conn, host_name):
                raise NotFound(f"hub {host_name!r} is not linked")
            await audit.record(conn, "hub.remove", host_name)

    async def set_allocation(self, policy: str) -> AllocationPolicy:
        settable = [p.value for p in AllocationPolicy if p is not AllocationPolicy.CUSTOM]
        try:
            parsed = AllocationPolicy(policy)
        except ValueError as exc:
            raise InvalidInput(f"the default allocation policy is one of {', '.join(settable)}") from exc
        if parsed is AllocationPolicy.CUSTOM:
            raise InvalidInput(
                "custom allocation needs a webhook, so it is set per enrollment "
                "(allocationPolicy and customAllocationDefinition), not as the default: "
                f"use one of {', '.join(settable)}"
            )
        async with self._db.write() as conn:
            await repo.set_allocation_policy(conn, parsed)
            await audit.record(conn, "allocation.set", parsed.value)
        return parsed

    async def allocation(self) -> AllocationPolicy:
        async with self._db.read() as conn:
            return await repo.get_allocation_policy(conn)

    async def add_region(self, network: str, region: str) -> RegionRule:
        try:
            parsed = ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise InvalidInput(f"{network!r} is not a CIDR network") from exc
        if not region.strip():
            raise InvalidInput("a region name is required")
        rule = RegionRule(str(parsed), region.strip())
        async with self._db.write() as conn:
            await repo.put_region(conn, rule)
            await audit.record(conn, "region.add", rule.network, details={"region": rule.region})
        return rule

    async def regions(self) -> list[RegionRule]:
        async with self._db.read() as conn:
            return await repo.list_regions(conn)

    async def remove_region(self, network: str) -> None:
        try:
            key = str(ipaddress.ip_network(network, strict=False))
        except ValueError as exc:
            raise InvalidInput(f"{network!r} is not a CIDR network") from exc
        async with self._db.write() as conn:
            if not await repo.remove_region(conn, key):
                raise NotFound(f"no region rule for {key}")
            await audit.record(conn, "region.remove", key)
