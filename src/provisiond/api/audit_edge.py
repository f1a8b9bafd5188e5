"""Where each HTTP request's audit origin is set: a request id, the client's address, HTTPS.

Every dialect's requests pass here before routing, so a service writing an audit entry finds the
request's origin in ``services.audit.current()`` without the domain knowing HTTP; the actor is
named later by whoever authenticates the caller (``services/audit.py`` says why this is a
context variable and not a parameter). The id is sent back as ``x-request-id``, so an operator
can match a client's call with its entries (``provisiond audit list``).
"""

from __future__ import annotations

import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisiond.domain.audit import AuditContext, Transport
from provisiond.services import audit

__all__ = ["AuditOriginMiddleware"]


class AuditOriginMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # MQTT over WebSocket: the MQTT session sets it
            return
        request_id = uuid.uuid4().hex
        client = scope.get("client")
        origin = AuditContext(
            request_id=request_id, source=client[0] if client else None, transport=Transport.HTTPS
        )
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        with audit.acting(origin):
            await self.app(scope, receive, send_with_id)
