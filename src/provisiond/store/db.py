"""Engines, transactions and the translation of driver errors.

SQLite allows one writer at a time. Instead of letting writers collide and retry on "database is
locked", every write transaction goes through a one-connection pool and starts with
``BEGIN IMMEDIATE``, so writers queue in the process and never meet a lock; readers use their own
pool and WAL lets them run beside the writer. SQLite calls run inline on the event loop
(store/sqlite_inline.py says why). PostgreSQL needs none of this: both roles share one
engine and conditional writes are single statements.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from provisiond import telemetry
from provisiond.errors import InvalidInput, StoreUnavailable
from provisiond.store.keyring import Keyring
from provisiond.store.sqlite_inline import inline_creator

_NOT_IN_REPERTOIRE = "22021"  # PostgreSQL: character_not_in_repertoire (e.g. a NUL in text)

__all__ = ["Database", "keyring_of"]

_KEYRING = "provisiond.keyring"


def keyring_of(conn: AsyncConnection) -> Keyring:
    """The keyring of the database a store function's connection belongs to."""
    keyring: Keyring = conn.info[_KEYRING]
    return keyring


SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_engine(url: str, *, begin: str, pool_size: int, busy_timeout_ms: int) -> AsyncEngine:
    path = make_url(url).database or ":memory:"
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=60,
        async_creator=inline_creator(path, busy_timeout_ms / 1000),
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that BEGIN is ours to choose.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Freed content is overwritten, so a key resealed or deleted leaves no old bytes behind
        # in the file (docs/security.md); Debian builds default to it, others do not.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight to sqlite3: through exec_driver_sql this one statement cost as much as a query.
        conn.connection.driver_connection.sqlite.execute(begin)

    return engine


class Database:
    """The engines of one database and the two kinds of transaction the services open."""

    def __init__(
        self,
        url: str,
        *,
        keyring: Keyring,
        pool_size: int = 8,
        sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    ) -> None:
        """``keyring``: the outer keys the store seals and opens secrets with (store/keyring.py).
        ``sqlite_busy_timeout_ms``: how long a SQLite statement waits for another process's
        lock before the store reports itself unavailable."""
        self.url = url
        self.keyring = keyring
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            wait = sqlite_busy_timeout_ms
            self._writer = _sqlite_engine(url, begin="BEGIN IMMEDIATE", pool_size=1, busy_timeout_ms=wait)
            self._reader = _sqlite_engine(url, begin="BEGIN", pool_size=pool_size, busy_timeout_ms=wait)
        else:
            self._writer = self._reader = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )

    @property
    def dialect(self) -> str:
        return self._writer.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        async with self._transaction(self._writer) as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (rolled back at the end)."""
        async with self._transaction(self._reader, commit=False) as conn:
            yield conn

    @asynccontextmanager
    async def _transaction(self, engine: AsyncEngine, commit: bool = True) -> AsyncIterator[AsyncConnection]:
        # The connection is closed by SQLAlchemy in a shielded task of its own, so it returns to
        # the pool one loop iteration later. Closing in place was measured faster for HTTP
        # registrations but let a burst of MQTT registrations run back to back in one iteration
        # (every call inline, nothing yields), and the service API's p99 rose past a second;
        # docs/performance.md has the figures.
        try:
            asked = time.monotonic()
            async with engine.connect() as conn:
                telemetry.db_pool_wait(time.monotonic() - asked)
                conn.info[_KEYRING] = self.keyring  # what keyring_of() finds in store functions
                trans = await conn.begin()
                try:
                    yield conn
                except BaseException:
                    await trans.rollback()
                    raise
                if commit:
                    await trans.commit()
                else:
                    await trans.rollback()
        except (PoolTimeout, OperationalError, InterfaceError, OSError, sqlite3.OperationalError) as exc:
            # sqlite3's own error: BEGIN is sent past SQLAlchemy (_sqlite_engine) and can time out
            raise StoreUnavailable(f"database unavailable: {type(exc).__name__}") from exc
        except DBAPIError as exc:
            # A character PostgreSQL's text cannot hold (SQLSTATE 22021: a NUL, or one the database's
            # encoding lacks): a value the caller sent, so bad input in every dialect's terms rather
            # than a 500. The transaction was rolled back. (Request bodies with a NUL are refused
            # before this, by wirejson; this catches what arrives otherwise, in a path or a query.)
            if getattr(exc.orig, "sqlstate", None) == _NOT_IN_REPERTOIRE:
                raise InvalidInput("the text holds a character the database cannot store") from exc
            raise

    async def dispose(self) -> None:
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()
