"""Durable operations survive kill -9: the worker process SIGKILLs itself (or is killed) mid-run,
a restarted worker finishes, every item is applied exactly once, and the per-item results are
identical to an uncrashed run of the same items. Run on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from provisiond.domain.claims import ClaimItem, OperationKind, OperationState, SectionType
from provisiond.domain.identifiers import DeviceIdentifier, Vendor, imei_check_digit
from provisiond.services.claims import ClaimsService
from provisiond.services.worker import OperationWorker
from provisiond.store.db import Database
from provisiond.store.migrate import migrate
from provisiond.store.tables import claims, devices, metadata, operation_results

ENGINES = ["sqlite", "postgresql"]


def imei(n: int) -> str:
    body = f"35{n:012d}"
    return body + imei_check_digit(body)


def items_for(customer_id: int, other_customer: int, n: int) -> list[tuple[ClaimItem, Any]]:
    """Claims with every kind of outcome: valid, invalid IMEI, duplicates, foreign customer."""
    out: list[tuple[ClaimItem, Any]] = []
    for i in range(n):
        if i % 97 == 5:
            ident = DeviceIdentifier(imei="12345", manufacturer="Google")
        elif i % 89 == 7:
            ident = DeviceIdentifier(imei=imei(i - 1), manufacturer="google")  # the previous device again
        else:
            ident = DeviceIdentifier(imei=imei(i), manufacturer="Google")
        customer = other_customer if i % 101 == 3 else customer_id
        out.append((ClaimItem(ident, customer, SectionType.ZERO_TOUCH), {"i": i}))
    return out


def url_for(engine: str, tmp: Path, request: pytest.FixtureRequest) -> str:
    if engine == "sqlite":
        return f"sqlite:///{tmp / 'crash.db'}"
    return str(request.getfixturevalue("pg_url"))


def async_url(url: str) -> str:
    return url.replace("sqlite:///", "sqlite+aiosqlite:///").replace("postgresql://", "postgresql+asyncpg://")


async def prepare(url: str, n: int) -> tuple[int, int]:
    """A clean database with one partner, one operation of ``n`` claims; (partner id, op id)."""
    db = Database(async_url(url))
    try:
        await migrate(db)
        async with db.write() as conn:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
        service = ClaimsService(db)
        partner, _ = await service.create_partner("crash-test")
        customer = await service.create_customer(partner, "Acme", Vendor.GOOGLE)
        other, _ = await service.create_partner("someone else")
        foreign = await service.create_customer(other, "Other", Vendor.GOOGLE)
        op = await service.submit(
            partner, OperationKind.CLAIM, Vendor.GOOGLE, items_for(customer.id, foreign.id, n)
        )
        return partner.id, op.id
    finally:
        await db.dispose()


async def snapshot(url: str, partner_id: int, op_id: int) -> dict[str, Any]:
    db = Database(async_url(url))
    try:
        service = ClaimsService(db)
        from provisiond.domain.claims import Partner

        op = await service.operation(Partner(partner_id, ""), op_id)
        results = await service.operation_results(op)
        async with db.read() as conn:
            counts = {
                name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                for name, table in (("devices", devices), ("claims", claims), ("results", operation_results))
            }
        normal = [
            None
            if r is None
            else {**r.as_json(), "device_id": (r.device_id - op_id * 100_000) if r.device_id else None}
            for _, _, r in results
        ]
        return {
            "state": op.state,
            "processed": op.processed,
            "total": op.total,
            "results": normal,
            "counts": counts,
        }
    finally:
        await db.dispose()


def worker_env(url: str, crash: str | None, batch: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
    env.update(
        {
            "PROVISIOND_WORKER_BATCH_SIZE": str(batch),
            "PROVISIOND_WORKER_LEASE_SECONDS": "1",
            "PROVISIOND_LOG_LEVEL": "warning",
        }
    )
    if crash:
        env["PROVISIOND_TEST_CRASH_POINT"] = crash
    return env


def run_worker_until_done(
    url: str, data_dir: Path, partner_id: int, op_id: int, batch: int
) -> dict[str, Any]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "provisiond", "worker", "--data-dir", str(data_dir), "--database", url],
        env=worker_env(url, None, batch),
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            snap = asyncio.run(snapshot(url, partner_id, op_id))
            if snap["state"] in (OperationState.COMPLETE, OperationState.COMPLETE_WITH_ERRORS):
                return snap
            assert proc.poll() is None, "the worker died"
            time.sleep(0.2)
        raise AssertionError("the operation did not finish")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


async def reference(tmp: Path, n: int) -> dict[str, Any]:
    """The same items run without a crash, in a database of their own."""
    url = f"sqlite:///{tmp / 'reference.db'}"
    partner_id, op_id = await prepare(url, n)
    db = Database(async_url(url))
    try:
        await OperationWorker(db, batch_size=500).run_once()
    finally:
        await db.dispose()
    return await snapshot(url, partner_id, op_id)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("crash", ["after_batch:2", "in_batch:3", "after_batch:5"])
def test_worker_killed_at_a_crash_point_resumes_and_matches_an_uncrashed_run(
    engine: str, crash: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    n, batch = 3000, 400
    url = url_for(engine, tmp_path, request)
    partner_id, op_id = asyncio.run(prepare(url, n))
    crashed = subprocess.run(
        [sys.executable, "-m", "provisiond", "worker", "--data-dir", str(tmp_path), "--database", url],
        env=worker_env(url, crash, batch),
        timeout=120,
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL
    at_kill = asyncio.run(snapshot(url, partner_id, op_id))
    expected_done = (
        batch * int(crash.split(":")[1])
        if crash.startswith("after")
        else batch * (int(crash.split(":")[1]) - 1)
    )
    assert (
        at_kill["processed"] == expected_done == at_kill["counts"]["results"]
    )  # the open batch left nothing
    final = run_worker_until_done(url, tmp_path, partner_id, op_id, batch)
    expected = asyncio.run(reference(tmp_path, n))
    assert final["results"] == expected["results"]
    assert final["counts"] == expected["counts"]
    assert final["processed"] == n and final["state"] is OperationState.COMPLETE_WITH_ERRORS


@pytest.mark.parametrize("engine", ENGINES)
def test_100k_claim_killed_mid_run_finishes_with_every_device_claimed_once(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    n = 100_000
    url = url_for(engine, tmp_path, request)

    async def prepare_valid() -> tuple[int, int]:
        db = Database(async_url(url))
        try:
            await migrate(db)
            async with db.write() as conn:
                for table in reversed(metadata.sorted_tables):
                    await conn.execute(table.delete())
            service = ClaimsService(db)
            partner, _ = await service.create_partner("big")
            customer = await service.create_customer(partner, "Fleet", Vendor.GOOGLE)
            items = [
                (ClaimItem(DeviceIdentifier(imei=imei(i), manufacturer="Google"), customer.id), {"i": i})
                for i in range(n)
            ]
            op = await service.submit(partner, OperationKind.CLAIM, Vendor.GOOGLE, items)
            return partner.id, op.id
        finally:
            await db.dispose()

    partner_id, op_id = asyncio.run(prepare_valid())
    proc = subprocess.Popen(
        [sys.executable, "-m", "provisiond", "worker", "--data-dir", str(tmp_path), "--database", url],
        env=worker_env(url, None, 5000),
    )
    try:
        while True:  # kill -9 once progress is strictly between 0 and 100
            snap = asyncio.run(snapshot(url, partner_id, op_id))
            assert proc.poll() is None, "the worker exited before it could be killed"
            if 0 < snap["processed"] < n:
                proc.send_signal(signal.SIGKILL)
                break
            assert snap["processed"] < n, "finished before the kill: the test would prove nothing"
            time.sleep(0.05)
    finally:
        proc.wait(timeout=30)
    at_kill = asyncio.run(snapshot(url, partner_id, op_id))
    assert 0 < at_kill["processed"] < n
    final = run_worker_until_done(url, tmp_path, partner_id, op_id, 5000)
    assert final["state"] is OperationState.COMPLETE and final["processed"] == n
    assert final["counts"] == {"devices": n, "claims": n, "results": n}
    assert all(
        r is not None and r["status"] == "success" and r["device_id"] == i + 1
        for i, r in enumerate(final["results"])
    )
