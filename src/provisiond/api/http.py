"""HTTP plumbing every dialect needs and none of them owns: bounded body reads, JSON responses,
bearer tokens."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from provisiond.wirejson import MalformedJson, decode

__all__ = [
    "BodyTooLarge",
    "ClientDisconnect",
    "MalformedJson",
    "bearer_token",
    "client_gone",
    "json_response",
    "parse_json",
    "read_body",
    "read_json",
]

log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    """The body is over the dialect's limit; raised before any of it is parsed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than {limit} bytes")
        self.limit = limit


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing it as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    # A length check before int(): Python refuses to convert more than 4,300 digits.
    if declared is not None and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes, *, empty: Any = None) -> Any:
    """Parse a JSON body with the limits every dialect shares (``wirejson``); empty gives ``empty``."""
    return decode(body) if body.strip() else empty


async def read_json(request: Request, limit: int, *, empty: Any = None) -> Any:
    """Read and parse a JSON body; an empty body gives ``empty``."""
    return parse_json(await read_body(request, limit), empty=empty)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), if any.

    The zero-touch, reseller and Sphere dialects take opaque bearer tokens; each decides what a
    missing one means (``None``: no header, another scheme, or an empty token).
    """
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def client_gone(request: Request) -> Response:
    """A client that went away before its request was read is routine, not an error: one INFO
    line, no traceback. The answer is never delivered; 499 is what proxies log for it."""
    log.info("client went away during %s %s", request.method, request.url.path)
    return Response(status_code=499)


_encode = msgspec.json.Encoder().encode  # several times faster than json.dumps, same JSON


def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response with ``Content-Type: application/json`` (clients need it)."""
    body = _encode(content)
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")
