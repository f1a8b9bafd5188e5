"""Which custom-allocation webhook URLs the instance may call.

A webhook URL makes the server send requests wherever an enrollment writer says, so only URLs
that match the operator's allow-list are called, and plain ``http`` only when the operator
allows it (``https`` is the default expectation, as in DPS).
"""

from __future__ import annotations

import fnmatch
import urllib.parse
from collections.abc import Sequence

from provisiond.errors import InvalidInput

__all__ = ["check_webhook_url", "redact_webhook_url"]


def check_webhook_url(url: str, allowlist: Sequence[str], allow_http: bool) -> None:
    """Raise ``InvalidInput`` unless ``url`` is absolute http(s) and matches an allow-list pattern."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("webhookUrl must be an absolute http(s) URL")
    if parts.scheme == "http" and not allow_http:
        raise InvalidInput("webhookUrl must use https (plain http is not allowed on this instance)")
    if not any(fnmatch.fnmatchcase(url, pattern) for pattern in allowlist):
        raise InvalidInput("webhookUrl is not in this instance's webhook allow-list")


def redact_webhook_url(url: str) -> str:
    """The URL as a webhook request shows it: the query (which may hold a function key) masked."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(query="****")) if parts.query else url
