"""A Sphere bulk claim survives kill -9: the worker process SIGKILLs itself at a crash point, a
restarted worker finishes, every device is claimed exactly once, and the per-device results and
final ownership equal an uncrashed run of the same claim. Run on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from provisiond.services.sphere import SphereService
from provisiond.services.worker import OperationWorker
from provisiond.store.db import Database
from provisiond.store.keyring import Keyring
from provisiond.store.tables import operation_results, sphere_devices
from tests.support.operations import async_url, clean_database, url_for, worker_command, worker_env

ENGINES = ["sqlite", "postgresql"]
N = 1000  # the bulk claim limit
BATCH = 100


def dev(n: int) -> str:
    return f"{n:0128x}"


def bulk_items() -> list[str]:
    """1,000 ids with every outcome: new, another tenant's (conflict), already ours, repeated."""
    out = []
    for i in range(N):
        if i % 50 == 7:
            out.append(dev(100_000 + i))  # claimed by the other tenant beforehand
        elif i % 40 == 3:
            out.append(dev(200_000 + i))  # already ours
        elif i % 30 == 9:
            out.append(dev(i - 1).upper())  # the previous device again, other case
        else:
            out.append(dev(i))
    return out


async def prepare(url: str) -> tuple[UUID, UUID, UUID]:
    """A clean database: tenants "mine" and "theirs" with their earlier claims applied, and the
    bulk claim of "mine" stored but not run. (mine id, theirs id, operation id)."""
    await clean_database(url)
    db = Database(async_url(url), keyring=Keyring.in_memory())
    try:
        service = SphereService(db)
        mine, _ = await service.create_tenant("mine")
        theirs, _ = await service.create_tenant("theirs")
        await service.bulk_claim(theirs, [dev(100_000 + i) for i in range(N) if i % 50 == 7])
        await service.bulk_claim(mine, [dev(200_000 + i) for i in range(N) if i % 40 == 3])
        await OperationWorker(db).run_once()
        await OperationWorker(db).run_once()
        op = await service.bulk_claim(mine, bulk_items())
        return mine.id, theirs.id, op.id
    finally:
        await db.dispose()


async def snapshot(url: str, mine_id: UUID, theirs_id: UUID, op_id: UUID) -> dict[str, Any]:
    db = Database(async_url(url), keyring=Keyring.in_memory())
    try:
        service = SphereService(db)
        mine, theirs = await service.tenant(mine_id), await service.tenant(theirs_id)
        op = await service.operation(mine, str(op_id))
        items = await service.operation_items(op)
        names = {mine.owner_id: "mine", theirs.owner_id: "theirs", None: None}
        async with db.read() as conn:
            owners = {
                row.device_id: names[row.owner_id] for row in await conn.execute(select(sphere_devices))
            }
            results = (
                await conn.execute(
                    select(func.count())
                    .select_from(operation_results)
                    .where(operation_results.c.operation_id == op.core.id)
                )
            ).scalar_one()
        return {
            "state": op.core.state,
            "processed": op.core.processed,
            "succeeded": op.core.succeeded,
            "results": [(d, None if r is None else r.as_json()) for d, r in items],
            "result_rows": results,
            "owners": owners,
        }
    finally:
        await db.dispose()


async def reference(tmp: Path) -> dict[str, Any]:
    """The same claim run without a crash, in a database of its own."""
    url = f"sqlite:///{tmp / 'reference.db'}"
    ids = await prepare(url)
    db = Database(async_url(url), keyring=Keyring.in_memory())
    try:
        await OperationWorker(db, batch_size=BATCH).run_once()
    finally:
        await db.dispose()
    return await snapshot(url, *ids)


def run_worker_until_done(url: str, data_dir: Path, ids: tuple[UUID, UUID, UUID]) -> dict[str, Any]:
    proc = subprocess.Popen(
        worker_command(url, data_dir),
        env=worker_env(BATCH),
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            snap = asyncio.run(snapshot(url, *ids))
            if snap["processed"] == N:
                return snap
            assert proc.poll() is None, "the worker died"
            time.sleep(0.2)
        raise AssertionError("the operation did not finish")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("crash", ["after_batch:2", "in_batch:3", "after_batch:9"])
def test_sphere_bulk_claim_killed_at_a_crash_point_resumes_and_matches_an_uncrashed_run(
    engine: str, crash: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = url_for(engine, tmp_path, request)
    ids = asyncio.run(prepare(url))
    crashed = subprocess.run(
        worker_command(url, tmp_path, crash),
        env=worker_env(BATCH),
        timeout=120,
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL
    at_kill = asyncio.run(snapshot(url, *ids))
    where, n = crash.split(":")
    committed = BATCH * (int(n) if where == "after_batch" else int(n) - 1)
    assert at_kill["processed"] == committed == at_kill["result_rows"]  # the open batch left nothing
    final = run_worker_until_done(url, tmp_path, ids)
    expected = asyncio.run(reference(tmp_path))
    assert final == expected
    assert final["processed"] == N and final["result_rows"] == N
    assert final["state"].value == "complete_with_errors"
    conflicts = sum(1 for _, r in final["results"] if r is not None and r["status"] == "section_not_yours")
    assert conflicts == sum(1 for i in range(N) if i % 50 == 7) == N - final["succeeded"]
    assert sum(1 for owner in final["owners"].values() if owner == "theirs") == conflicts
