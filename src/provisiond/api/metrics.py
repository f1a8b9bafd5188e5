"""``GET /metrics``: Prometheus metrics, for operators; needs a service token with ServiceConfig.

Every route authenticates, this one included: the token is a DPS service SAS of a policy that has
the ``ServiceConfig`` right (the owner policy has it). The MQTT connection count comes from the
``mqtt_connections`` callable ``create_app`` leaves in the app state: the server owns the sessions.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from provisiond.api.dps_service.auth import service_auth
from provisiond.api.dps_service.errors import POLICY
from provisiond.api.edge import Dialect
from provisiond.domain.policies import Right

__all__ = ["DIALECT", "router"]

MQTT_CONNECTIONS = Gauge("provisiond_mqtt_connections", "MQTT connections open now (TLS and WebSocket)")

router = APIRouter(route_class=POLICY.route_class)


@router.get("/metrics", name="metrics")
async def metrics(request: Request) -> Response:
    await service_auth(request).authorize(request, Right.SERVICE_CONFIG)
    connections: Callable[[], int] = request.app.state.mqtt_connections
    MQTT_CONNECTIONS.set(connections())
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


DIALECT = Dialect("metrics", (router,), POLICY)
