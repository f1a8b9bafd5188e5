"""Device identifier rules of the zero-touch reseller API and the reseller-library model.

A device is named by hardware IDs (IMEI, MEID, serial number) plus the manufacturer and model it
reports (docs/zerotouch.md, docs/reseller.md). This module checks that a claim names a device well
enough to find it again, normalises the IDs, and derives the keys a device is stored and found under.

Decisions the references leave open:

- ``None`` means "not given". A given but blank IMEI, MEID or serial fails with that ID's error; a
  blank manufacturer or model counts as not given (proto3 JSON cannot tell "" from unset).
- An IMEI is stripped of outer whitespace only. An MEID keeps its optional check digit, but keys
  use only its 14 digits: the check digit is not part of the MEID (3GPP2 S.R0048).
- Samsung ignores all but the hardware IDs, so its keys use manufacturer ``"samsung"`` and an empty
  model; its IMEI and MEID keys then equal those of a Google claim with manufacturer ``samsung``.
- Manufacturer and model match case-folded; the serial matches exactly (zero-touch: case-sensitive).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from provisiond.errors import InvalidInput

__all__ = [
    "DEFAULT_MANUFACTURERS",
    "DEFAULT_MANUFACTURER_RULES",
    "MAX_SERIAL_LENGTH",
    "DeviceIdentifier",
    "InvalidDeviceIdentifier",
    "InvalidIdentifierSet",
    "InvalidImei",
    "InvalidManufacturer",
    "InvalidMeid",
    "InvalidModel",
    "InvalidSerial",
    "ManufacturerRules",
    "Vendor",
    "imei_check_digit",
    "is_valid_imei",
    "is_valid_meid",
    "lookup_keys",
    "meid_check_digit",
    "normalise_meid",
    "validate",
]

MAX_SERIAL_LENGTH = 128
# ASCII classes on purpose: ``\d`` and ``str.isdigit`` also accept non-ASCII digits.
_IMEI_RE = re.compile(r"[0-9]{15}")
_DIGITS14_RE = re.compile(r"[0-9]{14}")
_HEX14_RE = re.compile(r"[0-9A-F]{14}")
_MEID_RE = re.compile(r"[0-9A-F]{14,15}")


class Vendor(StrEnum):
    """The claims back end; values match the ``google/`` and ``samsung/`` operation-id prefixes."""

    GOOGLE = "google"
    SAMSUNG = "samsung"


@dataclass(frozen=True)
class DeviceIdentifier:
    """The hardware IDs and build values that name one manufactured device (wire ``DeviceIdentifier``)."""

    imei: str | None = None
    meid: str | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    model: str | None = None


class InvalidDeviceIdentifier(InvalidInput):
    """Base of the identifier errors; ``code`` is the reseller-library ErrorCode the dialects emit."""

    code: ClassVar[str] = "INVALID_PARAM_DEFAULT"


class InvalidImei(InvalidDeviceIdentifier):
    code = "INVALID_DEVICE_IMEI"  # not 15 decimal digits ending in its Luhn check digit


class InvalidMeid(InvalidDeviceIdentifier):
    code = "INVALID_DEVICE_MEID"  # not 14 hex digits, or a wrong check digit


class InvalidSerial(InvalidDeviceIdentifier):
    code = "INVALID_DEVICE_SERIAL"  # blank, too long, padded, or holding control characters


class InvalidIdentifierSet(InvalidDeviceIdentifier):
    code = "INVALID_IDENTIFIER_SET"  # too few fields to name a device for the vendor


class InvalidManufacturer(InvalidDeviceIdentifier):
    code = "INVALID_MANUFACTURER"  # not on the allow-list


class InvalidModel(InvalidDeviceIdentifier):
    code = "INVALID_MODEL"  # not on the list configured for its manufacturer


def _luhn_check_digit(body: str, base: int) -> int:
    """Luhn over ``body`` in ``base``: double every second digit from the right, sum the digits.

    Written with slices and a lookup table because a bulk claim checks 100,000 IMEIs."""
    doubled = _DOUBLED[base]
    digits = [int(char, base) for char in body]
    total = sum(doubled[d] for d in digits[-1::-2]) + sum(digits[-2::-2])
    return -total % base


_DOUBLED = {base: [(2 * d) // base + (2 * d) % base for d in range(base)] for base in (10, 16)}


def imei_check_digit(first14: str) -> str:
    """The IMEI check digit over its TAC and serial (3GPP TS 23.003 Annex B); to build test IMEIs."""
    if not _DIGITS14_RE.fullmatch(first14):
        raise ValueError("an IMEI check digit is computed over exactly 14 decimal digits")
    return str(_luhn_check_digit(first14, 10))


def is_valid_imei(value: str) -> bool:
    """Whether ``value`` is exactly 15 decimal digits whose last is the Luhn digit of the rest."""
    return bool(_IMEI_RE.fullmatch(value)) and imei_check_digit(value[:14]) == value[14]


def meid_check_digit(first14: str) -> str:
    """The MEID check digit (3GPP2 S.R0048): decimal Luhn when all 14 digits are decimal (the MEID
    is then an IMEI body), else Luhn in base 16. python-stdnum's ``meid`` module agrees."""
    body = first14.upper()
    if not _HEX14_RE.fullmatch(body):
        raise ValueError("an MEID check digit is computed over exactly 14 hexadecimal digits")
    base = 10 if _DIGITS14_RE.fullmatch(body) else 16
    return format(_luhn_check_digit(body, base), "X")


