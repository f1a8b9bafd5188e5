"""Shared access policies of a DPS instance and the rights each route needs."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from provisiond.errors import InvalidInput

__all__ = ["OWNER_POLICY", "Policy", "Right", "check_policy_name", "new_policy_key", "parse_rights"]

OWNER_POLICY = "provisioningserviceowner"


class Right(StrEnum):
    SERVICE_CONFIG = "ServiceConfig"
    ENROLLMENT_READ = "EnrollmentRead"
    ENROLLMENT_WRITE = "EnrollmentWrite"
    REGISTRATION_STATUS_READ = "RegistrationStatusRead"
    REGISTRATION_STATUS_WRITE = "RegistrationStatusWrite"
    DEVICE_CONNECT = "DeviceConnect"


ALL_RIGHTS = frozenset(Right)


@dataclass(frozen=True, slots=True)
class Policy:
    """A named pair of keys and the rights a token signed with either key carries."""

    name: str
    primary_key: str
    secondary_key: str
    rights: frozenset[Right]

    def connection_string(self, host: str) -> str:
        """``HostName=…;SharedAccessKeyName=…;SharedAccessKey=…`` with the primary key (three parts)."""
        return f"HostName={host};SharedAccessKeyName={self.name};SharedAccessKey={self.primary_key}"


_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_policy_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise InvalidInput("policy names are 1-64 characters: alphanumerics and '._-'")
    return name


def parse_rights(text: str) -> frozenset[Right]:
    """Parse ``R1,R2`` (case-insensitive names of ``Right``)."""
    by_lower = {right.value.lower(): right for right in Right}
    rights = set()
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in by_lower:
            raise InvalidInput(f"unknown right {part.strip()!r}; known: {', '.join(r.value for r in Right)}")
        rights.add(by_lower[name])
    if not rights:
        raise InvalidInput("a policy needs at least one right")
    return frozenset(rights)


def new_policy_key() -> str:
    """A random 32-byte key in base64."""
    return base64.b64encode(secrets.token_bytes(32)).decode()
