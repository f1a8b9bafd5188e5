"""Durable operations survive kill -9: the worker process SIGKILLs itself at a crash point (run
through ``tests/support/crash_launcher.py``) or is killed mid-run, a restarted worker finishes,
every item is applied exactly once, and the per-item results are identical to an uncrashed run of
the same items. Run on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from provisiond.domain.claims import ClaimItem, OperationKind, OperationState, SectionType
from provisiond.domain.device_identifiers import DeviceIdentifier, Vendor
from provisiond.services.claims import ClaimsService
from provisiond.services.worker import OperationWorker
from provisiond.store.db import Database
from provisiond.store.keyring import Keyring
from tests.support.operations import (
    async_url,
    clean_database,
    imei,
    prepare_valid_claims,
    progress,
    run_worker_until_done,
    snapshot,
    start_worker,
    url_for,
    worker_command,
    worker_env,
)

ENGINES = ["sqlite", "postgresql"]


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


async def prepare(url: str, n: int) -> tuple[int, int]:
    """A clean database with one partner, one operation of ``n`` claims; (partner id, op id)."""
    await clean_database(url)
    db = Database(async_url(url), keyring=Keyring.in_memory())
    try:
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


async def reference(tmp: Path, n: int) -> dict[str, Any]:
    """The same items run without a crash, in a database of their own."""
    url = f"sqlite:///{tmp / 'reference.db'}"
    partner_id, op_id = await prepare(url, n)
    db = Database(async_url(url), keyring=Keyring.in_memory())
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
        worker_command(url, tmp_path, crash),
        env=worker_env(batch),
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

    partner_id, op_id = asyncio.run(prepare_valid_claims(url, n))
    proc = start_worker(url, tmp_path, 5000)
    try:
        while True:  # kill -9 once progress is strictly between 0 and 100
            now = asyncio.run(progress(url, op_id))
            assert proc.poll() is None, "the worker exited before it could be killed"
            if 0 < now.processed < n:
                proc.send_signal(signal.SIGKILL)
                break
            assert now.processed < n, "finished before the kill: the test would prove nothing"
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