def normalise_meid(value: str) -> str:
    """``value`` stripped and upper-cased, its optional check digit verified; idempotent."""
    meid = value.strip().upper()
    if not _MEID_RE.fullmatch(meid):
        raise InvalidMeid("meid must be 14 hexadecimal digits, optionally followed by a check digit")
    if len(meid) == 15 and meid_check_digit(meid[:14]) != meid[14]:
        raise InvalidMeid("the check digit of the meid does not match its 14 digits")
    return meid


def is_valid_meid(value: str) -> bool:
    """Whether ``value`` is an MEID that :func:`normalise_meid` accepts."""
    try:
        normalise_meid(value)
    except InvalidMeid:
        return False
    return True


def _check_serial(serial: str) -> str:
    """The serial, exactly as given, if it is fit to be a case-sensitive lookup key."""
    # Stripping would silently merge two distinct exact keys, so outer whitespace is refused instead.
    if not serial or serial != serial.strip():
        raise InvalidSerial("serialNumber must not be blank or start or end with whitespace")
    if len(serial) > MAX_SERIAL_LENGTH:
        raise InvalidSerial(f"serialNumber is longer than {MAX_SERIAL_LENGTH} characters")
    if any(unicodedata.category(char) == "Cc" for char in serial):
        raise InvalidSerial("serialNumber must not contain control characters")
    return serial


