"""UtcDateTime: aware UTC in and out on both engines, and SQLite text in SQLAlchemy's own format.

The SQLite conversion is ours (for speed); its text must stay exactly what SQLAlchemy's DATETIME
wrote, or rows written before and after would compare and sort differently.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.exc import StatementError

from provisiond.store.db import Database
from provisiond.store.types import UtcDateTime

_meta = MetaData()
_stamps = Table("test_stamps", _meta, Column("n", Integer, primary_key=True), Column("at", UtcDateTime))


async def test_values_come_back_aware_utc_and_sqlite_stores_sqlalchemy_text(db: Database) -> None:
    plus_two = timezone(timedelta(hours=2))
    values = {
        1: datetime(2026, 12, 5, 23, 15, 0, 123456, tzinfo=UTC),
        2: datetime(2026, 12, 5, 23, 15, 0, tzinfo=UTC),  # no microseconds
        3: datetime(2026, 12, 6, 1, 15, 0, 5, tzinfo=plus_two),  # stored as 23:15 UTC
        4: None,
    }
    async with db.write() as conn:
        await conn.run_sync(_meta.create_all)
        await conn.execute(insert(_stamps), [{"n": n, "at": at} for n, at in values.items()])
    async with db.read() as conn:
        back = dict((await conn.execute(select(_stamps.c.n, _stamps.c.at))).all())
        raw = dict((await conn.execute(text("SELECT n, CAST(at AS TEXT) FROM test_stamps"))).all())
    for n, at in values.items():
        assert back[n] == at
        assert back[n] is None or back[n].tzinfo is UTC
    if db.dialect == "sqlite":
        assert raw[1] == "2026-12-05 23:15:00.123456"
        assert raw[2] == "2026-12-05 23:15:00.000000"
        assert raw[3] == "2026-12-05 23:15:00.000005"


async def test_naive_datetimes_are_refused(db: Database) -> None:
    async with db.write() as conn:
        await conn.run_sync(_meta.create_all)
    with pytest.raises(StatementError, match="naive datetime"):  # SQLAlchemy wraps our ValueError
        async with db.write() as conn:
            await conn.execute(insert(_stamps), [{"n": 1, "at": datetime(2026, 1, 1)}])
