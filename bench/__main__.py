"""`make bench`: every benchmark against a real `provisiond serve`, each with its baseline.

Usage: python -m bench [--quick] [--skip-postgres]. Prints a table; a full run also writes
bench/last-run.json (a quick run is a smoke test of the benchmarks and leaves it alone).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import SERVER_SETTINGS, audit_export, claims, enrollments, query, registrations
from tests.support.server import ServerProcess, start_server

PG_ADMIN = os.environ.get("PROVISIOND_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_server(
    fn: Callable[[ServerProcess], dict[str, Any]], database: str | None = None, **settings: Any
) -> dict[str, Any]:
    base = {**SERVER_SETTINGS, **settings}
    proc = start_server(Path(tempfile.mkdtemp(prefix="bench-")), database=database, settings=base)
    try:
        return fn(proc)
    finally:
        proc.stop()


def _pg_database() -> str:
    import asyncio

    import asyncpg

    name = f"provisiond_bench_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run, not the targets)")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    out: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        }
    }
    out["registrations"] = _with_server(lambda s: registrations.run(s, devices=3000 // scale, concurrency=64))
    out["enrollments"] = _with_server(lambda s: enrollments.run(s, clients=8, batches=500 // scale))
    out["query"] = _with_server(lambda s: query.run(s, count=1_000_000 // scale))
    out["claims_sqlite"] = _with_server(lambda s: claims.run(s, count=100_000 // scale))
    if not args.skip_postgres:
        out["claims_postgresql"] = _with_server(
            lambda s: claims.run(s, count=100_000 // scale), database=_pg_database()
        )
    out["audit_export"] = _with_server(lambda s: audit_export.run(s, count=1_000_000 // scale))
    out["sizes"] = {
        "enrollments_stored": 1_000_000 // scale,
        "claim": 100_000 // scale,
        "audit_entries": 1_000_000 // scale,
    }
    if not args.quick:
        Path(__file__).with_name("last-run.json").write_text(json.dumps(out, indent=2) + "\n")
    print(_table(out))


def _table(out: dict[str, Any]) -> str:
    rows = [("benchmark", "measured", "baseline", "ratio", "target", "loadgen CPU", "server CPU")]
    sizes = out.get("sizes", {"enrollments_stored": 1_000_000, "claim": 100_000})
    stored, claim_size = sizes["enrollments_stored"], sizes["claim"]
    reg = out["registrations"]
    rows.append(
        (
            "registrations (devices/s, p50/p99 ms)",
            f"{reg['measured']['rate']:.0f} ({reg['measured']['p50_ms']:.0f}/{reg['measured']['p99_ms']:.0f})",
            f"{reg['baseline']['rate']:.0f}",
            f"{reg['measured']['rate'] / reg['baseline']['rate']:.2f}",
            ">= 0.6 x and >= 500/s",
            f"{reg['measured']['loadgen_cpu']:.2f}",
            f"{reg['measured']['server_cpu']:.2f}",
        )
    )
    enr = out["enrollments"]
    rows.append(
        (
            "enrollments (items/s)",
            f"{enr['measured']['rate']:.0f}",
            f"{enr['baseline']['rate']:.0f}",
            f"{enr['measured']['rate'] / enr['baseline']['rate']:.2f}",
            ">= 5000/s",
            f"{enr['measured']['loadgen_cpu']:.2f}",
            f"{enr['measured']['server_cpu']:.2f}",
        )
    )
    q = out["query"]
    rows.append(
        (
            f"query {stored:,} enrollments (items/s)",
            f"{q['measured']['rate']:.0f}",
            f"{q['baseline']['rate']:.0f}",
            f"{q['measured']['rate'] / q['baseline']['rate']:.2f}",
            ">= 50000/s",
            f"{q['measured']['loadgen_cpu']:.2f}",
            f"{q['measured']['server_cpu']:.2f}",
        )
    )
    rows.append(
        (
            f"memory with {stored:,} enrollments stored (peak RSS MB)",
            f"{q['rss_mb']:.0f}",
            "-",
            "-",
            "<= 200 MB",
            "-",
            "-",
        )
    )
    for key in ("claims_sqlite", "claims_postgresql"):
        if key in out:
            c = out[key]
            rows.append(
                (
                    f"claim {claim_size:,}, {key.split('_')[1]} (s)",
                    f"{c['measured']['seconds']:.1f}",
                    f"{c['baseline']['seconds']:.1f}",
                    f"{c['measured']['seconds'] / c['baseline']['seconds']:.1f} x",
                    "<= 5 s and <= 3 x",
                    f"{c['measured']['loadgen_cpu']:.2f}",
                    f"{c['measured']['server_cpu']:.2f}",
                )
            )
            rows.append(
                (
                    f"memory during the claim, {key.split('_')[1]} (peak RSS MB)",
                    f"{c['measured']['rss_mb']:.0f}",
                    "-",
                    "-",
                    "<= 400 MB",
                    "-",
                    "-",
                )
            )
    if "audit_export" in out:
        rows += _audit_rows(out["audit_export"], sizes.get("audit_entries", 1_000_000))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(str(cell).ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _audit_rows(a: dict[str, Any], size: int) -> list[tuple[str, ...]]:
    """The export's rate against reading the rows with sqlite3, and its peak RSS at the full
    size beside a tenth of it: constant memory means the two are about the same."""
    small = a["small"]
    return [
        (
            f"audit export {size:,} entries (entries/s)",
            f"{a['measured']['rate']:.0f}",
            f"{a['baseline']['rate']:.0f}",
            f"{a['measured']['rate'] / a['baseline']['rate']:.2f}",
            ">= 0.25 x",
            "-",
            f"{a['measured']['cpu']:.2f}",
        ),
        (
            f"memory of audit export, {size:,} vs {small['entries']:,} entries (peak RSS MB)",
            f"{a['measured']['rss_mb']:.0f}",
            f"{small['rss_mb']:.0f}",
            f"{a['measured']['rss_mb'] / small['rss_mb']:.2f}",
            "<= 1.2 x (constant)",
            "-",
            "-",
        ),
    ]


if __name__ == "__main__":
    main()
