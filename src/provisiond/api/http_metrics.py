"""Counts every HTTP request by the dialect that answers it and its status, and times it; and
names the dialect for the request's log lines (``logs.DIALECT``).

The dialect is the one that owns the path (``edge.owner_of``), so a label never holds a raw
path (a registration id in the URL would make a series per device). Requests that no dialect
owns count as ``other``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisiond import logs, telemetry
from provisiond.api.edge import Dialect, owner_of

__all__ = ["HttpMetricsMiddleware"]

log = logging.getLogger(__name__)


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, dialects: Sequence[Dialect]) -> None:
        self.app = app
        self.dialects = dialects

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = [500]
        owner = owner_of(self.dialects, scope.get("path", ""))
        logs.DIALECT.set(owner.name if owner else None)  # this request's task and its log lines

        async def noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            seconds = time.monotonic() - started
            telemetry.http_request(owner.name if owner else "other", status[0], seconds)
            # No path or query in the line: a query may carry a credential (access_token, code).
            log.debug("%s answered %d in %.3f s", scope.get("method", "?"), status[0], seconds)
