"""Zero-touch wire <-> claims core: request Structs to core items, core records to response JSON.

Decisions the references leave open (see ``docs/zerotouch.md``):

- proto3 JSON cannot tell ``""`` from unset, so blank identifier fields count as not given.
- The core applies one section type per batch, so an async request is processed in the section of
  its first item; an item naming another section is stored inert (it can have no effect) and
  reported ``SINGLE_DEVICE_STATUS_INVALID_SECTION_TYPE``.
- Google Workspace customers do not exist here: a claim for one is a per-device
  ``PERMISSION_DENIED``; ``findByOwner`` ignores their ids. SAMSUNG customers are treated the same.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Sequence
from typing import Any

from provisiond.api.zerotouch.errors import ZtError
from provisiond.api.zerotouch.schemas import (
    MAX_INT64,
    CompanyIn,
    DeviceIdentifierIn,
    DeviceMetadataIn,
    PartnerClaim,
    PartnerUnclaim,
    SectionTypeIn,
    UpdateMetadataArguments,
    echo,
)
from provisiond.domain.claims import (
    MAX_ITEMS,
    ClaimItem,
    Customer,
    Device,
    ItemResult,
    ItemStatus,
    OperationKind,
    Partner,
    SectionType,
    UnclaimItem,
    UpdateItem,
)
from provisiond.domain.device_identifiers import DeviceIdentifier

__all__ = [
    "MAX_INT32",
    "MAX_OWNER_IDS",
    "REFUSED",
    "WIRE_KEY",
    "check_count",
    "claim_items",
    "company_out",
    "customer_fields",
    "device_name",
    "device_out",
    "devices_page_out",
    "find_identifier",
    "find_limit",
    "identifier_in",
    "identifier_out",
    "metadata_in",
    "one_claim",
    "one_unclaim",
    "page_size",
    "page_token_in",
    "page_token_out",
    "required_section",
    "sync_failure",
    "unclaim_items",
    "update_items",
]

# The wire form stored with each operation item: {"zt": <request item>, "refused": <why>?}.
WIRE_KEY = "zt"
REFUSED = "refused"
_REFUSED_SECTION = "section"
_INERT_IDENTIFIER = DeviceIdentifier()  # names no device: the core refuses it without writing
MAX_OWNER_IDS = 1000  # customer ids in one findByOwner (the reseller library allows 100)


def _given(value: str | None) -> str | None:
    return value if value else None


def identifier_in(wire: DeviceIdentifierIn | None) -> DeviceIdentifier:
    """The core's identifier; ``imei2``/``meid2``/ChromeOS ids are not used for matching."""
    if wire is None:
        return DeviceIdentifier()
    return DeviceIdentifier(
        imei=_given(wire.imei),
        meid=_given(wire.meid),
        serial_number=_given(wire.serial_number),
        manufacturer=_given(wire.manufacturer),
        model=_given(wire.model),
    )


def metadata_in(wire: DeviceMetadataIn | None) -> dict[str, str]:
    return dict(wire.entries or {}) if wire is not None else {}


def required_section(value: SectionTypeIn | None, where: str) -> SectionType:
    """``sectionType`` is required; UNSPECIFIED is proto3's "not set". Its absence fails the request."""
    if value is None or value is SectionTypeIn.UNSPECIFIED:
        raise ZtError(400, f"Invalid JSON payload received. sectionType is required - at `{where}`")
    return SectionType(value.value)


def check_count(items: Sequence[Any], field: str) -> None:
    """More than 100,000 items fail the whole request, before anything is written."""
    if len(items) > MAX_ITEMS:
        raise ZtError(400, f"{field} holds {len(items)} items; at most {MAX_ITEMS} are accepted per request")


def _customer_of(claim: PartnerClaim, hidden: Collection[int]) -> int | None:
    """The core customer id, or ``None`` (a per-device PERMISSION_DENIED) when it is not one of ours.

    Exactly one of ``customerId`` and ``googleWorkspaceCustomerId`` must be given; Workspace
    customers and the hidden (SAMSUNG) customers do not exist in this dialect.
    """
    if claim.google_workspace_customer_id or claim.customer_id is None or claim.customer_id in hidden:
        return None
    return int(claim.customer_id)


def one_claim(claim: PartnerClaim, hidden: Collection[int]) -> ClaimItem:
    """A synchronous ``devices:claim``; a missing or doubled customer fails the request."""
    section = required_section(claim.section_type, "$.sectionType")
    if (claim.customer_id is None) == (not claim.google_workspace_customer_id):
        raise ZtError(400, "exactly one of customerId and googleWorkspaceCustomerId is required")
    return _claim_item(claim, section, hidden)