class ManufacturerRules:
    """The allowed manufacturers and, optionally, per manufacturer, the allowed models.

    Zero-touch checks both against its published name lists; those lists change, so ours is
    configuration. Names are compared case-folded. A manufacturer without a model list accepts any
    model, so INVALID_MODEL arises only where a list is configured.
    """

    __slots__ = ("_manufacturers", "_models")

    def __init__(
        self, manufacturers: Iterable[str], models: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        self._manufacturers = frozenset(name.casefold() for name in manufacturers)
        self._models = {
            maker.casefold(): frozenset(model.casefold() for model in names)
            for maker, names in (models or {}).items()
        }
        unknown = set(self._models) - self._manufacturers
        if unknown:
            raise ValueError(f"model lists name manufacturers not allowed: {sorted(unknown)}")

    def allows_manufacturer(self, manufacturer: str) -> bool:
        """Whether ``manufacturer`` is on the allow-list, ignoring case."""
        return manufacturer.casefold() in self._manufacturers

    def allows_model(self, manufacturer: str, model: str) -> bool:
        """Whether ``model`` is allowed for ``manufacturer``; true when no list is configured."""
        allowed = self._models.get(manufacturer.casefold())
        return allowed is None or model.casefold() in allowed


# Build.MANUFACTURER values of well-known Android makers; deployments pass their own rules.
DEFAULT_MANUFACTURERS: tuple[str, ...] = (
    *("Google", "samsung", "motorola", "Motorola Solutions", "LENOVO", "Sony", "LGE", "HUAWEI"),
    *("HONOR", "Xiaomi", "OnePlus", "OPPO", "vivo", "realme", "Nokia", "HMD Global", "ZTE"),
    *("Zebra Technologies", "Honeywell", "Panasonic", "SHARP", "KYOCERA", "FUJITSU", "asus"),
    *("TCL", "Alcatel", "BlackBerry", "Essential Products", "Fairphone", "Cat", "Bullitt"),
    *("Crosscall", "Sonim", "Unitech", "Datalogic", "Point Mobile", "Bluebird", "CipherLab"),
    *("Urovo", "Newland", "Spectralink", "Ascom", "Getac", "Elo"),
)
DEFAULT_MANUFACTURER_RULES = ManufacturerRules(DEFAULT_MANUFACTURERS)


def _given(value: str | None) -> str | None:
    """A manufacturer or model as given, or None when blank (proto3 JSON cannot tell "" from unset)."""
    return value if value is not None and value.strip() else None


def validate(
    identifier: DeviceIdentifier,
    vendor: Vendor,
    manufacturers: ManufacturerRules = DEFAULT_MANUFACTURER_RULES,
) -> DeviceIdentifier:
    """The normalised identifier if it names a device well enough for ``vendor``, else raise.

    Each given hardware ID is checked first, so a malformed one is reported as such rather than as
    a missing set. Samsung needs one of IMEI, MEID or serial and ignores the rest (docs/reseller.md).
    Google needs IMEI or MEID plus manufacturer (cellular), or serial, manufacturer and model
    (Wi-Fi only) (docs/zerotouch.md), and the manufacturer and model must pass ``manufacturers``.
    """
    imei = identifier.imei.strip() if identifier.imei is not None else None
    if imei is not None and not is_valid_imei(imei):
        raise InvalidImei("imei must be 15 decimal digits ending in its Luhn check digit")
    meid = normalise_meid(identifier.meid) if identifier.meid is not None else None
    serial = _check_serial(identifier.serial_number) if identifier.serial_number is not None else None
    result = DeviceIdentifier(imei, meid, serial, identifier.manufacturer, identifier.model)

    if vendor is Vendor.SAMSUNG:
        if imei is None and meid is None and serial is None:
            raise InvalidIdentifierSet("a Samsung device needs one of imei, meid or serialNumber")
        return result

    manufacturer, model = _given(identifier.manufacturer), _given(identifier.model)
    cellular = imei is not None or meid is not None
    wifi_only = serial is not None and model is not None
    if manufacturer is None or not (cellular or wifi_only):
        raise InvalidIdentifierSet(
            "a device needs imei or meid plus manufacturer, or serialNumber, manufacturer and model"
        )
    if not manufacturers.allows_manufacturer(manufacturer):
        raise InvalidManufacturer(f"manufacturer {manufacturer!r} is not supported")
    if model is not None and not manufacturers.allows_model(manufacturer, model):
        raise InvalidModel(f"model {model!r} is not supported for manufacturer {manufacturer!r}")
    return result


def lookup_keys(identifier: DeviceIdentifier, vendor: Vendor = Vendor.GOOGLE) -> list[tuple[str, ...]]:
    """The keys a device is stored and found under, one per complete identifier set it holds.

    ``("imei", manufacturer, imei)``, ``("meid", manufacturer, meid14)`` and
    ``("serial", manufacturer, model, serial)``, with manufacturer and model case-folded and the
    serial exact. Pass an identifier :func:`validate` returned; a set missing a part yields no key.
    """
    manufacturer, model = _given(identifier.manufacturer), _given(identifier.model)
    if vendor is Vendor.SAMSUNG:
        manufacturer, model = "samsung", ""
    if manufacturer is None:
        return []
    manufacturer, model = manufacturer.casefold(), model and model.casefold()
    keys: list[tuple[str, ...]] = []
    if identifier.imei is not None:
        keys.append(("imei", manufacturer, identifier.imei.strip()))
    if identifier.meid is not None:
        keys.append(("meid", manufacturer, identifier.meid.strip().upper()[:14]))
    if identifier.serial_number is not None and model is not None:
        keys.append(("serial", manufacturer, model, identifier.serial_number))
    return keys
