"""How a claimDevicesAsync or unclaimDevicesAsync request becomes Operations.

An operation lives at one vendor back end (its id says ``google/`` or ``samsung/``), so a request
is split by vendor: one operation per vendor, in the order the vendors first appear in the request,
each holding its devices in request order. Every device of the request is accounted for in exactly
one Operation of the answer.

- **Claims** go to the vendor of the customer they name. A claim whose customer cannot be resolved
  (missing, malformed, unknown, another partner's, or a ``vendor`` that contradicts the customer)
  goes to the vendor its CompanyReference names (GOOGLE if none) and fails there with
  INVALID_CUSTOMER_ID.
- **Unclaims** go to the vendor of their ``deviceId`` prefix; those named by ``deviceIdentifier``
  alone go to the request's vendor: ``vendorParams.vendor``, else the vendor of
  ``vendorParams.customerId``, else SAMSUNG when a customerId is given at all, else GOOGLE.
- **Failed before it started** (operationId ``""``, state FAILED, nothing stored, every device of
  the group in deviceErrors): a claim group in which no claim names one of the caller's customers
  (INVALID_CUSTOMER_ID); a SAMSUNG claim group naming more than one customer (INTERNAL_SERVER_ERROR,
  as the Samsung back end answers, docs/reseller.md); a SAMSUNG unclaim group without a
  ``vendorParams.customerId`` naming one of the caller's Samsung customers (INVALID_CUSTOMER_ID).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provisiond.api.reseller import schemas as wire
from provisiond.api.reseller.errors import ErrorCode, new_error_id
from provisiond.api.reseller.mapping import (
    failed_operation,
    identifier_in,
    number_in,
    operation_out,
    prefixed_in,
    vendor_in,
    wire_item,
)
from provisiond.domain.claims import (
    ClaimItem,
    Customer,
    Item,
    OperationKind,
    Partner,
    SectionType,
    UnclaimItem,
)
from provisiond.domain.device_identifiers import Vendor
from provisiond.errors import NotFound
from provisiond.services.claims import ClaimsService

__all__ = [
    "Group",
    "UnclaimScope",
    "claim_item",
    "claim_target",
    "customer_ids",
    "named_customers",
    "plan_claims",
    "plan_unclaims",
    "submit_groups",
    "unclaim_item",
    "unclaim_scope",
]

_ONE_BY_ONE = 32  # more distinct customers than this: read the partner's list once instead
_CUSTOMER_PAGE = 1000


@dataclass
class Group:
    """The devices of one vendor: an operation to submit, or (``refusal``) one that fails at once."""

    vendor: Vendor
    entries: list[tuple[int, Item, dict[str, Any]]] = field(default_factory=list)  # index, item, wire
    refusal: tuple[ErrorCode, str] | None = None


def _grouped(entries: Sequence[tuple[Vendor, int, Item, dict[str, Any]]]) -> dict[Vendor, Group]:
    groups: dict[Vendor, Group] = {}
    for vendor, index, item, stored in entries:
        groups.setdefault(vendor, Group(vendor)).entries.append((index, item, stored))
    return groups


async def named_customers(claims: ClaimsService, partner: Partner, ids: set[int]) -> dict[int, Customer]:
    """Those of ``ids`` that are the partner's customers (the others are simply absent)."""
    found: dict[int, Customer] = {}
    if len(ids) <= _ONE_BY_ONE:
        for customer_id in ids:
            with contextlib.suppress(NotFound):
                found[customer_id] = await claims.customer(partner, customer_id)
        return found
    after: int | None = None
    while True:
        page, _, more = await claims.customers(partner, None, after, _CUSTOMER_PAGE)
        found.update((c.id, c) for c in page if c.id in ids)
        if not more or not page:
            return found
        after = page[-1].id


def customer_ids(claims: Sequence[wire.DeviceClaim]) -> set[int]:
    """The well-formed customer ids the claims name."""
    ids = {number_in(c.customer.company_id) for c in claims if c.customer is not None}
    return {i for i in ids if i is not None}


def claim_target(
    ref: wire.CompanyReferenceIn | None, customers: Mapping[int, Customer]
) -> tuple[Vendor, Customer | None]:
    """The vendor a claim goes to and its customer (``None``: not one of the caller's)."""
    if ref is None:
        return Vendor.GOOGLE, None
    named = vendor_in(ref.vendor)
    customer_id = number_in(ref.company_id)
    customer = customers.get(customer_id) if customer_id is not None else None
    if customer is not None and named in (None, customer.vendor):
        return customer.vendor, customer
    return named or Vendor.GOOGLE, None


def claim_item(claim: wire.DeviceClaim, customer: Customer | None) -> ClaimItem:
    """The core item of a claim; a customer that is not the caller's is passed as none."""
    return ClaimItem(
        identifier_in(claim.device_identifier),
        customer.id if customer is not None else None,
        SectionType.ZERO_TOUCH,
        claim.order_number,
        None,  # the reseller model has no device metadata: leave it as it is
        dict(claim.vendor_params or {}),
    )