def _claim_item(claim: PartnerClaim, section: SectionType, hidden: Collection[int]) -> ClaimItem:
    metadata = metadata_in(claim.device_metadata) if claim.device_metadata is not None else None
    return ClaimItem(
        identifier_in(claim.device_identifier), _customer_of(claim, hidden), section, None, metadata
    )


def claim_items(claims: Sequence[PartnerClaim], hidden: Collection[int]) -> list[tuple[ClaimItem, Any]]:
    """``claimAsync`` items for ``ClaimsService.submit``: core item and stored wire form each."""
    check_count(claims, "claims")
    sections = [required_section(c.section_type, f"$.claims[{i}].sectionType") for i, c in enumerate(claims)]
    out: list[tuple[ClaimItem, Any]] = []
    for claim, section, request in zip(claims, sections, echo(claims), strict=True):
        wire: dict[str, Any] = {WIRE_KEY: request}
        if section == sections[0]:
            item = _claim_item(claim, section, hidden)
        else:
            item, wire[REFUSED] = ClaimItem(_INERT_IDENTIFIER, None, sections[0]), _REFUSED_SECTION
        out.append((item, wire))
    return out


def _device_id(value: int | None) -> int | None:
    return int(value) if value is not None else None


def _identifier_or_none(wire: DeviceIdentifierIn | None) -> DeviceIdentifier | None:
    return identifier_in(wire) if wire is not None else None


def one_unclaim(unclaim: PartnerUnclaim) -> UnclaimItem:
    """A synchronous ``devices:unclaim``; vacation mode is accepted and ignored."""
    section = required_section(unclaim.section_type, "$.sectionType")
    if unclaim.device_id is None and unclaim.device_identifier is None:
        raise ZtError(400, "deviceId or deviceIdentifier is required")
    return UnclaimItem(_device_id(unclaim.device_id), _identifier_or_none(unclaim.device_identifier), section)


def unclaim_items(unclaims: Sequence[PartnerUnclaim]) -> list[tuple[UnclaimItem, Any]]:
    """``unclaimAsync`` items for ``ClaimsService.submit``."""
    check_count(unclaims, "unclaims")
    sections = [
        required_section(u.section_type, f"$.unclaims[{i}].sectionType") for i, u in enumerate(unclaims)
    ]
    out: list[tuple[UnclaimItem, Any]] = []
    for unclaim, section, request in zip(unclaims, sections, echo(unclaims), strict=True):
        wire: dict[str, Any] = {WIRE_KEY: request}
        if section == sections[0]:
            item = UnclaimItem(
                _device_id(unclaim.device_id), _identifier_or_none(unclaim.device_identifier), section
            )
        else:
            item, wire[REFUSED] = UnclaimItem(None, None, sections[0]), _REFUSED_SECTION
        out.append((item, wire))
    return out


def update_items(updates: Sequence[UpdateMetadataArguments]) -> list[tuple[UpdateItem, Any]]:
    """``updateMetadataAsync`` items: the device's reseller metadata is replaced by ``entries``."""
    check_count(updates, "updates")
    return [
        (
            UpdateItem(
                _device_id(u.device_id),
                _identifier_or_none(u.device_identifier),
                metadata_in(u.device_metadata),
            ),
            {WIRE_KEY: request},
        )
        for u, request in zip(updates, echo(updates), strict=True)
    ]


def sync_failure(kind: OperationKind, result: ItemResult) -> ZtError | None:
    """The HTTP failure of a synchronous claim, unclaim or metadata update, or ``None`` if it worked.

    A device claimed by another customer is 409 ALREADY_EXISTS for a claim. For unclaim and
    metadata a device the partner does not hold is 404, whoever holds it, so nothing leaks; so is
    a customer that is not the partner's for a claim.
    """
    if result.ok:
        return None
    detail = f"{result.code}: {result.message}" if result.code else (result.message or result.status.value)
    if result.status is ItemStatus.INVALID_IDENTIFIER:
        return ZtError(400, f"deviceIdentifier is not valid ({detail})")
    if result.status is ItemStatus.PERMISSION_DENIED:
        return ZtError(404, "customer not found")
    if result.status is ItemStatus.SECTION_NOT_YOURS and kind is OperationKind.CLAIM:
        return ZtError(409, "the device is already claimed by another customer")
    return ZtError(404, "device not found among your claimed devices")


