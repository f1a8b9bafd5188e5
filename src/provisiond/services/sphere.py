"""Azure Sphere use cases: tenants and their tokens, claims as durable operations, devices, release.

Claims are never applied in the request: they are stored as an operation (one item per device)
that the operation worker runs, so a single claim and a bulk claim of 1,000 devices follow the
same path and survive a crash alike. A tenant owns its operations as ``OwnerKind.TENANT``, so no
partner reaches them; they name no vendor (``None``): vendors are zero-touch back ends.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from provisiond.domain.audit import Actor, ActorKind
from provisiond.domain.claims import ItemResult, Operation, OperationKind, OperationState
from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.sphere import (
    SphereDevice,
    SphereOperation,
    Tenant,
    UnknownDevice,
    UnknownOperation,
    normalise_device_id,
    normalise_device_ids,
)
from provisiond.errors import InvalidInput, NotFound, Unauthorized
from provisiond.services import audit
from provisiond.services.claims import hash_token
from provisiond.services.operation_audit import record_submitted
from provisiond.services.sphere_batches import apply_sphere_batch
from provisiond.store import operations as op_repo
from provisiond.store import sphere as repo
from provisiond.store.db import Database
from provisiond.store.operation_codec import dump_result, dump_sphere_item, load_result, load_sphere_item

__all__ = ["SphereService"]


def _owner_id() -> int:
    """A tenant's number in the operations tables. Isolation from partners comes from the owner
    kind stored beside it; the range (10^12 to 10^13, partner ids are 10^9 to 10^10) is kept so
    that a number in a log still says which kind of account it is."""
    return 10**12 + secrets.randbelow(9 * 10**12)


def _operation_id() -> int:
    """A core operation id, drawn like the claims service draws its own."""
    return secrets.randbelow(9_000_000_000) + 1_000_000_000


@dataclass
class SphereService:
    db: Database
    clock: Clock = utc_now
    wake: asyncio.Event | None = field(default=None)

    # -- tenants ----------------------------------------------------------------------------

    async def create_tenant(self, name: str) -> tuple[Tenant, str]:
        """A new tenant and its bearer token (shown once; only its hash is stored)."""
        if not name.strip() or len(name) > 200:
            raise InvalidInput("a tenant name is 1-200 characters")
        tenant, token = Tenant(uuid.uuid4(), _owner_id(), name.strip()), secrets.token_urlsafe(32)
        async with self.db.write() as conn:
            await repo.insert_tenant(conn, tenant, hash_token(token), self.clock())
            await audit.record(conn, "tenant.create", str(tenant.id), details={"name": tenant.name})
        return tenant, token

    async def rotate_token(self, tenant_id: UUID) -> str:
        """A new token for the tenant; the old one stops working at once."""
        token = secrets.token_urlsafe(32)
        async with self.db.write() as conn:
            if not await repo.set_tenant_token(conn, tenant_id, hash_token(token)):
                raise NotFound(f"no tenant {tenant_id}")
            await audit.record(conn, "tenant.rotateToken", str(tenant_id))
        return token

    async def authenticate(self, token: str | None) -> Tenant:
        """The tenant a bearer token belongs to (looked up by its hash)."""
        if not token:
            raise Unauthorized("a bearer token is required")
        async with self.db.read() as conn:
            tenant = await repo.tenant_by_token_hash(conn, hash_token(token))
        if tenant is None:
            raise Unauthorized("the bearer token is not valid")
        audit.identify(Actor(ActorKind.TENANT, str(tenant.id)))  # who the rest of the request acts as
        return tenant

    async def tenant(self, tenant_id: UUID) -> Tenant:
        async with self.db.read() as conn:
            found = await repo.get_tenant(conn, tenant_id)
        if found is None:
            raise NotFound(f"no tenant {tenant_id}")
        return found

    # -- claims -----------------------------------------------------------------------------

    async def claim(self, tenant: Tenant, device_id: str) -> SphereOperation:
        """Start claiming one device (``InvalidDeviceId`` unless its id is well-formed)."""
        normal = normalise_device_id(device_id)
        return await self._submit(tenant, OperationKind.SPHERE_CLAIM, [normal], normal)

    async def bulk_claim(self, tenant: Tenant, device_ids: Sequence[str]) -> SphereOperation:
        """Start claiming 1 to 1,000 devices; one bad id refuses the whole list."""
        return await self._submit(
            tenant, OperationKind.SPHERE_BULK_CLAIM, normalise_device_ids(device_ids), None
        )

    async def _submit(
        self, tenant: Tenant, kind: OperationKind, device_ids: Sequence[str], single: str | None
    ) -> SphereOperation:
        now = self.clock()
        core = Operation(
            _operation_id(),
            kind,
            tenant.owner_id,
            None,
            OperationState.PENDING,
            len(device_ids),
            0,
            0,
            now,
        )
        public = SphereOperation(uuid.uuid4(), tenant.id, single, core)
        async with self.db.write() as conn:
            await op_repo.insert_operation(conn, core, [dump_sphere_item(d) for d in device_ids])
            await repo.insert_operation_ref(conn, public.id, core.id, tenant.owner_id, single)
            await record_submitted(conn, core, str(public.id))
        if self.wake is not None:
            self.wake.set()
        return public

    async def release(self, tenant_id: UUID, device_id: str) -> SphereOperation:
        """The operator's release of a device, recorded as a completed DeviceUnclaim operation.

        Applied on the spot (no worker needs to run): the release, the operation, its item and
        its result are one transaction. A device the tenant does not own is refused and nothing
        is recorded.
        """
        normal = normalise_device_id(device_id)
        now = self.clock()
        async with self.db.write() as conn:
            tenant = await repo.get_tenant(conn, tenant_id)
            if tenant is None:
                raise NotFound(f"no tenant {tenant_id}")
            item = dump_sphere_item(normal)
            [result] = await apply_sphere_batch(
                conn, OperationKind.SPHERE_RELEASE, tenant.owner_id, [item], now
            )
            if not result.ok:
                raise UnknownDevice(f"device {normal} is not claimed by tenant {tenant_id}")
            core = Operation(
                _operation_id(),
                OperationKind.SPHERE_RELEASE,
                tenant.owner_id,
                None,
                OperationState.COMPLETE,
                1,
                1,
                1,
                now,
                now,
                now,
            )
            public = SphereOperation(uuid.uuid4(), tenant.id, normal, core)
            await op_repo.insert_operation(conn, core, [item])
            await repo.insert_results(conn, core.id, [(0, dump_result(result))])
            await repo.insert_operation_ref(conn, public.id, core.id, tenant.owner_id, normal)
            await audit.record(conn, "tenant.release", normal, details={"tenant": str(tenant.id)})
        return public

    # -- operations -------------------------------------------------------------------------

    async def operation(self, tenant: Tenant, operation_id: str) -> SphereOperation:
        """One of the tenant's operations; any other id (malformed, unknown, another tenant's)
        is ``UnknownOperation``."""
        try:
            public_id = UUID(operation_id)
        except ValueError:
            raise UnknownOperation(f"no operation {operation_id!r}") from None
        async with self.db.read() as conn:
            ref = await repo.operation_ref(conn, public_id)
            core = await op_repo.get_operation(conn, ref[0]) if ref else None
        if ref is None or core is None or core.owner != tenant.owner:
            raise UnknownOperation(f"no operation {operation_id!r}")
        return SphereOperation(public_id, tenant.id, ref[2], core)

    async def operation_items(self, op: SphereOperation) -> list[tuple[str, ItemResult | None]]:
        """Every device of the operation in request order, with its result (``None`` until done)."""
        async with self.db.read() as conn:
            rows = await op_repo.results(conn, op.core.id)
        return [
            (load_sphere_item(request), load_result(result) if result else None) for request, result in rows
        ]

    # -- devices ----------------------------------------------------------------------------

    async def device(self, tenant: Tenant, device_id: str) -> SphereDevice:
        """A device the tenant owns; any other well-formed id is ``UnknownDevice``."""
        normal = normalise_device_id(device_id)
        async with self.db.read() as conn:
            found = await repo.get_device(conn, normal)
        if found is None or found.owner_id != tenant.owner_id:
            raise UnknownDevice(f"no device {normal} in this tenant")
        return found

    async def devices(self, tenant: Tenant, after: str | None, limit: int) -> tuple[list[SphereDevice], bool]:
        """A page of the tenant's devices in id order after ``after``, and whether more follow."""
        async with self.db.read() as conn:
            page = await repo.list_devices(conn, tenant.owner_id, after, limit + 1)
        return page[:limit], len(page) > limit
