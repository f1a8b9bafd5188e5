"""The migrations build exactly the schema ``store/tables.py`` declares, on both engines (so a
table added to one and not the other, such as the Sphere tables of migration 0005, is caught)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from provisiond.store.db import Database
from provisiond.store.tables import metadata


async def test_migrated_database_matches_the_table_definitions(db: Database) -> None:
    async with db.read() as conn:
        diffs = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    assert diffs == []
