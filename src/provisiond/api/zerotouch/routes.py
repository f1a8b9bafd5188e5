"""Routes of the zerotouch dialect."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

__all__ = ["owns_path", "render_unrouted", "router"]

router = APIRouter()


def owns_path(path: str) -> bool:
    """Whether an unknown path belongs to this dialect (for answering it in this format)."""
    return False


def render_unrouted(status: int) -> Response:
    """An unknown route or method under this dialect's paths, in its error format."""
    return Response(status_code=status)
