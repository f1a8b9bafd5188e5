"""Bring a database to the newest schema with Alembic, on either engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from provisiond.store.db import Database
from provisiond.store.keyring import Keyring

__all__ = ["migrate"]

_SCRIPTS = Path(__file__).parent / "migrations"


def _upgrade(connection: Connection, keyring: Keyring) -> None:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    config.attributes["keyring"] = keyring  # migration 0006 seals the secrets already stored
    command.upgrade(config, "head")


async def migrate(db: Database) -> None:
    """Apply every pending migration in one write transaction (DDL is transactional on both engines)."""
    async with db.write() as conn:
        await conn.run_sync(_upgrade, db.keyring)
