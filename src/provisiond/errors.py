"""The domain error tree.

Every rule in ``domain/`` and every use case in ``services/`` reports failure with one of these
classes; no HTTP status or SQL error ever crosses into those layers. Each API dialect owns one
table that maps these classes to its own wire error (see ``api/<dialect>/errors.py``)::

    ProvisiondError
    ├── InvalidInput            the request is well-formed but a value breaks a rule
    ├── NotFound                the named record does not exist (or is not the caller's)
    ├── AlreadyExists           a create met an existing record
    ├── PreconditionFailed      an etag (If-Match) did not match
    ├── Unauthorized            credentials missing, malformed, expired, forged or lacking a right
    ├── Throttled               the caller came back before the retry-after it was given
    └── StoreUnavailable        the database could not be reached or timed out
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "InvalidInput",
    "NotFound",
    "PreconditionFailed",
    "ProvisiondError",
    "StoreUnavailable",
    "Throttled",
    "Unauthorized",
]


class ProvisiondError(Exception):
    """Base of every error the domain and services raise on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ProvisiondError):
    """A value in an otherwise well-formed request breaks a domain rule."""


class NotFound(ProvisiondError):
    """The record does not exist, or exists but is hidden from this caller."""


class AlreadyExists(ProvisiondError):
    """A create met a record that already exists."""


class PreconditionFailed(ProvisiondError):
    """A conditional write found another etag than the one the caller holds."""


class Unauthorized(ProvisiondError):
    """The caller's credentials are missing, malformed, expired, forged, or lack the needed right."""


class Throttled(ProvisiondError):
    """The caller polled before the time it was told to wait; ``retry_after`` is in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(ProvisiondError):
    """The database could not serve the request (unreachable, timed out)."""
