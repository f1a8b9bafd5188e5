"""Migration 0011 gives the hubs of an existing database the ``none`` connector (today's
behaviour: they learn nothing), keeping their weights and regions, on both engines; a downgrade
drops the connector columns again."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, inspect, text

from provisiond.domain.allocation import LinkedHub
from provisiond.store import hub_connections as connection_repo
from provisiond.store import hubs as hub_repo
from provisiond.store.db import Database
from provisiond.store.keyring import Keyring
from provisiond.store.migrate import _SCRIPTS, migrate
from tests.support.databases import own_database


def _alembic(connection: Connection, keyring: Keyring, revision: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    config.attributes["keyring"] = keyring  # migration 0006 needs it, even on an empty database
    (command.downgrade if down else command.upgrade)(config, revision)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_linked_hubs_keep_their_settings_and_get_no_connector(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    pg = str(request.getfixturevalue("pg_url")) if engine == "postgresql" else None
    with own_database(engine, tmp_path, pg) as url:
        db = Database(url, keyring=Keyring.in_memory(), pool_size=2)
        try:
            async with db.write() as conn:
                await conn.run_sync(lambda sync: _alembic(sync, db.keyring, "0009"))
                await conn.execute(
                    text("INSERT INTO dps_hubs (key, host_name, weight, region) VALUES (:k, :h, 3, 'eu')"),
                    {"k": "hub-a.example", "h": "Hub-A.example"},
                )
            await migrate(db)
            async with db.read() as conn:
                assert await hub_repo.list_hubs(conn) == [LinkedHub("Hub-A.example", 3, "eu", "none")]
                assert await connection_repo.get_connection(conn, "hub-a.example") is None
            async with db.write() as conn:
                await conn.run_sync(lambda sync: _alembic(sync, db.keyring, "0009", down=True))
                columns = await conn.run_sync(
                    lambda sync: {c["name"] for c in inspect(sync).get_columns("dps_hubs")}
                )
            assert columns == {"key", "host_name", "weight", "region"}
        finally:
            await db.dispose()
