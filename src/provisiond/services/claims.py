"""Claims use cases: partners and their tokens, customers, devices, sync claims, async operations.

The service knows no dialect: the claims back end (``Vendor``) of a claim, an unclaim or an
operation is chosen by the dialect that calls it (zero-touch: always Google; the reseller model:
what the request names) and is passed in with every call that needs one.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from provisiond.domain.audit import Actor, ActorKind
from provisiond.domain.claims import (
    MAX_ITEMS,
    Customer,
    Device,
    Item,
    ItemResult,
    Operation,
    OperationKind,
    OperationState,
    Partner,
    SectionType,
    UpdateItem,
)
from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.device_identifiers import (
    DEFAULT_MANUFACTURER_RULES,
    DeviceIdentifier,
    ManufacturerRules,
    Vendor,
)
from provisiond.errors import InvalidInput, NotFound, StoreUnavailable, Unauthorized
from provisiond.services import audit
from provisiond.services.claim_batches import apply_batch
from provisiond.services.operation_audit import record_item, record_submitted
from provisiond.store import claims as repo
from provisiond.store import operations as op_repo
from provisiond.store.claims import ConcurrentWrite
from provisiond.store.db import Database
from provisiond.store.operation_codec import dump_claim_item, load_claim_item, load_result

__all__ = ["ClaimsService", "TooManyItems", "hash_token"]


class TooManyItems(InvalidInput):
    """More than 100,000 items in one request (nothing is written)."""


def hash_token(token: str) -> str:
    """Tokens are stored as SHA-256: they are 256-bit random, so no slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def _new_id() -> int:
    return secrets.randbelow(9_000_000_000) + 1_000_000_000


def _sync_device_id() -> int:
    """Devices created by synchronous claims: ids above every operation-derived one (< 10^15)."""
    return 10**15 + secrets.randbelow(10**15)


