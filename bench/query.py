"""Query: page through 1,000,000 enrollments with x-ms-max-item-count 1000; items/s and RSS.

The enrollments are written straight into the database (the benchmark measures paging, not
creation). Baseline: the same keyset pages read directly from the database by this process.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

from bench.loadgen import Connection, cpu_seconds
from provisiond.domain.enrollments import (
    Attestation,
    AttestationType,
    Enrollment,
    EnrollmentKind,
    SymmetricKeyAttestation,
)
from provisiond.domain.sas import build_sas
from provisiond.store.codec import dump_enrollment
from provisiond.store.keyring import Keyring
from tests.support.server import ServerProcess

KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="


def seed(server: ServerProcess, count: int) -> None:
    """Insert ``count`` enrollments with the store's own document format (SQLite data dir), their
    keys sealed with the server's own keyring file, as the server would seal them."""
    keyring = Keyring.load(server.data_dir / "secrets.key")
    now = datetime.now(UTC)
    att = Attestation(AttestationType.SYMMETRIC_KEY, symmetric_key=SymmetricKeyAttestation(KEY, KEY))
    db = sqlite3.connect(server.data_dir / "provisiond.db", timeout=60)
    try:
        stamp = now.replace(tzinfo=None).isoformat(sep=" ")
        for start in range(0, count, 20_000):
            rows = []
            for n in range(start, min(count, start + 20_000)):
                e = Enrollment(EnrollmentKind.INDIVIDUAL, f"q-{n:07d}", att).stamped(now)
                doc, sealed_with = dump_enrollment(e, keyring)
                rows.append(("individual", e.key, e.etag, stamp, stamp, doc, sealed_with))
            db.executemany(
                "INSERT INTO enrollments (kind, key, etag, created, updated, doc, sealed_with)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.commit()
    finally:
        db.close()


async def page_all(server: ServerProcess) -> int:
    token = build_sas(server.owner_key, "localhost", int(time.time()) + 3600, "provisioningserviceowner")
    conn = await Connection.open(server.port, server.ca)
    seen, continuation = 0, None
    try:
        while True:
            headers = {"Authorization": token, "x-ms-max-item-count": "1000"}
            if continuation:
                headers["x-ms-continuation"] = continuation
            status, response_headers, body = await conn.request(
                "POST", "/enrollments/query?api-version=2021-10-01", {"query": "*"}, headers
            )
            assert status == 200, status
            seen += body.count(b'"registrationId"')
            continuation = response_headers.get("x-ms-continuation")
            if not continuation:
                return seen
    finally:
        await conn.close()


def _baseline(server: ServerProcess) -> int:
    db = sqlite3.connect(server.data_dir / "provisiond.db")
    seen, after = 0, ""
    try:
        while True:
            rows = db.execute(
                "SELECT key, etag, created, updated, doc FROM enrollments WHERE kind = 'individual' AND key > ? ORDER BY key LIMIT 1001",
                (after,),
            ).fetchall()
            page = rows[:1000]
            seen += len(page)
            if len(rows) <= 1000:
                return seen
            after = page[-1][0]
    finally:
        db.close()


def run(server: ServerProcess, count: int = 1_000_000) -> dict[str, Any]:
    seed(server, count)
    t0 = time.perf_counter()
    base = _baseline(server)
    base_elapsed = time.perf_counter() - t0
    cpu0, server0, t0 = cpu_seconds(), server.cpu_seconds(), time.perf_counter()
    seen = asyncio.run(page_all(server))
    elapsed = time.perf_counter() - t0
    assert seen == base >= count, (seen, base)
    return {
        "measured": {
            "rate": seen / elapsed,
            "loadgen_cpu": (cpu_seconds() - cpu0) / elapsed,
            "server_cpu": (server.cpu_seconds() - server0) / elapsed,
        },
        "baseline": {"rate": base / base_elapsed},
        "rss_mb": server.peak_rss_mb(),
    }
