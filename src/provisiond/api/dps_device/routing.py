"""Device API paths: which are the device API's, and their canonical form (fixed segments are
case-insensitive; the edge's ``CanonicalPathMiddleware`` applies it before routing)."""

from __future__ import annotations

__all__ = ["canonical_path", "is_dps_device_path"]

_ACTIONS = {"register": "register", "operations": "operations"}


def canonical_path(path: str) -> str | None:
    """``/{idScope}/registrations/{id}[/register | /operations/{op}]`` in canonical form."""
    segments = path.strip("/").split("/")
    if len(segments) not in (3, 4, 5) or segments[1].lower() != "registrations":
        return None
    segments[1] = "registrations"
    if len(segments) >= 4:
        segments[3] = _ACTIONS.get(segments[3].lower(), segments[3])
    return "/" + "/".join(segments)


def is_dps_device_path(path: str) -> bool:
    """Whether a path belongs to this dialect: any first segment (the id scope), then ``registrations``."""
    segments = path.strip("/").split("/")
    return len(segments) >= 2 and segments[1].lower() == "registrations"