@dataclass
class ClaimsService:
    db: Database
    clock: Clock = utc_now
    rules: ManufacturerRules = DEFAULT_MANUFACTURER_RULES
    wake: asyncio.Event | None = field(default=None)

    # -- partners ---------------------------------------------------------------------------

    async def create_partner(self, name: str) -> tuple[Partner, str]:
        if not name.strip() or len(name) > 200:
            raise InvalidInput("a partner name is 1-200 characters")
        partner, token = Partner(_new_id(), name.strip()), secrets.token_urlsafe(32)
        async with self.db.write() as conn:
            await repo.insert_partner(conn, partner, hash_token(token), self.clock())
            await audit.record(conn, "partner.create", str(partner.id), details={"name": partner.name})
        return partner, token

    async def rotate_token(self, partner_id: int) -> str:
        token = secrets.token_urlsafe(32)
        async with self.db.write() as conn:
            if not await repo.set_partner_token(conn, partner_id, hash_token(token)):
                raise NotFound(f"no partner {partner_id}")
            await audit.record(conn, "partner.rotateToken", str(partner_id))
        return token

    async def partner(self, partner_id: int) -> Partner:
        """A partner by id: the operator acting for it (``provisiond claim import --partner``)."""
        async with self.db.read() as conn:
            found = await repo.get_partner(conn, partner_id)
        if found is None:
            raise NotFound(f"no partner {partner_id}")
        return found

    async def authenticate(self, token: str | None) -> Partner:
        """The partner a bearer token belongs to (looked up by its hash)."""
        if not token:
            raise Unauthorized("a bearer token is required")
        async with self.db.read() as conn:
            partner = await repo.partner_by_token_hash(conn, hash_token(token))
        if partner is None:
            raise Unauthorized("the bearer token is not valid")
        audit.identify(Actor(ActorKind.PARTNER, str(partner.id)))  # who the rest of the request acts as
        return partner

    # -- customers --------------------------------------------------------------------------

    async def create_customer(
        self,
        partner: Partner,
        name: str,
        vendor: Vendor,
        owner_emails: Sequence[str] = (),
        admin_emails: Sequence[str] = (),
        vendor_params: dict[str, str] | None = None,
    ) -> Customer:
        if not name.strip() or len(name) > 200:
            raise InvalidInput("companyName is required (at most 200 characters)")
        customer = Customer(
            _new_id(), partner.id, name, vendor, tuple(owner_emails), tuple(admin_emails), vendor_params or {}
        )
        async with self.db.write() as conn:
            await repo.insert_customer(conn, customer, self.clock())
            await audit.record(conn, "customer.create", str(customer.id), details={"vendor": vendor.value})
        return customer

    async def customer(self, partner: Partner, customer_id: int) -> Customer:
        async with self.db.read() as conn:
            found = await repo.get_customer(conn, customer_id)
        if found is None or found.partner_id != partner.id:
            raise NotFound(f"no customer {customer_id}")
        return found

    async def customers(
        self, partner: Partner, vendor: Vendor | None, after_id: int | None, limit: int
    ) -> tuple[list[Customer], int, bool]:
        """A page of the partner's customers, the total, and whether more follow."""
        async with self.db.read() as conn:
            page = await repo.list_customers(conn, partner.id, vendor, after_id, limit + 1)
            total = await repo.count_customers(conn, partner.id, vendor)
        return page[:limit], total, len(page) > limit

    # -- devices ----------------------------------------------------------------------------

    async def device(self, partner: Partner, device_id: int) -> Device:
        """A device the partner has claimed; any other device is "not found" (nothing leaks)."""
        async with self.db.read() as conn:
            found = (await repo.get_devices(conn, [device_id])).get(device_id)
        if found is None or not any(c.partner_id == partner.id for c in found.claims):
            raise NotFound(f"no device {device_id}")
        return found

    async def devices(self, ids: Sequence[int]) -> list[Device]:
        async with self.db.read() as conn:
            found = await repo.get_devices(conn, ids)
        return [found[i] for i in ids if i in found]

    async def find_by_identifier(
        self, partner: Partner, identifier: DeviceIdentifier, after: int | None, limit: int
    ) -> tuple[list[Device], int, bool]:
        async with self.db.read() as conn:
            ids, total = await repo.find_by_identifier(conn, partner.id, identifier, after, limit + 1)
        return await self.devices(ids[:limit]), total, len(ids) > limit

    async def find_by_owner(
        self,
        partner: Partner,
        customer_ids: Sequence[int],
        section: SectionType,
        after: int | None,
        limit: int,
    ) -> tuple[list[Device], int, bool]:
        async with self.db.read() as conn:
            ids, total = await repo.find_by_owner(conn, partner.id, customer_ids, section, after, limit + 1)
        return await self.devices(ids[:limit]), total, len(ids) > limit

    async def set_metadata(
        self, partner: Partner, vendor: Vendor, device_id: int, entries: dict[str, str]
    ) -> ItemResult:
        """Replace one claimed device's metadata at once (the synchronous call of a dialect)."""
        return await self.apply_now(
            partner, OperationKind.UPDATE_METADATA, vendor, UpdateItem(device_id, None, entries)
        )

    # -- synchronous claims -----------------------------------------------------------------

    async def apply_now(
        self, partner: Partner, kind: OperationKind, vendor: Vendor, item: Item
    ) -> ItemResult:
        """One item, applied in its own transaction with the same rules as an operation."""
        for attempt in range(5):  # a concurrent claim of the same device rolls this one back
            try:
                async with self.db.write() as conn:
                    [result] = await apply_batch(
                        conn, kind, partner.id, vendor, [item], self.rules, [_sync_device_id()]
                    )
                    await record_item(conn, kind, vendor, item, result, partner.id)
                return result
            except ConcurrentWrite as exc:
                if attempt == 4:
                    raise StoreUnavailable("the device kept changing under this request; try again") from exc
        raise AssertionError("unreachable")

    # -- operations -------------------------------------------------------------------------

    async def submit(
        self, partner: Partner, kind: OperationKind, vendor: Vendor, items: Sequence[tuple[Item, Any]]
    ) -> Operation:
        """Store an operation with every item (and its wire form); the worker does the rest."""
        if len(items) > MAX_ITEMS:
            raise TooManyItems(f"at most {MAX_ITEMS} devices per request, not {len(items)}")
        now = self.clock()
        state = OperationState.PENDING if items else OperationState.COMPLETE
        op = Operation(
            _new_id(), kind, partner.id, vendor, state, len(items), 0, 0, now, None, None if items else now
        )
        encoded = [dump_claim_item(item, wire) for item, wire in items]
        async with self.db.write() as conn:
            await op_repo.insert_operation(conn, op, encoded)
            await record_submitted(conn, op)
        if self.wake is not None:
            self.wake.set()
        return op

    async def operation(self, partner: Partner, operation_id: int) -> Operation:
        async with self.db.read() as conn:
            op = await op_repo.get_operation(conn, operation_id)
        if op is None or op.owner != partner.owner:  # a tenant's operation is never a partner's
            raise NotFound(f"no operation {operation_id}")
        return op

    async def operation_results(self, op: Operation) -> list[tuple[Item, Any, ItemResult | None]]:
        """Every item in request order with its wire form and its result (``None`` until done)."""
        async with self.db.read() as conn:
            rows = await op_repo.results(conn, op.id)
        out = []
        for request, result in rows:
            item, wire = load_claim_item(op.kind, request)
            out.append((item, wire, load_result(result) if result else None))
        return out

    async def operations(
        self,
        partner: Partner,
        kinds: Sequence[OperationKind] | None,
        states: Sequence[OperationState] | None,
        after_id: int | None,
        limit: int,
    ) -> tuple[list[Operation], int, bool]:
        async with self.db.read() as conn:
            page, total = await op_repo.list_operations(
                conn, partner.owner, kinds, states, after_id, limit + 1
            )
        return page[:limit], total, len(page) > limit
