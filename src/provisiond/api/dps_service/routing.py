"""Which paths are the DPS service API's, and their canonical form.

Clients differ in the case of path segments (Node writes ``enrollmentgroups``) and in trailing
slashes, so the fixed segments are put in canonical form before routing (by the edge's
``CanonicalPathMiddleware``); ids are left as sent.
"""

from __future__ import annotations

__all__ = ["canonical_path", "is_dps_service_path"]

_COLLECTIONS = {
    "enrollments": "enrollments",
    "enrollmentgroups": "enrollmentGroups",
    "registrations": "registrations",
}
_ACTIONS = {"query": "query", "attestationmechanism": "attestationmechanism"}


def canonical_path(path: str) -> str | None:
    """The canonical form of a DPS service path, or ``None`` if the path is not one."""
    segments = path.strip("/").split("/")
    collection = _COLLECTIONS.get(segments[0].lower())
    if collection is None or len(segments) > 3:
        return None
    segments[0] = collection
    if len(segments) == 3:
        segments[2] = _ACTIONS.get(segments[2].lower(), segments[2])
    elif len(segments) == 2 and segments[1].lower() == "query":
        segments[1] = "query"
    return "/" + "/".join(segments)


def is_dps_service_path(path: str) -> bool:
    """Whether a path belongs to this dialect (for answering unknown routes in its format)."""
    return path.strip("/").split("/", 1)[0].lower() in _COLLECTIONS
