"""``create_app(settings)``: the ASGI application with every dialect mounted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from provisiond import __version__
from provisiond.adapters.allocation_webhook import HttpWebhookAllocator
from provisiond.api import bench
from provisiond.api.client_certs import ClientCertificateMiddleware
from provisiond.api.context import AppContext
from provisiond.api.dps_common import DpsError, render_dps_error
from provisiond.api.dps_device.routes import router as dps_device_router
from provisiond.api.dps_device.routing import DevicePathMiddleware, is_dps_device_path
from provisiond.api.dps_service import errors as dps_codes
from provisiond.api.dps_service.auth import ServiceAuth
from provisiond.api.dps_service.mapping import enrollment_out
from provisiond.api.dps_service.routes import router as dps_service_router
from provisiond.api.dps_service.routing import DpsPathMiddleware, is_dps_service_path
from provisiond.api.http import json_response
from provisiond.api.metrics import router as metrics_router
from provisiond.api.reseller import routes as reseller
from provisiond.api.sphere import routes as sphere
from provisiond.api.zerotouch import routes as zerotouch
from provisiond.config import Settings
from provisiond.domain.clock import Clock, utc_now
from provisiond.services.secrets import open_database
from provisiond.store.db import Database

__all__ = ["create_app"]


def create_app(settings: Settings, *, clock: Clock = utc_now, db: Database | None = None) -> FastAPI:
    """Build the application; the database opens with the app's lifespan unless one is given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = db or await open_database(settings, migrate_schema=False)
        allocator = HttpWebhookAllocator(enrollment_out)  # the webhook is shown the service API's JSON
        ctx = AppContext.build(settings, database, clock, allocator)
        app.state.ctx = ctx
        app.state.dps_service_auth = ServiceAuth(ctx)
        await ctx.custom_allocations.resume_pending()
        worker = (
            asyncio.get_running_loop().create_task(ctx.worker.run()) if settings.in_process_worker else None
        )
        try:
            yield
        finally:
            if worker is not None:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            ctx.custom_allocations.cancel()
            await allocator.aclose()
            if db is None:
                await database.dispose()

    app = FastAPI(title="provisiond", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(ClientCertificateMiddleware, trusted_proxies=settings.trusted_proxies)
    app.add_middleware(DpsPathMiddleware)
    app.add_middleware(DevicePathMiddleware)
    app.include_router(dps_service_router)
    app.include_router(dps_device_router)
    app.include_router(metrics_router)
    if settings.bench_endpoints:
        app.include_router(bench.router)
    app.include_router(zerotouch.router)
    app.include_router(reseller.router)
    app.include_router(sphere.router)

    @app.exception_handler(StarletteHTTPException)
    async def unrouted(request: Request, exc: StarletteHTTPException) -> Response:
        """Unknown paths and methods, answered in the format of the dialect the path belongs to."""
        if zerotouch.owns_path(request.url.path):
            return zerotouch.render_unrouted(exc.status_code)
        if reseller.owns_path(request.url.path):
            return reseller.render_unrouted(exc.status_code)
        if sphere.owns_path(request.url.path):
            return sphere.render_unrouted(exc.status_code)
        if is_dps_service_path(request.url.path) or is_dps_device_path(request.url.path):
            code = dps_codes.METHOD_NOT_ALLOWED if exc.status_code == 405 else dps_codes.ROUTE_NOT_FOUND
            message = "method not allowed" if exc.status_code == 405 else "no such resource"
            return render_dps_error(DpsError(exc.status_code, code, message))
        return json_response(
            {"error": {"code": exc.status_code, "message": str(exc.detail)}}, exc.status_code
        )

    return app
