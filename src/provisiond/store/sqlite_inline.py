"""An aiosqlite connection that runs each SQLite call on the event-loop thread, at once.

Why: aiosqlite hands every call to a thread of its own and wakes the event loop with the
result. Under load the loop is busy with TLS handshakes and HTTP for many connections, so every
statement of a transaction waits a whole loop iteration for its result, and with SQLite's single
writer the write lock is held across all those waits: measured, registrations topped out near
50/s with the process mostly waiting. A SQLite statement on a local WAL database takes
microseconds, far less than a thread hop, so running it inline is both faster and shorter-locking:
a transaction whose awaits are all database calls now runs from BEGIN to COMMIT without yielding
to the loop. The cost: a statement that waits on another process's lock (a CLI command writing
while the server runs) blocks the loop for that wait, bounded by ``busy_timeout``.

SQLAlchemy's aiosqlite dialect is kept (its SQL, types and error translation are what we test);
only the connection object behind it changes, through ``create_async_engine(async_creator=…)``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiosqlite

__all__ = ["inline_creator"]


class _InlineQueue:
    """Stands in for aiosqlite's queue to its worker thread: runs the call now and resolves the
    future in place (SQLAlchemy's dialect also queues onto it directly, e.g. to set the
    isolation level)."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is None:
                raise
            future.set_exception(exc)
        else:
            if future is not None:
                future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection without its thread."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        super().__init__(lambda: connection, iter_chunk_size=256)
        self._connection = connection
        self._tx = _InlineQueue()  # type: ignore[assignment]

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The sqlite3 connection itself, for statements SQLAlchemy need not see (BEGIN)."""
        if self._connection is None:
            raise ValueError("Connection closed")
        return self._connection

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return partial(fn, *args, **kwargs)()

    async def _connect(self) -> InlineConnection:
        return self

    def __await__(self) -> Any:
        return self._connect().__await__()


def inline_creator(path: str, timeout: float) -> Callable[[], Awaitable[InlineConnection]]:
    """The ``async_creator`` for an engine on the SQLite file at ``path``."""

    async def create() -> InlineConnection:
        # check_same_thread=False only so that a connection collected on another thread can be
        # closed; every call runs on the loop's thread.
        return InlineConnection(sqlite3.connect(path, timeout=timeout, check_same_thread=False))

    return create
