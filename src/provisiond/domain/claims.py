"""Ownership of devices: partners (resellers), customers, devices, claims, and the per-item rules.

One model serves the zero-touch API and the reseller object model: a device claimed through one
dialect is the same record in every other. Azure Sphere devices have their own records
(``domain/sphere.py``) but share the durable operations defined here, so an operation names its
owner by kind as well as number (``Owner``): a partner and a tenant are different accounts even
where their numbers could meet. The rules here are pure: the store finds what exists, these
functions decide what an item does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from provisiond.domain.device_identifiers import DeviceIdentifier, Vendor

__all__ = [
    "MAX_ITEMS",
    "OWNER_KINDS",
    "Claim",
    "ClaimItem",
    "Customer",
    "Device",
    "Item",
    "ItemResult",
    "ItemStatus",
    "Operation",
    "OperationKind",
    "OperationState",
    "Owner",
    "OwnerKind",
    "Partner",
    "SectionType",
    "UnclaimItem",
    "UpdateItem",
    "decide_claim",
    "decide_owned",
]

MAX_ITEMS = 100_000  # the reseller model's limit per async request


class SectionType(StrEnum):
    ZERO_TOUCH = "SECTION_TYPE_ZERO_TOUCH"
    SIM_LOCK = "SECTION_TYPE_SIM_LOCK"


class OwnerKind(StrEnum):
    """The kinds of account that own durable operations."""

    PARTNER = "partner"  # a reseller: zero-touch and reseller-model operations
    TENANT = "tenant"  # an Azure Sphere tenant


@dataclass(frozen=True, slots=True)
class Owner:
    """Who owns an operation: an account kind and that account's number. Partners and tenants
    number their accounts independently, so only the pair names one account."""

    kind: OwnerKind
    id: int


@dataclass(frozen=True, slots=True)
class Partner:
    id: int
    name: str

    @property
    def owner(self) -> Owner:
        """The partner as the owner of its operations."""
        return Owner(OwnerKind.PARTNER, self.id)


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    partner_id: int
    name: str
    vendor: Vendor
    owner_emails: tuple[str, ...] = ()
    admin_emails: tuple[str, ...] = ()
    vendor_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Claim:
    section_type: SectionType
    customer_id: int
    partner_id: int
    order_number: str | None = None
    vendor_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Device:
    id: int
    identifier: DeviceIdentifier
    metadata: dict[str, str] = field(default_factory=dict)
    claims: tuple[Claim, ...] = ()


class OperationKind(StrEnum):
    CLAIM = "claim"
    UNCLAIM = "unclaim"
    UPDATE_METADATA = "update_metadata"
    # Azure Sphere (domain/sphere.py): the item is a device id, the owner a tenant.
    SPHERE_CLAIM = "sphere_claim"
    SPHERE_BULK_CLAIM = "sphere_bulk_claim"
    SPHERE_RELEASE = "sphere_release"


# Each kind of operation is started through one family of dialects, so by one kind of account.
OWNER_KINDS: Mapping[OperationKind, OwnerKind] = {
    OperationKind.CLAIM: OwnerKind.PARTNER,
    OperationKind.UNCLAIM: OwnerKind.PARTNER,
    OperationKind.UPDATE_METADATA: OwnerKind.PARTNER,
    OperationKind.SPHERE_CLAIM: OwnerKind.TENANT,
    OperationKind.SPHERE_BULK_CLAIM: OwnerKind.TENANT,
    OperationKind.SPHERE_RELEASE: OwnerKind.TENANT,
}


class OperationState(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    COMPLETE_WITH_ERRORS = "complete_with_errors"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ClaimItem:
    identifier: DeviceIdentifier
    customer_id: int | None
    section_type: SectionType = SectionType.ZERO_TOUCH
    order_number: str | None = None
    metadata: dict[str, str] | None = None
    vendor_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UnclaimItem:
    device_id: int | None
    identifier: DeviceIdentifier | None
    section_type: SectionType = SectionType.ZERO_TOUCH


@dataclass(frozen=True, slots=True)
class UpdateItem:
    device_id: int | None
    identifier: DeviceIdentifier | None
    metadata: dict[str, str] = field(default_factory=dict)


Item = ClaimItem | UnclaimItem | UpdateItem  # one item of a claims operation (not Azure Sphere)


class ItemStatus(StrEnum):
    """The outcome of one item, in the core's words; each dialect renders it its own way."""

    SUCCESS = "success"
    DUPLICATE = "duplicate"  # already claimed for the same customer: nothing to do
    INVALID_IDENTIFIER = "invalid_identifier"  # ``code`` says which rule (INVALID_DEVICE_IMEI, …)
    PERMISSION_DENIED = "permission_denied"  # the customer is unknown or not the partner's
    SECTION_NOT_YOURS = "section_not_yours"  # claimed by another customer or partner
    NOT_FOUND = "not_found"  # no such device (among the partner's)


