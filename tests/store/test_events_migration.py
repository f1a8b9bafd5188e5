"""Migration 0012 adds the event subscription and outbox tables to an existing database and a
downgrade to 0011 drops them again, on both engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from provisiond.store.db import Database
from provisiond.store.keyring import Keyring
from provisiond.store.migrate import migrate
from tests.store.test_hub_connector_migration import _alembic
from tests.support.databases import own_database

TABLES = {"event_subscriptions", "event_outbox"}


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_0012_adds_the_event_tables_and_a_downgrade_drops_them(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    pg = str(request.getfixturevalue("pg_url")) if engine == "postgresql" else None
    with own_database(engine, tmp_path, pg) as url:
        db = Database(url, keyring=Keyring.in_memory(), pool_size=2)
        try:
            async with db.write() as conn:
                await conn.run_sync(lambda sync: _alembic(sync, db.keyring, "0011"))
                before = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            assert not TABLES & before
            await migrate(db)
            async with db.write() as conn:
                after = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
                await conn.run_sync(lambda sync: _alembic(sync, db.keyring, "0011", down=True))
                downgraded = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            assert after >= TABLES and not TABLES & downgraded
        finally:
            await db.dispose()
