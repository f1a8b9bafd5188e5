"""Durable claim operations seen from outside: preparing a database, running ``provisiond worker``
processes against it (optionally through the crash launcher, ``tests/support/crash_launcher.py``),
and reading back what they did. Shared by the crash and scale-out tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from provisiond.domain.claims import ClaimItem, OperationKind, OperationState, Partner
from provisiond.domain.device_identifiers import DeviceIdentifier, Vendor, imei_check_digit
from provisiond.services.claims import ClaimsService
from provisiond.store.db import Database
from provisiond.store.keyring import Keyring
from provisiond.store.migrate import migrate
from provisiond.store.tables import claims, devices, metadata, operation_results, operations
from tests.support.server import PROVISIOND

__all__ = [
    "DONE",
    "Progress",
    "async_url",
    "clean_database",
    "imei",
    "prepare_valid_claims",
    "progress",
    "run_worker_until_done",
    "snapshot",
    "start_worker",
    "url_for",
    "worker_command",
    "worker_env",
]

DONE = (OperationState.COMPLETE, OperationState.COMPLETE_WITH_ERRORS)
ROOT = Path(__file__).resolve().parents[2]  # the repository: where ``tests.support`` imports from


def imei(n: int) -> str:
    """The ``n``-th valid IMEI (TAC prefix 35)."""
    body = f"35{n:012d}"
    return body + imei_check_digit(body)


def url_for(engine: str, tmp: Path, request: pytest.FixtureRequest) -> str:
    """The plain database URL a test on ``engine`` uses: a SQLite file in ``tmp``, or ``pg_url``."""
    if engine == "sqlite":
        return f"sqlite:///{tmp / 'crash.db'}"
    return str(request.getfixturevalue("pg_url"))


def async_url(url: str) -> str:
    return url.replace("sqlite:///", "sqlite+aiosqlite:///").replace("postgresql://", "postgresql+asyncpg://")


async def clean_database(url: str) -> None:
    """Bring the database to the current schema and empty every table."""
    db = Database(async_url(url), keyring=Keyring.in_memory())
    try:
        await migrate(db)
        async with db.write() as conn:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
    finally:
        await db.dispose()


async def prepare_valid_claims(url: str, n: int) -> tuple[int, int]:
    """A clean database with one partner and one stored (not run) operation claiming ``n`` distinct,
    valid devices for its customer: (partner id, operation id)."""
    await clean_database(url)
    db = Database(async_url(url), keyring=Keyring.in_memory())
    try:
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


async def snapshot(url: str, partner_id: int, op_id: int) -> dict[str, Any]:
    """The operation's state and counters, every item's result (device ids relative to the
    operation, so runs compare) and the row counts of the tables the items write."""
    db = Database(async_url(url), keyring=Keyring.in_memory())
    try:
        service = ClaimsService(db)
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


@dataclass(frozen=True, slots=True)
class Progress:
    state: OperationState
    processed: int
    results: int  # rows in operation_results: equals ``processed`` whenever nothing is half-done
    lease_owner: str | None

    @property
    def lease_pid(self) -> int | None:
        """The process holding the lease (worker names are ``worker-<pid>-<random>``)."""
        return int(self.lease_owner.split("-")[1]) if self.lease_owner else None


async def progress(url: str, op_id: int) -> Progress:
    """The operation's counters and lease, cheaply enough to poll (no per-item results)."""
    db = Database(async_url(url), pool_size=1, keyring=Keyring.in_memory())
    try:
        async with db.read() as conn:
            row = (
                await conn.execute(
                    select(operations.c.state, operations.c.processed, operations.c.lease_owner).where(
                        operations.c.id == op_id
                    )
                )
            ).one()
            done = (
                await conn.execute(
                    select(func.count())
                    .select_from(operation_results)
                    .where(operation_results.c.operation_id == op_id)
                )
            ).scalar_one()
        return Progress(OperationState(row.state), row.processed, done, row.lease_owner)
    finally:
        await db.dispose()


def worker_env(batch: int, lease: float = 1) -> dict[str, str]:
    """The environment of a ``provisiond worker``: small batches, a short lease, quiet logs, and
    the repository root importable (the crash launcher is ``tests.support.crash_launcher``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
    env.update(
        {
            "PROVISIOND_WORKER_BATCH_SIZE": str(batch),
            "PROVISIOND_WORKER_LEASE_SECONDS": str(lease),
            "PROVISIOND_LOG_LEVEL": "warning",
            "PYTHONPATH": os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(ROOT)])),
        }
    )
    return env


def worker_command(url: str, data_dir: Path, crash: str | None = None) -> list[str]:
    """``provisiond worker`` on ``url``; with ``crash`` (``after_batch:N`` or ``in_batch:N``) run
    through the crash launcher, so the process SIGKILLs itself at that point."""
    args = ["worker", "--data-dir", str(data_dir), "--database", url]
    if crash is None:
        return [*PROVISIOND, *args]
    return [sys.executable, "-m", "tests.support.crash_launcher", "--crash-point", crash, "--", *args]


def start_worker(
    url: str,
    data_dir: Path,
    batch: int,
    *,
    lease: float = 1,
    secrets_key_file: Path | None = None,
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """``provisiond worker`` on ``url`` as a child process (``popen``: e.g. where its output goes).

    ``secrets_key_file``: the outer key file the servers of that database use; a database holding
    sealed secrets refuses a worker without it.
    """
    env = worker_env(batch, lease)
    if secrets_key_file is not None:
        env["PROVISIOND_SECRETS_KEY_FILE"] = str(secrets_key_file)
    return subprocess.Popen(worker_command(url, data_dir), env=env, **popen)


def run_worker_until_done(
    url: str, data_dir: Path, partner_id: int, op_id: int, batch: int
) -> dict[str, Any]:
    """Start a worker, wait until the operation is finished, stop the worker; the final snapshot."""
    proc = start_worker(url, data_dir, batch)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if asyncio.run(progress(url, op_id)).state in DONE:
                return asyncio.run(snapshot(url, partner_id, op_id))
            assert proc.poll() is None, "the worker died"
            time.sleep(0.2)
        raise AssertionError("the operation did not finish")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
