"""Device API paths, case-insensitive in their fixed segments, and DPS-shaped failures."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from provisiond.api.dps_common import dps_route_class
from provisiond.api.dps_device.errors import device_error_for

__all__ = ["DevicePathMiddleware", "DeviceRoute", "is_dps_device_path"]

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
    segments = path.strip("/").split("/")
    return len(segments) >= 2 and segments[1].lower() == "registrations"


class DevicePathMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            canonical = canonical_path(scope["path"])
            if canonical is not None and canonical != scope["path"]:
                scope = {**scope, "path": canonical}
        await self.app(scope, receive, send)


DeviceRoute = dps_route_class(device_error_for)
