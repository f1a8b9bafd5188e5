"""Fixtures shared by every suite: real databases (SQLite and PostgreSQL) and a real server process."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from provisiond.store.db import Database
from provisiond.store.keyring import Keyring
from provisiond.store.migrate import migrate
from provisiond.store.tables import metadata
from tests.support.databases import admin_execute
from tests.support.server import ServerProcess, start_server

PG_ADMIN_URL = os.environ.get("PROVISIOND_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("PROVISIOND_TEST_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end.

    Skips when PostgreSQL is unreachable, except in CI (PROVISIOND_TEST_REQUIRE_POSTGRES=1),
    where an unreachable PostgreSQL fails the run.
    """
    import asyncpg

    name = f"provisiond_test_{uuid.uuid4().hex[:12]}"
    admin = PG_ADMIN_URL

    def run_admin(sql: str) -> None:
        admin_execute(admin, sql)

    try:
        run_admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required but unreachable at {admin}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {admin}: {exc}")
    yield admin.rsplit("/", 1)[0] + "/" + name
    run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _async_url(engine: str, tmp_path: Path, pg: str | None) -> str:
    if engine == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    assert pg is not None
    return pg.replace("postgresql://", "postgresql+asyncpg://")


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database on each engine."""
    pg = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    database = Database(_async_url(request.param, tmp_path, pg), pool_size=4, keyring=Keyring.in_memory())
    await migrate(database)
    async with database.write() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real ``provisiond serve`` process (SQLite) for the API and compat suites.

    Plain-http webhooks on 127.0.0.1 are allowed so tests can serve custom-allocation webhooks.
    """
    proc = start_server(
        tmp_path_factory.mktemp("server"),
        settings={"webhook_allowlist": ["https://*", "http://127.0.0.1:*"], "webhook_allow_http": True},
    )
    yield proc
    proc.stop()
