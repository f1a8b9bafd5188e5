"""Audit export: ``provisiond audit export --format jsonl`` of 1,000,000 entries; entries/s and
the command's peak RSS, at the full size and at a tenth of it (constant memory means the two
peaks are close: the export holds one keyset batch, never the trail).

The entries are written straight into the database (the benchmark measures the export, not
auditing). Baseline: the same rows read with ``sqlite3`` and written as JSON lines by this
process, the floor any export from this table can reach.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.server import PROVISIOND, ServerProcess

SQL = (
    "INSERT INTO audit_entries (time, actor, action, target, outcome, request_id, source, details)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def seed(server: ServerProcess, count: int) -> None:
    """``count`` device registrations, as the trail holds them, in the server's SQLite database."""
    start = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    details = json.dumps(
        {
            "operationId": "4.0123456789abcdef.0123456789abcdef0123456789abcdef",
            "attestation": "symmetricKey",
            "enrollment": "dev",
            "hub": "hub-a.azure-devices.net",
            "transport": "https",
        }
    )
    db = sqlite3.connect(server.data_dir / "provisiond.db", timeout=60)
    try:
        for first in range(0, count, 50_000):
            rows = [
                (
                    (start + timedelta(milliseconds=n)).isoformat(sep=" "),
                    f"device:dev-{n:07d}",
                    "device.register",
                    f"dev-{n:07d}",
                    "assigned",
                    f"{n:032x}",
                    "10.0.0.1",
                    details,
                )
                for n in range(first, min(count, first + 50_000))
            ]
            db.executemany(SQL, rows)
            db.commit()
    finally:
        db.close()


def _export(server: ServerProcess) -> tuple[int, float, float, float]:
    """Run the command, count its lines from the pipe; lines, seconds, peak RSS MB, CPU seconds."""
    args = [*PROVISIOND, "audit", "export", "--format", "jsonl", "--data-dir", str(server.data_dir)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=server.env)
    assert proc.stdout is not None
    lines = 0
    while chunk := proc.stdout.read(1 << 20):
        lines += chunk.count(b"\n")
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS (KB on Linux)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, proc.returncode
    return lines, time.perf_counter() - t0, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def _baseline(server: ServerProcess) -> tuple[int, float]:
    t0 = time.perf_counter()
    db = sqlite3.connect(server.data_dir / "provisiond.db")
    lines = 0
    try:
        with open(os.devnull, "w") as out:
            for row in db.execute(
                "SELECT id, time, actor, action, target, outcome, request_id, source, details FROM audit_entries ORDER BY id"
            ):
                keys = ("seq", "time", "actor", "action", "target", "outcome", "requestId", "sourceAddress")
                record = dict(zip(keys, row[:8], strict=True)) | {"details": json.loads(row[8])}
                out.write(json.dumps(record) + "\n")
                lines += 1
    finally:
        db.close()
    return lines, time.perf_counter() - t0


def run(server: ServerProcess, count: int = 1_000_000) -> dict[str, Any]:
    small = max(1, count // 10)
    seed(server, small)
    small_lines, _, small_rss, _ = _export(server)
    seed(server, count - small)
    base_lines, base_elapsed = _baseline(server)
    lines, elapsed, rss, cpu = _export(server)
    assert lines == base_lines >= count and small_lines >= small, (lines, base_lines, small_lines)
    return {
        "measured": {"rate": lines / elapsed, "rss_mb": rss, "cpu": cpu / elapsed},
        "baseline": {"rate": base_lines / base_elapsed},
        "small": {"entries": small_lines, "rss_mb": small_rss},
    }
