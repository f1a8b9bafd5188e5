"""A linked hub's connector: the connection string sealed at rest, cleared, resealed by a rotation."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from provisiond.domain.allocation import LinkedHub
from provisiond.domain.hub_identities import ConnectorKind, HubConnection
from provisiond.store import hub_connections as repo
from provisiond.store import hubs as hub_repo
from provisiond.store.db import Database
from provisiond.store.keyring import SecretUnreadable
from provisiond.store.secrets import reseal_batch
from provisiond.store.tables import dps_hubs

KEY = base64.b64encode(b"k" * 32).decode()
SECRET = f"HostName=hub-a.example;SharedAccessKeyName=provisioning;SharedAccessKey={KEY}"
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _connection(host: str = "Hub-A.example") -> HubConnection:
    return HubConnection(host, ConnectorKind.IOTHUB, SECRET, "https://10.0.0.5:8443", CA)


async def test_the_connection_string_is_sealed_and_read_back_with_the_kind_listed(db: Database) -> None:
    async with db.write() as conn:
        await hub_repo.put_hub(conn, LinkedHub("Hub-A.example"))
        assert await repo.set_connection(conn, "hub-a.EXAMPLE", _connection())
    async with db.read() as conn:
        assert await repo.get_connection(conn, "HUB-A.example") == _connection()
        assert [h.connector for h in await hub_repo.list_hubs(conn)] == ["iothub"]
        raw = (await conn.execute(select(dps_hubs))).one()
    assert raw.sealed.startswith("v1.") and KEY not in raw.sealed and "SharedAccessKey" not in raw.sealed
    assert raw.sealed_with == db.keyring.current
    assert raw.endpoint == "https://10.0.0.5:8443" and raw.ca_pem == CA  # public, in the clear


async def test_a_hub_without_a_connector_has_none_and_clearing_one_forgets_its_secret(db: Database) -> None:
    async with db.write() as conn:
        await hub_repo.put_hub(conn, LinkedHub("hub-a.example"))
        await hub_repo.put_hub(conn, LinkedHub("hub-b.example"))
        await repo.set_connection(conn, "hub-a.example", _connection())
        await repo.set_connection(conn, "hub-a.example", None)
        # Changing a hub's weight keeps its connector.
        await repo.set_connection(conn, "hub-b.example", _connection("hub-b.example"))
        await hub_repo.put_hub(conn, LinkedHub("hub-b.example", weight=5))
        assert not await repo.set_connection(conn, "not-linked.example", _connection())
    async with db.read() as conn:
        assert await repo.get_connection(conn, "hub-a.example") is None
        rows = {r.key: r for r in await conn.execute(select(dps_hubs))}
        assert await repo.get_connection(conn, "hub-b.example") == _connection("hub-b.example")
    assert rows["hub-a.example"].sealed is None and rows["hub-a.example"].connector == "none"
    assert rows["hub-b.example"].weight == 5


async def test_a_secret_copied_to_another_hub_does_not_open(db: Database) -> None:
    async with db.write() as conn:
        await hub_repo.put_hub(conn, LinkedHub("hub-a.example"))
        await hub_repo.put_hub(conn, LinkedHub("hub-b.example"))
        await repo.set_connection(conn, "hub-a.example", _connection())
        await repo.set_connection(conn, "hub-b.example", _connection("hub-b.example"))
        sealed = (
            await conn.execute(select(dps_hubs.c.sealed).where(dps_hubs.c.key == "hub-a.example"))
        ).scalar()
        await conn.execute(dps_hubs.update().where(dps_hubs.c.key == "hub-b.example").values(sealed=sealed))
    async with db.read() as conn:
        with pytest.raises(SecretUnreadable):
            await repo.get_connection(conn, "hub-b.example")


async def test_a_rotation_reseals_connector_secrets_under_the_new_outer_key(db: Database) -> None:
    async with db.write() as conn:
        await hub_repo.put_hub(conn, LinkedHub("hub-a.example"))
        await hub_repo.put_hub(conn, LinkedHub("hub-plain.example"))
        await repo.set_connection(conn, "hub-a.example", _connection("hub-a.example"))
    keyring = db.keyring
    new = keyring.begin_rotation()
    async with db.write() as conn:
        assert await reseal_batch(conn, new, 100) >= 1
    keyring.finish_rotation()  # the old key is gone: only a resealed row still opens
    async with db.read() as conn:
        assert await repo.get_connection(conn, "hub-a.example") == _connection("hub-a.example")
        rows = {r.key: r.sealed_with for r in await conn.execute(select(dps_hubs))}
    assert rows == {"hub-a.example": new, "hub-plain.example": None}
