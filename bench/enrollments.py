"""Enrollments: 10-item bulk creates from 8 concurrent keep-alive clients.

Baseline: the same clients posting the same bodies to a constant-JSON bench route.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.loadgen import Connection, cpu_seconds
from provisiond.domain.sas import build_sas
from tests.support.server import ServerProcess

KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="


async def _client(server: ServerProcess, worker: int, batches: int, path: str, token: str) -> int:
    conn = await Connection.open(server.port, server.ca)
    created = 0
    try:
        for b in range(batches):
            items = [
                {
                    "registrationId": f"e{worker}-{b}-{i}",
                    "attestation": {
                        "type": "symmetricKey",
                        "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY},
                    },
                }
                for i in range(10)
            ]
            status, _, _ = await conn.request(
                "POST", path, {"mode": "create", "enrollments": items}, {"Authorization": token}
            )
            assert status == 200, status
            created += 10
    finally:
        await conn.close()
    return created


async def _run(server: ServerProcess, clients: int, batches: int, baseline: bool) -> dict[str, Any]:
    token = build_sas(server.owner_key, "localhost", int(time.time()) + 3600, "provisioningserviceowner")
    path = "/bench/echo" if baseline else "/enrollments?api-version=2021-10-01"
    cpu0, server0, t0 = cpu_seconds(), server.cpu_seconds(), time.perf_counter()
    counts = await asyncio.gather(
        *(_client(server, w + (1000 if baseline else 0), batches, path, token) for w in range(clients))
    )
    elapsed = time.perf_counter() - t0
    return {
        "rate": sum(counts) / elapsed,
        "loadgen_cpu": (cpu_seconds() - cpu0) / elapsed,
        "server_cpu": (server.cpu_seconds() - server0) / elapsed,
    }


async def measure(server: ServerProcess, clients: int, batches: int) -> dict[str, Any]:
    """The measured phase alone: what bench.profile samples."""
    return await _run(server, clients, batches, baseline=False)


def run(server: ServerProcess, clients: int = 8, batches: int = 250) -> dict[str, Any]:
    baseline = asyncio.run(_run(server, clients, batches, baseline=True))
    measured = asyncio.run(_run(server, clients, batches, baseline=False))
    return {"measured": measured, "baseline": baseline}
