"""The DPS instance of a data dir and its shared access policies."""

from __future__ import annotations

from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.instance import DpsInstance
from provisiond.domain.policies import (
    ALL_RIGHTS,
    OWNER_POLICY,
    Policy,
    Right,
    check_policy_name,
    new_policy_key,
)
from provisiond.domain.registration_ids import new_id_scope
from provisiond.errors import AlreadyExists, InvalidInput, NotFound
from provisiond.services import audit
from provisiond.store import instance as repo
from provisiond.store.db import Database

__all__ = ["InstanceService"]


class InstanceService:
    """Creates the instance once and manages who may call its service API."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def ensure(self, service_host: str) -> DpsInstance:
        """Create the instance and its owner policy unless they exist; return the instance.

        Running this again changes nothing, so ``provisiond init`` is idempotent.
        """
        async with self._db.write() as conn:
            instance = await repo.get_instance(conn)
            if instance is None:
                instance = DpsInstance(id_scope=new_id_scope(), service_host=service_host)
                await repo.insert_instance(conn, instance, self._clock())
                await repo.insert_policy(conn, _new_policy(OWNER_POLICY, ALL_RIGHTS))
                await audit.record(
                    conn, "instance.create", instance.id_scope, details={"serviceHost": service_host}
                )
            return instance

    async def get(self) -> DpsInstance:
        async with self._db.read() as conn:
            instance = await repo.get_instance(conn)
        if instance is None:
            raise NotFound("this data dir holds no DPS instance yet: run `provisiond init`")
        return instance

    async def policy(self, name: str) -> Policy | None:
        async with self._db.read() as conn:
            return await repo.get_policy(conn, name)

    async def policies(self) -> list[Policy]:
        async with self._db.read() as conn:
            return await repo.list_policies(conn)

    async def create_policy(self, name: str, rights: frozenset[Right]) -> Policy:
        policy = _new_policy(check_policy_name(name), rights)
        async with self._db.write() as conn:
            if not await repo.insert_policy(conn, policy):
                raise AlreadyExists(f"policy {name!r} exists")
            await audit.record(conn, "policy.create", policy.name, details={"rights": _rights(policy)})
        return policy

    async def delete_policy(self, name: str) -> None:
        if name == OWNER_POLICY:
            raise InvalidInput(f"{OWNER_POLICY} cannot be deleted")
        async with self._db.write() as conn:
            if not await repo.delete_policy(conn, name):
                raise NotFound(f"no policy {name!r}")
            await audit.record(conn, "policy.delete", name)


def _rights(policy: Policy) -> str:
    return ",".join(sorted(right.value for right in policy.rights))


def _new_policy(name: str, rights: frozenset[Right]) -> Policy:
    return Policy(name=name, primary_key=new_policy_key(), secondary_key=new_policy_key(), rights=rights)