def customer_fields(company: CompanyIn | None) -> tuple[str, list[str], list[str]]:
    """Name, owner and admin emails of a ``customers.create`` body; output-only fields must be unset."""
    if company is None:
        raise ZtError(400, "customer is required")
    if company.company_id is not None or company.name:
        raise ZtError(400, "companyId and name are assigned by the server and must not be set")
    name = (company.company_name or "").strip()
    if not name:
        raise ZtError(400, "customer.companyName is required")
    owners, admins = list(company.owner_emails or ()), list(company.admin_emails or ())
    if not owners:
        raise ZtError(400, "customer.ownerEmails must name at least one account")
    for email in (*owners, *admins):
        local, at, domain = email.partition("@")
        if not (local and at and domain) or any(ch.isspace() for ch in email):
            raise ZtError(400, f"{email!r} is not an email address")
    return name, owners, admins


def company_out(partner_id: int, customer: Customer) -> dict[str, Any]:
    """A Company; ``ownerEmails`` is input-only on the real API, so it is not returned."""
    out: dict[str, Any] = {
        "companyId": str(customer.id),
        "companyName": customer.name,
        "name": f"partners/{partner_id}/customers/{customer.id}",
        "termsStatus": "TERMS_STATUS_NOT_ACCEPTED",  # nothing here accepts terms on a customer's behalf
    }
    if customer.admin_emails:
        out["adminEmails"] = list(customer.admin_emails)
    return out


def device_name(partner_id: int, device_id: int) -> str:
    return f"partners/{partner_id}/devices/{device_id}"


def identifier_out(identifier: DeviceIdentifier) -> dict[str, str]:
    """A DeviceIdentifier with the fields the record holds."""
    fields = {
        "imei": identifier.imei,
        "meid": identifier.meid,
        "serialNumber": identifier.serial_number,
        "manufacturer": identifier.manufacturer,
        "model": identifier.model,
    }
    return {k: v for k, v in fields.items() if v}


def device_out(partner: Partner, device: Device) -> dict[str, Any]:
    """A Device as this partner sees it: only its own claims are listed."""
    return {
        "deviceId": str(device.id),
        "name": device_name(partner.id, device.id),
        "deviceIdentifier": identifier_out(device.identifier),
        "deviceMetadata": {"entries": dict(device.metadata)},
        "claims": [
            {
                "ownerCompanyId": str(c.customer_id),
                "resellerId": str(c.partner_id),
                "sectionType": c.section_type.value,
            }
            for c in device.claims
            if c.partner_id == partner.id
        ],
    }


def devices_page_out(
    partner: Partner, devices: Sequence[Device], total: int, next_after: int | None, kind: str
) -> dict[str, Any]:
    """``{devices, totalSize, nextPageToken}``; the token is omitted on the last page."""
    out: dict[str, Any] = {"devices": [device_out(partner, d) for d in devices], "totalSize": total}
    if next_after is not None:
        out["nextPageToken"] = page_token_out(kind, next_after)
    return out


def find_identifier(wire: DeviceIdentifierIn | None) -> DeviceIdentifier:
    """A ``findByIdentifier`` query, normalised as stored identifiers are (IMEI trimmed, MEID upper)."""
    found = identifier_in(wire)
    if not (found.imei or found.meid or found.serial_number):
        raise ZtError(400, "deviceIdentifier needs an imei, meid or serialNumber")
    return DeviceIdentifier(
        found.imei.strip() if found.imei else None,
        found.meid.strip().upper() if found.meid else None,
        found.serial_number,
        found.manufacturer,
        found.model,
    )


# -- paging --------------------------------------------------------------------------------------


def page_token_out(kind: str, after: int) -> str:
    """An opaque token: the kind of listing and the last id returned."""
    return base64.urlsafe_b64encode(f"{kind}:{after}".encode()).decode().rstrip("=")


def page_token_in(kind: str, token: str | None) -> int | None:
    """The id to continue after, or ``None`` for the first page; a token of another kind is refused."""
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    found_kind, _, after = text.partition(":")
    valid = after.isascii() and after.isdigit() and len(after) <= 19 and int(after) <= MAX_INT64
    if found_kind != kind or not valid:
        raise ZtError(400, "pageToken is not valid")
    return int(after)


MAX_INT32 = 2**31 - 1


def page_size(value: str | None) -> int | None:
    """``customers.list`` pageSize: absent or 0 means everything (``None``).

    It is an int32 in Google's API, whose front end refuses a value beyond that range with 400.
    """
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 10 or int(value) > MAX_INT32:
        raise ZtError(400, f"pageSize must be an integer from 0 to {MAX_INT32}")
    return int(value) or None


def find_limit(value: int | None) -> int:
    """``find*`` limit: required, 1 to 100."""
    if value is None or not 1 <= value <= 100:
        raise ZtError(400, "limit is required and must be between 1 and 100")
    return int(value)
