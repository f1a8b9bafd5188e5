"""``GET /metrics``: Prometheus metrics, for operators and scrapers; never anonymous.

Two credentials open it: a DPS service SAS of a policy with the ``ServiceConfig`` right (the
owner policy has it), or ``Authorization: Bearer <token>`` with the token in the file
``PROVISIOND_METRICS_TOKEN_FILE`` names (what Prometheus's ``credentials_file`` sends; the file is
read per scrape, so replacing it rotates the token without a restart). The families and how they
are combined across processes are ``telemetry.py``'s; the database's figures are sampled here.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from provisiond import telemetry
from provisiond.api.context import context
from provisiond.api.dps_service.auth import service_auth
from provisiond.api.dps_service.errors import POLICY
from provisiond.api.edge import Dialect
from provisiond.config import Settings
from provisiond.domain.policies import Right

__all__ = ["DIALECT", "router"]

router = APIRouter(route_class=POLICY.route_class)


def _bearer_ok(request: Request, settings: Settings) -> bool:
    """Whether the request carries the configured metrics bearer token (constant-time compare)."""
    header = request.headers.get("authorization", "")
    if settings.metrics_token_file is None or not header.lower().startswith("bearer "):
        return False
    try:
        expected = settings.metrics_token_file.read_text().strip()
    except OSError:
        return False
    return bool(expected) and hmac.compare_digest(header[7:].strip().encode(), expected.encode())


@router.get("/metrics", name="metrics")
async def metrics(request: Request) -> Response:
    ctx = context(request)
    if not _bearer_ok(request, ctx.settings):
        await service_auth(request).authorize(request, Right.SERVICE_CONFIG)
    connections: Callable[[], tuple[int, int]] = request.app.state.open_connections
    telemetry.open_connections(*connections())
    operations, backlog = await ctx.metrics.sample()
    return Response(telemetry.exposition(operations, backlog), media_type=CONTENT_TYPE_LATEST)


DIALECT = Dialect("metrics", (router,), POLICY)
