"""The few statements whose construct depends on the engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["insert_for", "prebuilt"]

_BUILT: dict[tuple[Callable[[Any], Any], str], Any] = {}


def insert_for(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_*`` on the connection's engine."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def prebuilt(conn: AsyncConnection, build: Callable[[Any], Any]) -> Any:
    """The statement ``build(dialect insert module)`` makes, built once per engine kind.

    Why: hot paths (registration, bulk create) spent a third of their time constructing the same
    INSERT ... ON CONFLICT and generating its cache key on every call. A statement built once with
    its values passed at execute time is compiled once and its cache key is memoised.
    """
    name = conn.dialect.name
    stmt = _BUILT.get((build, name))
    if stmt is None:
        stmt = _BUILT[(build, name)] = build(postgresql if name == "postgresql" else sqlite)
    return stmt
