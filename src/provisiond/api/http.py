"""HTTP plumbing every dialect needs and none of them owns: bounded body reads, JSON responses."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["BodyTooLarge", "MalformedJson", "json_response", "read_body", "read_json"]


class BodyTooLarge(Exception):
    """The body is over the dialect's limit; raised before any of it is parsed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than {limit} bytes")
        self.limit = limit


class MalformedJson(Exception):
    """The body is not UTF-8 JSON."""


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing it as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int, *, empty: Any = None) -> Any:
    """Read and parse a JSON body; an empty body gives ``empty``."""
    body = await read_body(request, limit)
    if not body.strip():
        return empty
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedJson(str(exc)) from exc


_encode = msgspec.json.Encoder().encode  # several times faster than json.dumps, same JSON


def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response with ``Content-Type: application/json`` (clients need it)."""
    body = _encode(content)
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")
