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
from provisiond.api.client_certs import ClientCertificateMiddleware
from provisiond.api.context import AppContext
from provisiond.api.dialects import DIALECTS
from provisiond.api.dps_service.webhook import HttpWebhookAllocator
from provisiond.api.edge import CanonicalPathMiddleware, owner_of
from provisiond.api.http import json_response
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
        allocator = HttpWebhookAllocator()
        ctx = AppContext.build(settings, database, clock, allocator)
        app.state.ctx = ctx
        await ctx.registrations.resume_pending()
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
            ctx.registrations.cancel()
            await allocator.aclose()
            if db is None:
                await database.dispose()

    app = FastAPI(title="provisiond", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(ClientCertificateMiddleware, trusted_proxies=settings.trusted_proxies)
    dialects = [dialect for dialect in DIALECTS if dialect.enabled(settings)]
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
        if owner is not None and owner.policy is not None:
            return owner.policy.answer_unrouted(exc.status_code)
        return json_response(
            {"error": {"code": exc.status_code, "message": str(exc.detail)}}, exc.status_code
        )

    return app
