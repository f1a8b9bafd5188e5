"""Identifier rules of DPS: registration ids, enrollment group ids, id scopes."""

from __future__ import annotations

import re
import secrets

from provisiond.errors import InvalidInput

__all__ = ["ID_PATTERN", "MAX_ID_LENGTH", "check_enrollment_id", "id_key", "new_id_scope"]

MAX_ID_LENGTH = 128
# Alphanumerics and ':' '.' '_' '-', with no special character at either end (DPS service spec).
# Also what the OpenAPI documents publish as the ids' pattern.
ID_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9:._-]*[A-Za-z0-9])?$"
_ID_RE = re.compile(ID_PATTERN.strip("^$"))


def check_enrollment_id(value: object, what: str = "registrationId") -> str:
    """Return ``value`` if it is a valid registration or enrollment group id, else raise."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what} is required and must be a string")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInput(f"{what} is longer than {MAX_ID_LENGTH} characters")
    if not _ID_RE.fullmatch(value):
        raise InvalidInput(
            f"{what} may hold only alphanumerics and ':._-', with no special character at either end"
        )
    return value


def id_key(value: str) -> str:
    """The case-folded form under which ids are stored: DPS ids are case-insensitive."""
    return value.lower()


def new_id_scope() -> str:
    """A fresh id scope in DPS style: ``0ne`` followed by 8 upper-case hex digits."""
    return "0ne" + secrets.token_hex(4).upper()
