"""How DPS service requests reach their handlers: tolerant paths and DPS-shaped failures.

Clients differ in the case of path segments (Node writes ``enrollmentgroups``) and in trailing
slashes, so the fixed segments are put in canonical form before routing; ids are left as sent.
Every failure inside a DPS route is rendered as a DPS error, never as a bare 500.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from provisiond.api.dps_common import dps_route_class
from provisiond.api.dps_service.errors import dps_error_for

__all__ = ["DpsPathMiddleware", "DpsRoute", "is_dps_service_path"]

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


class DpsPathMiddleware:
    """Rewrites DPS service paths to canonical form before the router sees them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            canonical = canonical_path(scope["path"])
            if canonical is not None and canonical != scope["path"]:
                scope = {**scope, "path": canonical}
        await self.app(scope, receive, send)


DpsRoute = dps_route_class(dps_error_for)
