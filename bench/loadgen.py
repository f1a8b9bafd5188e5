"""A lean HTTPS load generator: raw asyncio streams and hand-written HTTP/1.1, so that the
generator costs as little CPU as possible next to the server it measures."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import resource
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Connection", "Stats", "cpu_seconds", "percentile"]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@functools.cache
def _client_context(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


class Connection:
    """One keep-alive HTTPS connection (a full handshake: no session is ever reused)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, port: int, ca: str, host: str = "localhost") -> Connection:
        # One context per CA file: building one costs the generator milliseconds. Python's ssl
        # resumes a session only when it is handed one, which never happens here, so every
        # connection is still a full handshake.
        reader, writer = await asyncio.open_connection(host, port, ssl=_client_context(ca))
        return cls(reader, writer, host)

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        data = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(data)}"]
        if data:
            lines.append("Content-Type: application/json")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        response_headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            response_headers[name.strip().lower()] = value.strip()
        length = int(response_headers.get("content-length", "0"))
        payload = await self.reader.readexactly(length) if length else b""
        return status, response_headers, payload

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await self.writer.wait_closed()


async def timed(coro: Any, stats: Stats) -> Any:
    start = time.perf_counter()
    try:
        return await coro
    finally:
        stats.latencies.append(time.perf_counter() - start)