@dataclass(frozen=True, slots=True)
class ItemResult:
    status: ItemStatus
    device_id: int | None = None
    code: str | None = None  # the reseller library's ErrorCode when the item failed
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (ItemStatus.SUCCESS, ItemStatus.DUPLICATE)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "device_id": self.device_id,
            "code": self.code,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ItemResult:
        return cls(ItemStatus(doc["status"]), doc["device_id"], doc["code"], doc["message"])


@dataclass(frozen=True, slots=True)
class Operation:
    """A durable operation. ``owner_id`` is the number of its owner, whose kind its ``kind``
    decides (``OWNER_KINDS``); ``vendor`` is the claims back end of a partner's operation (the
    ``google/`` or ``samsung/`` of its name) and ``None`` for a tenant's: Sphere has no vendor."""

    id: int
    kind: OperationKind
    owner_id: int
    vendor: Vendor | None
    state: OperationState
    total: int
    processed: int
    succeeded: int
    created: datetime
    started: datetime | None = None
    completed: datetime | None = None

    @property
    def owner(self) -> Owner:
        return Owner(OWNER_KINDS[self.kind], self.owner_id)

    @property
    def progress(self) -> int:
        """0-100; only ``done`` means finished."""
        return 100 if self.total == 0 else min(100, self.processed * 100 // self.total)

    @property
    def done(self) -> bool:
        return self.state in (
            OperationState.COMPLETE,
            OperationState.COMPLETE_WITH_ERRORS,
            OperationState.FAILED,
        )


def decide_claim(
    partner_id: int,
    customer: Customer | None,
    device_ids: set[int],
    current: Claim | None,
    section: SectionType,
) -> ItemResult | None:
    """The outcome of claiming, or ``None`` when the claim is to be written.

    ``device_ids`` are the records the item's keys found (two or more is a conflict of
    identifiers); ``current`` is the claim the found device holds in ``section``.
    """
    if customer is None or customer.partner_id != partner_id:
        return ItemResult(
            ItemStatus.PERMISSION_DENIED,
            code="INVALID_CUSTOMER_ID",
            message="the customer does not exist or is not yours",
        )
    if len(device_ids) > 1:
        return ItemResult(
            ItemStatus.INVALID_IDENTIFIER,
            code="INVALID_IDENTIFIER_SET",
            message="the identifiers name different devices",
        )
    device_id = next(iter(device_ids), None)
    if current is not None:
        if current.customer_id == customer.id:
            return ItemResult(
                ItemStatus.DUPLICATE, device_id, "DUPLICATE_DEVICE", "already claimed for this customer"
            )
        return ItemResult(
            ItemStatus.SECTION_NOT_YOURS,
            device_id,
            "AUTHORIZATION_FAIL",
            "the device is claimed by another customer",
        )
    _ = section
    return None


def decide_owned(partner_id: int, device_ids: set[int], current: Claim | None) -> ItemResult | None:
    """For unclaim and metadata updates: the device must exist and be claimed by this partner."""
    if len(device_ids) > 1:
        return ItemResult(
            ItemStatus.INVALID_IDENTIFIER,
            code="INVALID_IDENTIFIER_SET",
            message="the identifiers name different devices",
        )
    if not device_ids:
        return ItemResult(ItemStatus.NOT_FOUND, code="INVALID_DEVICE", message="no such device")
    device_id = next(iter(device_ids))
    if current is None or current.partner_id != partner_id:
        return ItemResult(
            ItemStatus.SECTION_NOT_YOURS, device_id, "AUTHORIZATION_FAIL", "the device is not claimed by you"
        )
    return None