def plan_claims(claims: Sequence[wire.DeviceClaim], customers: Mapping[int, Customer]) -> list[Group]:
    """Split claims by vendor; refuse the groups that cannot start (module docstring)."""
    entries: list[tuple[Vendor, int, Item, dict[str, Any]]] = []
    targets: dict[tuple[str | int | None, str | None], tuple[Vendor, Customer | None]] = {}
    for index, claim in enumerate(claims):
        ref = claim.customer
        key = (ref.company_id, ref.vendor) if ref is not None else (None, None)
        target = targets.get(key)
        if target is None:  # requests name few customers: resolve each reference once
            target = targets[key] = claim_target(ref, customers)
        vendor, customer = target
        entries.append(
            (vendor, index, claim_item(claim, customer), wire_item(None, claim.device_identifier, None))
        )
    groups = list(_grouped(entries).values())
    for group in groups:
        named = {item.customer_id for _, item, _ in group.entries if isinstance(item, ClaimItem)} - {None}
        if not named:
            group.refusal = (
                ErrorCode.INVALID_CUSTOMER_ID,
                "no claim of this group names one of your customers of this vendor",
            )
        elif group.vendor is Vendor.SAMSUNG and len(named) > 1:
            group.refusal = (
                ErrorCode.INTERNAL_SERVER_ERROR,
                f"a Samsung request takes one customer; this one names {len(named)}",
            )
    return groups


@dataclass(frozen=True, slots=True)
class UnclaimScope:
    """What an unclaim request's vendorParams say: where identifier-only devices go, and whether
    Samsung devices may be unclaimed (``problem`` = (HTTP status, reason) if not)."""

    vendor: Vendor
    problem: tuple[int, str] | None


async def unclaim_scope(
    claims: ClaimsService, partner: Partner, params: Mapping[str, str] | None
) -> UnclaimScope:
    """Read ``vendor`` and ``customerId`` from an unclaim request's vendorParams."""
    params = params or {}
    explicit = vendor_in(params.get("vendor"))
    raw = (params.get("customerId") or "").strip()
    customer: Customer | None = None
    problem: tuple[int, str] | None = None
    customer_id = number_in(raw)
    if not raw:
        problem = (400, "unclaiming Samsung devices needs vendorParams.customerId")
    elif customer_id is None:
        problem = (400, f"vendorParams.customerId {raw!r} is not a customer id")
    else:
        try:
            customer = await claims.customer(partner, customer_id)
        except NotFound:
            problem = (404, f"customer {customer_id} does not exist or is not yours")
        else:
            if customer.vendor is not Vendor.SAMSUNG:
                problem = (404, f"customer {customer_id} is not a Samsung customer")
    fallback = customer.vendor if customer is not None else (Vendor.SAMSUNG if raw else Vendor.GOOGLE)
    return UnclaimScope(explicit or fallback, problem)


def unclaim_item(
    unclaim: wire.DeviceUnclaim, default: Vendor
) -> tuple[Vendor, UnclaimItem, tuple[ErrorCode, str] | None]:
    """The vendor and core item of an unclaim, and the fault found before the core sees it."""
    identifier = identifier_in(unclaim.device_identifier) if unclaim.device_identifier is not None else None
    if unclaim.device_id is not None:
        parsed = prefixed_in(unclaim.device_id)
        if parsed is None:
            return (
                default,
                UnclaimItem(None, None),
                (ErrorCode.INVALID_DEVICE_ID, "deviceId must be google/<number> or samsung/<number>"),
            )
        return parsed[0], UnclaimItem(parsed[1], identifier), None
    if identifier is None:
        return (
            default,
            UnclaimItem(None, None),
            (ErrorCode.INVALID_IDENTIFIER_SET, "an unclaim names its device by deviceId or deviceIdentifier"),
        )
    return default, UnclaimItem(None, identifier), None


def plan_unclaims(unclaims: Sequence[wire.DeviceUnclaim], scope: UnclaimScope) -> list[Group]:
    """Split unclaims by vendor; refuse a Samsung group without its customer (module docstring)."""
    entries: list[tuple[Vendor, int, Item, dict[str, Any]]] = []
    for index, unclaim in enumerate(unclaims):
        vendor, item, refused = unclaim_item(unclaim, scope.vendor)
        entries.append(
            (vendor, index, item, wire_item(unclaim.device_id, unclaim.device_identifier, refused))
        )
    groups = list(_grouped(entries).values())
    for group in groups:
        if group.vendor is Vendor.SAMSUNG and scope.problem is not None:
            group.refusal = (ErrorCode.INVALID_CUSTOMER_ID, scope.problem[1])
    return groups


async def submit_groups(
    claims: ClaimsService, partner: Partner, kind: OperationKind, groups: Sequence[Group]
) -> list[wire.Operation]:
    """Store an operation per group (the worker runs them); a refused group stores nothing."""
    batch_id = new_error_id()
    operations = []
    for group in groups:
        if group.refusal is not None:
            code, reason = group.refusal
            entries = [(index, stored) for index, _, stored in group.entries]
            operations.append(failed_operation(kind, group.vendor, entries, code, reason, batch_id))
        else:
            items = [(item, stored) for _, item, stored in group.entries]
            operations.append(operation_out(await claims.submit(partner, kind, group.vendor, items)))
    return operations
