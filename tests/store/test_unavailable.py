"""A SQLite database locked by another process makes the store unavailable, then usable again.

The write transaction's BEGIN IMMEDIATE goes to sqlite3 directly (store/db.py); its timeout must
still surface as StoreUnavailable, and the single writer connection must go back to the pool.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from provisiond.errors import InvalidInput, StoreUnavailable
from provisiond.store.db import Database
from provisiond.store.keyring import Keyring


async def test_a_write_lock_held_elsewhere_is_store_unavailable_and_the_writer_recovers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    db = Database(f"sqlite+aiosqlite:///{path}", sqlite_busy_timeout_ms=100, keyring=Keyring.in_memory())
    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's writer
        try:
            for _ in range(2):  # the pool's one writer connection must come back each time
                with pytest.raises(StoreUnavailable):
                    async with db.write() as conn:
                        await conn.execute(text("INSERT INTO t VALUES (1)"))
        finally:
            other.execute("ROLLBACK")
            other.close()
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT n FROM t"))).scalars().all() == [2]
    finally:
        await db.dispose()


async def test_text_postgresql_cannot_hold_is_bad_input_not_a_failure(db: Database) -> None:
    """A NUL reaching the store by a way wirejson does not guard (a path, a query) is the caller's
    fault: on PostgreSQL the write fails with SQLSTATE 22021, which is answered as bad input."""
    statement = text("SELECT CAST(:value AS TEXT)")
    if db.dialect == "sqlite":  # SQLite stores it; nothing to map
        async with db.write() as conn:
            assert (await conn.execute(statement, {"value": "a\x00b"})).scalar() == "a\x00b"
        return
    with pytest.raises(InvalidInput, match="cannot store"):
        async with db.write() as conn:
            await conn.execute(statement, {"value": "a\x00b"})
