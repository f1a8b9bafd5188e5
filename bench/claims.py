"""Claims: one zero-touch claimAsync of 100,000 valid devices, from submit until done.

Baseline: writing exactly the rows the operation writes (devices, lookup keys, claims, items,
per-item results) in one transaction: executemany on SQLite, COPY on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.loadgen import Connection, cpu_seconds
from provisiond.domain.device_identifiers import imei_check_digit
from tests.support.server import ServerProcess


def imei(n: int) -> str:
    body = f"35{n:012d}"
    return body + imei_check_digit(body)


async def claim(server: ServerProcess, partner: str, token: str, count: int) -> dict[str, Any]:
    conn = await Connection.open(server.port, server.ca)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        status, _, body = await conn.request(
            "POST",
            f"/v1/partners/{partner}/customers",
            {"customer": {"companyName": "Fleet", "ownerEmails": ["it@fleet.example"]}},
            headers,
        )
        assert status == 200, body
        customer = json.loads(body)["companyId"]
        claims = [
            {
                "customerId": customer,
                "sectionType": "SECTION_TYPE_ZERO_TOUCH",
                "deviceIdentifier": {"imei": imei(n), "manufacturer": "Google"},
            }
            for n in range(count)
        ]
        cpu0, server0, t0 = cpu_seconds(), server.cpu_seconds(), time.perf_counter()
        status, _, body = await conn.request(
            "POST", f"/v1/partners/{partner}/devices:claimAsync", {"claims": claims}, headers
        )
        assert status == 200, body[:300]
        name = json.loads(body)["name"]
        peak = server.peak_rss_mb()
        while True:
            status, _, body = await conn.request("GET", f"/v1/{name}", None, headers)
            op = json.loads(body)
            peak = max(peak, server.peak_rss_mb())
            if op.get("done"):
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        assert op["response"]["successCount"] == count, op["response"].get("successCount")
        return {
            "seconds": elapsed,
            "rate": count / elapsed,
            "loadgen_cpu": (cpu_seconds() - cpu0) / elapsed,
            "server_cpu": (server.cpu_seconds() - server0) / elapsed,
            "rss_mb": peak,
        }
    finally:
        await conn.close()


def _baseline(server: ServerProcess, count: int) -> float:
    """The same rows, written in one transaction with executemany (SQLite) or COPY (PostgreSQL)."""
    rows_devices = [(10**12 + n, "Google", None, imei(n), None, None, None) for n in range(count)]
    rows_keys = [(f"imei|google|{imei(n)}", 10**12 + n) for n in range(count)]
    rows_claims = [(10**12 + n, "SECTION_TYPE_ZERO_TOUCH", 1, 1, None, None) for n in range(count)]
    rows_items = [
        (1, n, json.dumps({"core": {"imei": imei(n)}, "wire": {"imei": imei(n)}})) for n in range(count)
    ]
    rows_results = [
        (1, n, json.dumps({"status": "success", "device_id": 10**12 + n, "code": None, "message": None}))
        for n in range(count)
    ]
    if server.database and server.database.startswith("postgres"):
        import asyncpg

        async def copy() -> float:
            conn = await asyncpg.connect(server.database)
            try:
                t0 = time.perf_counter()
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "devices",
                        records=rows_devices,
                        columns=["id", "manufacturer", "model", "imei", "meid", "serial", "metadata"],
                    )
                    await conn.copy_records_to_table(
                        "device_keys", records=rows_keys, columns=["key", "device_id"]
                    )
                    await conn.copy_records_to_table(
                        "claims",
                        records=rows_claims,
                        columns=[
                            "device_id",
                            "section",
                            "customer_id",
                            "partner_id",
                            "order_number",
                            "vendor_params",
                        ],
                    )
                    await conn.copy_records_to_table(
                        "operation_items", records=rows_items, columns=["operation_id", "seq", "request"]
                    )
                    await conn.copy_records_to_table(
                        "operation_results", records=rows_results, columns=["operation_id", "seq", "result"]
                    )
                    elapsed = time.perf_counter() - t0
                    raise _Rollback(elapsed)
            except _Rollback as done:
                return done.elapsed
            finally:
                await conn.close()

        return asyncio.run(copy())
    import sqlite3

    db = sqlite3.connect(server.data_dir / "provisiond.db", timeout=60)
    try:
        t0 = time.perf_counter()
        db.executemany(
            "INSERT INTO devices (id, manufacturer, model, imei, meid, serial, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows_devices,
        )
        db.executemany("INSERT INTO device_keys (key, device_id) VALUES (?, ?)", rows_keys)
        db.executemany(
            "INSERT INTO claims (device_id, section, customer_id, partner_id, order_number, vendor_params) VALUES (?, ?, ?, ?, ?, ?)",
            rows_claims,
        )
        db.executemany(
            "INSERT INTO operation_items (operation_id, seq, request) VALUES (?, ?, ?)", rows_items
        )
        db.executemany(
            "INSERT INTO operation_results (operation_id, seq, result) VALUES (?, ?, ?)", rows_results
        )
        db.commit()
        elapsed = time.perf_counter() - t0
        db.execute("DELETE FROM devices WHERE id >= ?", (10**12,))
        db.execute("DELETE FROM claims WHERE device_id >= ?", (10**12,))
        db.execute("DELETE FROM device_keys WHERE device_id >= ?", (10**12,))
        db.execute("DELETE FROM operation_items WHERE operation_id = 1")
        db.execute("DELETE FROM operation_results WHERE operation_id = 1")
        db.commit()
        return elapsed
    finally:
        db.close()


class _Rollback(Exception):
    def __init__(self, elapsed: float) -> None:
        super().__init__("rollback")
        self.elapsed = elapsed


def run(server: ServerProcess, count: int = 100_000) -> dict[str, Any]:
    created = json.loads(server.cli("partner", "create", "bench", "--json").stdout)
    baseline = _baseline(server, count)
    measured = asyncio.run(claim(server, created["partnerId"], created["token"], count))
    return {"measured": measured, "baseline": {"seconds": baseline, "rate": count / baseline}}
