"""Credential policies and the certificates they issued, as records; and what a registration got.

A credential policy is an issuing CA with the rules it issues by (validity, CRL location). An
enrollment names one (``credentialPolicyName``); a device of that enrollment that sends a CSR
gets a certificate, recorded here so that it can be listed and revoked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from provisiond.errors import InvalidInput

__all__ = [
    "DEFAULT_VALIDITY_DAYS",
    "CredentialPolicy",
    "IssuanceOutcome",
    "IssuedCertificate",
    "IssuedChain",
    "check_policy_name",
    "check_validity_days",
    "policy_key",
    "serial_text",
]

DEFAULT_VALIDITY_DAYS = 30
_NAME = re.compile(r"[A-Za-z0-9-]{3,50}")
_VALIDITY = (7, 90)


class IssuanceOutcome(StrEnum):
    """What a registration that sent a CSR got, recorded on its registration state."""

    ISSUED = "issued"
    NO_POLICY = "noCredentialPolicy"  # the enrollment names no credential policy
    POLICY_DELETED = "credentialPolicyDeleted"  # it names one that no longer exists


@dataclass(frozen=True, slots=True)
class CredentialPolicy:
    """A policy as listed (its CA key never leaves the store but to sign)."""

    name: str
    validity_days: int
    key_type: str
    crl_url: str | None
    chain_pem: str
    created: datetime
    crl_next_update: datetime | None = None


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """One certificate a policy issued, as the records know it."""

    serial: str
    policy: str
    registration_id: str
    sha256_thumbprint: str
    not_before: datetime
    not_after: datetime
    issued: datetime
    operation_id: str
    revoked: datetime | None = None


@dataclass(frozen=True, slots=True)
class IssuedChain:
    """What a registration operation carries once its certificate is signed and recorded:
    the serial, and the chain (DER, leaf first, root last) the device is given when assigned."""

    serial: str
    chain: tuple[bytes, ...]


def check_policy_name(name: str) -> str:
    """Names are 3 to 50 characters, letters, digits and ``-`` (Azure's rule)."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"credential policy name {name!r} must be 3 to 50 letters, digits or '-'")
    return name


def check_validity_days(days: int) -> int:
    """Certificates are valid 7 to 90 days (Azure's rule)."""
    if not _VALIDITY[0] <= days <= _VALIDITY[1]:
        raise InvalidInput(f"validity must be {_VALIDITY[0]} to {_VALIDITY[1]} days, not {days}")
    return days


def policy_key(name: str) -> str:
    """Policy names compare case-insensitively, like every other DPS name."""
    return name.lower()


def serial_text(serial: int | str) -> str:
    """A serial number as the records and the CLI show it: upper-case hex, no separators.

    The operator may type it with colons or in lower case (as ``openssl x509 -serial`` or a
    browser shows it).
    """
    if isinstance(serial, int):
        return f"{serial:X}"
    text = serial.replace(":", "").strip().upper()
    if not text or not re.fullmatch(r"[0-9A-F]+", text):
        raise InvalidInput(f"serial {serial!r} is not a hexadecimal serial number")
    return text.lstrip("0") or "0"
