"""DPS query specifications and keyset continuation tokens.

DPS documents neither its query grammar nor its default page size. The SDKs send
``SELECT * FROM enrollments`` (or ``enrollmentGroups``) or ``*``; those mean "all records" here,
and anything narrower is refused rather than silently answered with everything.
"""

from __future__ import annotations

import base64
import binascii
import json

from provisiond.errors import InvalidInput

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "check_query", "decode_token", "encode_token", "page_size"]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def check_query(text: object, collection: str) -> None:
    """Accept ``*`` or ``SELECT * FROM <collection>`` (case-insensitive); refuse anything else."""
    if not isinstance(text, str):
        raise InvalidInput("query must be a string")
    normalized = " ".join(text.split()).lower()
    # These strings are compared, never executed: the store pages with bound parameters.
    if normalized in ("*", f"select * from {collection.lower()}"):  # noqa: S608
        return
    raise InvalidInput(f"only 'SELECT * FROM {collection}' is supported")  # noqa: S608


def page_size(header: str | None) -> int:
    """The page size from ``x-ms-max-item-count``: default 100, at most 1000."""
    if header is None or not header.strip():
        return DEFAULT_PAGE_SIZE
    text = header.strip()
    if text.isascii() and text.isdigit() and len(text) > 9:
        return MAX_PAGE_SIZE  # however many digits: int() refuses more than 4,300 of them
    try:
        size = int(text)
    except ValueError as exc:
        raise InvalidInput("x-ms-max-item-count must be an integer") from exc
    if size < 1:
        raise InvalidInput("x-ms-max-item-count must be at least 1")
    return min(size, MAX_PAGE_SIZE)


def encode_token(last_key: str) -> str:
    """An opaque token that resumes after ``last_key``."""
    return base64.urlsafe_b64encode(json.dumps({"after": last_key}).encode()).decode()


def decode_token(token: str | None) -> str | None:
    """The key a continuation token resumes after; ``None`` for the first page."""
    if token is None or not token.strip():
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token.strip().encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise InvalidInput("x-ms-continuation is not a token this service issued") from exc
    if not isinstance(value, str):
        raise InvalidInput("x-ms-continuation is not a token this service issued")
    return value
