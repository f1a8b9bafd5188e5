"""Databases of a test's own: a fresh PostgreSQL database next to the run's, or a SQLite file.

Created and dropped through the admin connection in a thread of its own, because a fixture may
first be requested from inside a running event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

__all__ = ["admin_execute", "own_database"]


def admin_execute(admin_url: str, sql: str) -> None:
    """Run one statement as the PostgreSQL admin (CREATE or DROP DATABASE)."""

    async def run() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@contextmanager
def own_database(engine: str, tmp_path: Path, pg_url: str | None) -> Iterator[str]:
    """The async SQLAlchemy URL of an empty database only this test uses, dropped afterwards.

    ``pg_url`` is the run's PostgreSQL database (the ``pg_url`` fixture); the new one is made
    beside it on the same server.
    """
    if engine == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'own.db'}"
        return
    assert pg_url is not None
    name = f"provisiond_own_{uuid.uuid4().hex[:10]}"
    admin_execute(pg_url, f'CREATE DATABASE "{name}"')
    try:
        yield pg_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    finally:
        admin_execute(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
