"""``create_app(settings, services)``: the ASGI application with every registered dialect mounted.

The app builds nothing itself: ``services`` comes from ``wiring.running`` and is entered for the
app's lifespan, so the same app serves a real process (the server opens the database) and a
test (which hands its own database in).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from provisiond import __version__
from provisiond.api.audit_edge import AuditOriginMiddleware
from provisiond.api.client_certs import ClientCertificateMiddleware
from provisiond.api.context import AppContext
from provisiond.api.dialects import DIALECTS
from provisiond.api.dps_device.mqtt.session import MqttSession
from provisiond.api.edge import CanonicalPathMiddleware, owner_of
from provisiond.api.http import json_response
from provisiond.api.http_metrics import HttpMetricsMiddleware
from provisiond.config import Settings

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    services: AbstractAsyncContextManager[AppContext],
    *,
    mqtt_sessions: set[MqttSession] | None = None,
) -> FastAPI:
    """The application; ``services`` (``wiring.running(…)``) runs for as long as its lifespan.

    ``mqtt_sessions`` is the server's registry of open MQTT sessions, which MQTT over WebSocket
    joins too; ``/metrics`` reads its size through ``app.state.mqtt_connections``.
    """
    sessions: set[MqttSession] = set() if mqtt_sessions is None else mqtt_sessions

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with services as ctx:
            app.state.ctx = ctx
            yield

    # No app-wide /openapi.json: it answered without credentials and described no body. Each
    # dialect serves its own document behind its own authentication (api/openapi.py).
    app = FastAPI(
        title="provisiond",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.mqtt_sessions = sessions
    app.state.mqtt_connections = lambda: len(sessions)
    app.state.open_connections = lambda: (0, len(sessions))  # (https, mqtt); the server says more
    dialects = [dialect for dialect in DIALECTS if dialect.enabled(settings)]
    # Inside the audit origin, so its log line carries the request id and the actor.
    app.add_middleware(HttpMetricsMiddleware, dialects=dialects)
    app.add_middleware(ClientCertificateMiddleware, trusted_proxies=settings.trusted_proxies)
    app.add_middleware(AuditOriginMiddleware)
    canonicalizers = [d.canonical_path for d in dialects if d.canonical_path is not None]
    if canonicalizers:
        app.add_middleware(CanonicalPathMiddleware, canonicalizers=canonicalizers)
    for dialect in dialects:
        for router in dialect.routers:
            app.include_router(router)

    @app.exception_handler(StarletteHTTPException)
    async def unrouted(request: Request, exc: StarletteHTTPException) -> Response:
        """Unknown paths and methods, answered in the format of the dialect the path belongs to."""
        owner = owner_of(dialects, request.url.path)
        if owner is not None:
            return owner.policy.answer_unrouted(exc.status_code)
        return json_response(
            {"error": {"code": exc.status_code, "message": str(exc.detail)}}, exc.status_code
        )

    return app
