"""Event webhook delivery: one signed CloudEvent POSTed over httpx (the ``Deliver`` port).

Structured mode (``application/cloudevents+json``) with the three Standard Webhooks headers; the
signature covers the exact bytes sent. Redirects are not followed (a 3xx is a failure, as both
specs say), only 2xx is success, 410 means stop, and a ``Retry-After`` in seconds is honoured.
TLS trusts httpx's default store plus ``PROVISIOND_WEBHOOK_CA_FILE``, as the allocation webhook does.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import httpx

from provisiond.domain.events import sign
from provisiond.services.events import Attempt

__all__ = ["HttpEventDelivery", "webhook_ssl_context"]


def webhook_ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """The trust store for outbound webhooks: httpx's default (what allocation webhooks trusted
    before this setting existed), plus a private CA bundle if set."""
    context = httpx.create_ssl_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


#: A receiver's Retry-After is followed up to the backoff's own cap (5 minutes).
MAX_RETRY_AFTER = 300.0


class HttpEventDelivery:
    """POSTs events; one connection pool for every subscription."""

    def __init__(self, timeout: float, ca_file: Path | None = None) -> None:
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            follow_redirects=False, timeout=timeout, verify=webhook_ssl_context(ca_file)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __call__(self, url: str, secret: str, event_id: str, body: bytes) -> Attempt:
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/cloudevents+json; charset=utf-8",
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, event_id, timestamp, body),
        }
        # httpx's timeout bounds each read, not the request: a receiver trickling its answer a
        # byte at a time would hold the delivery (and its lease) open. The whole exchange gets
        # one deadline, and the answer's body is never read: its status and headers say it all.
        try:
            async with asyncio.timeout(self._timeout):
                request = self._client.build_request("POST", url, content=body, headers=headers)
                answer = await self._client.send(request, stream=True)
                await answer.aclose()
        except TimeoutError:
            return Attempt(False, f"no answer within {self._timeout:g} s")
        except httpx.HTTPError as exc:
            return Attempt(False, f"unreachable: {type(exc).__name__}")
        if 200 <= answer.status_code < 300:
            return Attempt(True)
        retry_after = answer.headers.get("retry-after", "")
        return Attempt(
            False,
            f"HTTP {answer.status_code}",
            retry_after=min(float(retry_after), MAX_RETRY_AFTER) if retry_after.isdigit() else None,
            gone=answer.status_code == 410,
        )
