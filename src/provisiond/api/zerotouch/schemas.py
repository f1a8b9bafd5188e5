"""Wire models of the zero-touch reseller API v1 requests, with Google's exact field names.

Bodies are decoded by msgspec straight into these Structs: no tree of dicts is built first, which
matters for 100,000-item requests. Decoding is strict (a string is not a bool) except for int64
fields, which proto3 JSON writes as decimal strings and which we also accept as numbers
(docs/zerotouch.md). Unknown fields are ignored: newer clients send fields (``imei2``) we do not use.
Responses are built by ``mapping.py`` as plain JSON values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, TypeVar

import msgspec

from provisiond import wirejson

__all__ = [
    "MAX_INT64",
    "ClaimDeviceRequest",
    "ClaimDevicesRequest",
    "CompanyIn",
    "CreateCustomerRequest",
    "DeviceIdentifierIn",
    "DeviceMetadataIn",
    "FindDevicesByDeviceIdentifierRequest",
    "FindDevicesByOwnerRequest",
    "Int64",
    "PartnerClaim",
    "PartnerUnclaim",
    "SectionTypeIn",
    "UnclaimDeviceRequest",
    "UnclaimDevicesRequest",
    "UpdateDeviceMetadataInBatchRequest",
    "UpdateDeviceMetadataRequest",
    "UpdateMetadataArguments",
    "WireDecodeError",
    "decode",
    "echo",
    "parse_int64",
]

MAX_INT64 = 2**63 - 1
_INT64_RE = re.compile(r"-?[0-9]{1,19}")  # ASCII digits only: int() would also take "١٢"


_EXACT_FLOAT = 2**53  # the largest range in which a JSON number read as a double is exact


class Int64(int):
    """An int64 field: a decimal string on the wire (a JSON number is accepted too)."""


def parse_int64(value: object) -> Int64:
    """``value`` (a decimal string or an integral JSON number) as an int64; ``ValueError`` if not.

    ``5.0`` and ``1e3`` are integral numbers too: JSON Schema's ``integer`` takes them, and so
    does protobuf's JSON parser."""
    if isinstance(value, float) and value.is_integer():  # 5.0, 1e3, as proto3 JSON reads them
        if abs(value) > _EXACT_FLOAT:  # 12345678901234567.0 arrives rounded: another id
            raise ValueError("Expected an int64 (a number this large must be a decimal string)")
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INT64_RE.fullmatch(value):
        number = int(value)
    else:
        raise ValueError("Expected an int64 (a decimal string)")
    if not -MAX_INT64 - 1 <= number <= MAX_INT64:
        raise ValueError("Expected an int64 (out of range)")
    return Int64(number)


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Int64:
        return parse_int64(value)
    raise NotImplementedError(f"no decoder for {kind!r}")


def _enc_hook(value: Any) -> Any:
    if isinstance(value, Int64):
        return str(value)  # int64 goes back on the wire as a string
    raise NotImplementedError(f"cannot encode {type(value)!r}")


class SectionTypeIn(StrEnum):
    UNSPECIFIED = "SECTION_TYPE_UNSPECIFIED"
    SIM_LOCK = "SECTION_TYPE_SIM_LOCK"
    ZERO_TOUCH = "SECTION_TYPE_ZERO_TOUCH"


class _Wire(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """Base of every request model: camelCase names, unset fields left out when echoed."""


class DeviceIdentifierIn(_Wire):
    imei: str | None = None
    imei2: str | None = None
    meid: str | None = None
    meid2: str | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    device_type: str | None = None
    chrome_os_attested_device_id: str | None = None


class DeviceMetadataIn(_Wire):
    entries: dict[str, str] | None = None


class CompanyIn(_Wire):
    company_id: Int64 | None = None
    company_name: str | None = None
    name: str | None = None
    owner_emails: list[str] | None = None
    admin_emails: list[str] | None = None
    language_code: str | None = None
    skip_welcome_email: bool | None = None


class CreateCustomerRequest(_Wire):
    customer: CompanyIn | None = None


class PartnerClaim(_Wire):
    """One claim: ``ClaimDeviceRequest`` has the same fields."""

    device_identifier: DeviceIdentifierIn | None = None
    section_type: SectionTypeIn | None = None
    customer_id: Int64 | None = None
    google_workspace_customer_id: str | None = None
    device_metadata: DeviceMetadataIn | None = None
    configuration_id: Int64 | None = None
    pre_provisioning_token: str | None = None
    simlock_profile_id: Int64 | None = None


ClaimDeviceRequest = PartnerClaim


class PartnerUnclaim(_Wire):
    """One unclaim: ``UnclaimDeviceRequest`` has the same fields."""

    device_id: Int64 | None = None
    device_identifier: DeviceIdentifierIn | None = None
    section_type: SectionTypeIn | None = None
    vacation_mode_days: int | None = None
    vacation_mode_expire_time: str | None = None


UnclaimDeviceRequest = PartnerUnclaim


class UpdateMetadataArguments(_Wire):
    device_id: Int64 | None = None
    device_identifier: DeviceIdentifierIn | None = None
    device_metadata: DeviceMetadataIn | None = None


class ClaimDevicesRequest(_Wire):
    claims: list[PartnerClaim] | None = None


class UnclaimDevicesRequest(_Wire):
    unclaims: list[PartnerUnclaim] | None = None


class UpdateDeviceMetadataInBatchRequest(_Wire):
    updates: list[UpdateMetadataArguments] | None = None


class UpdateDeviceMetadataRequest(_Wire):
    device_metadata: DeviceMetadataIn | None = None


class FindDevicesByDeviceIdentifierRequest(_Wire):
    device_identifier: DeviceIdentifierIn | None = None
    limit: Int64 | None = None
    page_token: str | None = None


class FindDevicesByOwnerRequest(_Wire):
    customer_id: list[Int64] | None = None
    google_workspace_customer_id: list[str] | None = None
    section_type: SectionTypeIn | None = None
    limit: Int64 | None = None
    page_token: str | None = None


class WireDecodeError(Exception):
    """The body is not JSON, or not of the request's shape and types (the message says where)."""


T = TypeVar("T")


def decode(body: bytes, model: type[T]) -> T:
    """``body`` decoded straight into ``model``; an empty body is ``{}``."""
    try:
        return wirejson.decode(body if body.strip() else b"{}", model, dec_hook=_dec_hook)
    except wirejson.MalformedJson as exc:  # not JSON, too deep, or not the request's shape
        raise WireDecodeError(str(exc)) from exc


def echo(items: Sequence[_Wire]) -> list[Any]:
    """Request items as JSON values, as each is repeated in an operation's ``perDeviceStatus``.

    One call for the whole list: converting 100,000 items one by one costs several times more.
    """
    converted: list[Any] = msgspec.to_builtins(items, enc_hook=_enc_hook)
    return converted
