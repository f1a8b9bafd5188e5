"""Azure Sphere ownership: tenants, device ids, and what claiming or releasing one device does.

A tenant owns devices; a device has at most one owner. Claiming is final through the API (as in
Azure Sphere); only the operator releases a device. Decisions the references leave open:

- A device id is exactly 128 hexadecimal characters. The public API's pattern is
  ``[a-zA-Z0-9-]{128}``; every real Sphere id is hex, so we refuse the rest as a typo early.
- Ids compare case-insensitively and are kept upper-case (the form ``azsphere`` prints).
- A well-formed id we have never seen is claimable: the record is created with ChipSku 0
  (MT3620AN), since nothing else about the chip is known.
- Claiming a device the tenant already owns succeeds and changes nothing.

The rules are pure: the store reports who owns a device, these functions decide the outcome.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from provisiond.domain.claims import ItemResult, ItemStatus, Operation, Owner, OwnerKind
from provisiond.errors import InvalidInput, NotFound

__all__ = [
    "CHIP_SKU_UNKNOWN",
    "CONFLICT",
    "DEVICE_ID_LENGTH",
    "MAX_BULK_CLAIM",
    "NOT_OWNED",
    "InvalidDeviceId",
    "InvalidDeviceList",
    "SphereDevice",
    "SphereOperation",
    "Tenant",
    "TooManyDevices",
    "UnknownDevice",
    "UnknownOperation",
    "decide_claim",
    "decide_release",
    "normalise_device_id",
    "normalise_device_ids",
]

DEVICE_ID_LENGTH = 128
MAX_BULK_CLAIM = 1000  # Devices - Bulk Claim takes at most 1,000 ids
CHIP_SKU_UNKNOWN = 0  # MT3620AN, the only ChipSku the public enum has

# ``ItemResult.code`` of the two ways an item can fail; each dialect renders them its own way.
CONFLICT = "Conflict"  # the device belongs to another tenant
NOT_OWNED = "NotOwned"  # a release of a device the tenant does not own

# ASCII classes on purpose: ``\w`` or ``str.isalnum`` would also take non-ASCII characters.
_DEVICE_ID_RE = re.compile(r"[0-9A-Fa-f]{128}")


class InvalidDeviceId(InvalidInput):
    """A device id that is not 128 hexadecimal characters."""


class InvalidDeviceList(InvalidInput):
    """A bulk claim that names no device id."""


class TooManyDevices(InvalidDeviceList):
    """More than 1,000 device ids in one bulk claim (nothing is written)."""


class UnknownOperation(NotFound):
    """No such operation, or it belongs to another tenant."""


class UnknownDevice(NotFound):
    """No such device among the tenant's."""


@dataclass(frozen=True, slots=True)
class Tenant:
    """``id`` is the public tenant id; ``owner_id`` the number that stands for the tenant in the
    durable-operations tables and ``sphere_devices`` (their owner columns are numeric)."""

    id: UUID
    owner_id: int
    name: str

    @property
    def owner(self) -> Owner:
        """The tenant as the owner of its operations."""
        return Owner(OwnerKind.TENANT, self.owner_id)


@dataclass(frozen=True, slots=True)
class SphereDevice:
    """What we know of a device. Device groups, products and OS updates are not modelled, so
    those fields stay ``None`` until something sets them."""

    device_id: str
    owner_id: int | None
    chip_sku: int = CHIP_SKU_UNKNOWN
    device_group_id: UUID | None = None
    product_id: UUID | None = None
    last_available_os_version: str | None = None
    last_installed_os_version: str | None = None
    last_os_update: datetime | None = None
    last_update_request: datetime | None = None


@dataclass(frozen=True, slots=True)
class SphereOperation:
    """A durable operation as a tenant sees it: its public id, and the one device of a single
    claim or release (``None`` for a bulk claim)."""

    id: UUID
    tenant_id: UUID
    device_id: str | None
    core: Operation


def normalise_device_id(text: str) -> str:
    """The stored (upper-case) form of a device id; ``InvalidDeviceId`` unless 128 hex chars."""
    if not _DEVICE_ID_RE.fullmatch(text):
        shown = f"{text[:16]!r}… ({len(text)} characters)"
        raise InvalidDeviceId(f"a device id is {DEVICE_ID_LENGTH} hexadecimal characters, not {shown}")
    return text.upper()


def normalise_device_ids(values: Sequence[str]) -> list[str]:
    """A bulk claim's ids in request order, normalised; refuses the whole list on any fault."""
    if not values:
        raise InvalidDeviceList("a bulk claim names 1 to 1,000 device ids, not none")
    if len(values) > MAX_BULK_CLAIM:
        raise TooManyDevices(f"at most {MAX_BULK_CLAIM} device ids per bulk claim, not {len(values)}")
    out: list[str] = []
    for index, value in enumerate(values):
        try:
            out.append(normalise_device_id(value))
        except InvalidDeviceId as exc:
            raise InvalidDeviceId(f"item {index}: {exc.message}") from None
    return out


def decide_claim(owner_id: int, current_owner: int | None) -> ItemResult | None:
    """The outcome of claiming a device whose owner is ``current_owner``; ``None`` means
    "write the claim" (the device is free or new)."""
    if current_owner is None:
        return None
    if current_owner == owner_id:
        return ItemResult(ItemStatus.DUPLICATE, message="already claimed by this tenant")
    return ItemResult(
        ItemStatus.SECTION_NOT_YOURS, code=CONFLICT, message="the device is claimed by another tenant"
    )


def decide_release(owner_id: int, current_owner: int | None) -> ItemResult | None:
    """The outcome of releasing a device; ``None`` means "clear its owner"."""
    if current_owner == owner_id:
        return None
    return ItemResult(
        ItemStatus.NOT_FOUND, code=NOT_OWNED, message="the device is not claimed by this tenant"
    )
