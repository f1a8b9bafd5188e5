"""A linked hub's connector: its kind and endpoint in the clear, its connection string sealed.

The secret is sealed (store/keyring.py) bound to the hub's row, so a value copied to another row
does not open, and ``sealed_with`` lets ``secrets rotate`` reseal it (store/secrets.py). It is
opened only here, for the one hub a connector is about to call.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.hub_identities import ConnectorKind, HubConnection
from provisiond.store.db import keyring_of
from provisiond.store.keyring import key_id_of
from provisiond.store.tables import dps_hubs as t

__all__ = ["get_connection", "hub_row", "set_connection"]


def hub_row(key: str) -> str:
    """The associated data a hub's sealed connector secret is bound to."""
    return f"dps_hubs/{key}"


async def set_connection(conn: AsyncConnection, host_name: str, connection: HubConnection | None) -> bool:
    """Give a linked hub its connector (``None``: none); whether the hub is linked."""
    key = host_name.lower()
    if connection is None or connection.kind is ConnectorKind.NONE:
        values: dict[str, object] = {
            "connector": ConnectorKind.NONE.value,
            "endpoint": None,
            "ca_pem": None,
            "sealed": None,
            "sealed_with": None,
        }
    else:
        sealed = keyring_of(conn).seal(connection.secret, hub_row(key))
        values = {
            "connector": connection.kind.value,
            "endpoint": connection.endpoint,
            "ca_pem": connection.ca_pem,
            "sealed": sealed,
            "sealed_with": key_id_of(sealed),
        }
    result = await conn.execute(update(t).where(t.c.key == key).values(**values))
    return result.rowcount == 1


async def get_connection(conn: AsyncConnection, host_name: str) -> HubConnection | None:
    """The hub's connector with its secret opened; ``None`` when it has none (or is not linked)."""
    key = host_name.lower()
    row = (
        await conn.execute(
            select(t.c.host_name, t.c.connector, t.c.endpoint, t.c.ca_pem, t.c.sealed).where(t.c.key == key)
        )
    ).first()
    if row is None or row.connector == ConnectorKind.NONE.value or row.sealed is None:
        return None
    secret = keyring_of(conn).open(row.sealed, hub_row(key))
    return HubConnection(row.host_name, ConnectorKind(row.connector), secret, row.endpoint, row.ca_pem)
