"""CA certificates of the instance."""

from __future__ import annotations

import base64
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.store.tables import dps_ca_certificates as t

__all__ = ["delete_ca", "get_cas", "insert_ca", "list_cas"]


async def insert_ca(conn: AsyncConnection, name: str, der: bytes, now: datetime) -> bool:
    """Add a CA under a new name; ``False`` when the name is taken."""
    if (await conn.execute(select(t.c.key).where(t.c.key == name.lower()))).first():
        return False
    await conn.execute(
        insert(t).values(key=name.lower(), name=name, der=base64.b64encode(der).decode(), created=now)
    )
    return True


async def list_cas(conn: AsyncConnection) -> list[tuple[str, bytes]]:
    rows = await conn.execute(select(t.c.name, t.c.der).order_by(t.c.key))
    return [(row.name, base64.b64decode(row.der)) for row in rows]


async def get_cas(conn: AsyncConnection, names: list[str]) -> dict[str, bytes]:
    """The DER of each named CA that exists, keyed by the case-folded name."""
    keys = [name.lower() for name in names]
    rows = await conn.execute(select(t.c.key, t.c.der).where(t.c.key.in_(keys)))
    return {row.key: base64.b64decode(row.der) for row in rows}


async def delete_ca(conn: AsyncConnection, name: str) -> bool:
    return (await conn.execute(delete(t).where(t.c.key == name.lower()))).rowcount == 1
