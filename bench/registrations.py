"""Registrations: new devices, each on its own TLS connection (full handshake), register + poll.

Baseline: the same connection pattern (new TLS connection, one PUT, one GET) against the trivial
bench routes, which cross the same TLS front, app and middleware but touch no database.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.loadgen import Connection, Stats, cpu_seconds, percentile
from provisiond.domain.sas import build_sas
from tests.support.server import ServerProcess

API = "api-version=2019-03-31"
KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="


def enroll(server: ServerProcess, devices: int) -> None:
    """Individual symmetric-key enrollments, created beforehand in bulk (10 per request)."""
    import ssl

    import httpx

    server.cli("dps", "hub", "add", "bench-hub.example")
    token = build_sas(server.owner_key, "localhost", int(time.time()) + 3600, "provisioningserviceowner")
    with httpx.Client(
        base_url=server.base_url,
        verify=ssl.create_default_context(cafile=server.ca),
        headers={"Authorization": token},
    ) as http:
        for start in range(0, devices, 10):
            items = [
                {
                    "registrationId": f"bench-{n:06d}",
                    "attestation": {
                        "type": "symmetricKey",
                        "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY},
                    },
                }
                for n in range(start, min(devices, start + 10))
            ]
            r = http.post(
                "/enrollments",
                params={"api-version": "2021-10-01"},
                json={"mode": "create", "enrollments": items},
            )
            assert r.status_code == 200 and r.json()["isSuccessful"], r.text


async def _device(server: ServerProcess, n: int, stats: Stats, baseline: bool) -> None:
    rid = f"bench-{n:06d}"
    scope = server.id_scope
    token = build_sas(KEY, f"{scope}/registrations/{rid}", int(time.time()) + 3600, "registration")
    headers = {"Authorization": token}
    start = time.perf_counter()
    try:
        conn = await Connection.open(server.port, server.ca)
        try:
            put = "bench-register" if baseline else "register"
            status, _, body = await conn.request(
                "PUT", f"/{scope}/registrations/{rid}/{put}?{API}", {"registrationId": rid}, headers
            )
            if status != 202:
                stats.errors += 1
                return
            op = json.loads(body)["operationId"]
            get = "bench-operations" if baseline else "operations"
            status, _, body = await conn.request(
                "GET", f"/{scope}/registrations/{rid}/{get}/{op}?{API}", None, headers
            )
            if status != 200 or json.loads(body)["status"] != "assigned":
                stats.errors += 1
                return
        finally:
            await conn.close()
    except OSError:
        stats.errors += 1
        return
    stats.latencies.append(time.perf_counter() - start)


async def _run(server: ServerProcess, devices: int, concurrency: int, baseline: bool) -> dict[str, Any]:
    stats = Stats()
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with gate:
            await _device(server, n, stats, baseline)

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    server_cpu0 = server.cpu_seconds()
    await asyncio.gather(*(one(n) for n in range(devices)))
    elapsed = time.perf_counter() - t0
    return {
        "rate": len(stats.latencies) / elapsed,
        "p50_ms": percentile(stats.latencies, 50) * 1000,
        "p99_ms": percentile(stats.latencies, 99) * 1000,
        "errors": stats.errors,
        "loadgen_cpu": (cpu_seconds() - cpu0) / elapsed,
        "server_cpu": (server.cpu_seconds() - server_cpu0) / elapsed,
    }


async def measure(server: ServerProcess, devices: int, concurrency: int) -> dict[str, Any]:
    """The measured phase alone (the enrollments must exist): what bench.profile samples."""
    return await _run(server, devices, concurrency, baseline=False)


def run(server: ServerProcess, devices: int = 3000, concurrency: int = 64) -> dict[str, Any]:
    enroll(server, devices)
    asyncio.run(_run(server, 200, concurrency, baseline=True))  # warm-up
    baseline = asyncio.run(_run(server, devices, concurrency, baseline=True))
    measured = asyncio.run(_run(server, devices, concurrency, baseline=False))
    return {"measured": measured, "baseline": baseline}
