"""The few statements whose construct depends on the engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["insert_for"]


def insert_for(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_*`` on the connection's engine."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)
