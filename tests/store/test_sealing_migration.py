"""Migration 0006 seals the secrets of an existing database, on both engines, and the store then
reads them back unchanged; nothing of the plaintext is left in the rows."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, select, text

from provisiond.domain.enrollments import EnrollmentKind
from provisiond.store import enrollments as enrollment_repo
from provisiond.store import instance as instance_repo
from provisiond.store.db import Database
from provisiond.store.keyring import Keyring, SecretUnreadable
from provisiond.store.migrate import _SCRIPTS, migrate
from provisiond.store.tables import dps_policies, enrollments
from tests.support.databases import own_database

PRIMARY = "cG9saWN5cHJpbWFyeXBvbGljeXByaW1hcnlwb2xpY3k="
SECONDARY = "cG9saWN5c2Vjb25kYXJ5cG9saWN5c2Vjb25kYXJ5cG8="
DEVICE = "ZGV2aWNla2V5ZGV2aWNla2V5ZGV2aWNla2V5ZGV2aWM="


def _to_0005(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    command.upgrade(config, "0005")


def _old_enrollment_doc(rid: str) -> str:
    """An enrollment document as versions before 0006 stored it: the keys as plain text."""
    return json.dumps(
        {
            "id": rid,
            "attestation": {"type": "symmetricKey", "symmetric_key": [DEVICE, DEVICE]},
            "device_id": None,
            "optional_device_information": None,
            "iot_edge": False,
            "iot_hub_host_name": None,
            "iot_hubs": None,
            "initial_twin": None,
            "provisioning_enabled": True,
            "update_hub_assignment": True,
            "migrate_device_data": True,
            "allocation_policy": None,
            "custom_allocation": None,
        }
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database of its own at revision 0005 (before sealing), holding plaintext secrets."""
    pg = str(request.getfixturevalue("pg_url")) if request.param == "postgresql" else None
    with own_database(request.param, tmp_path, pg) as url:
        db = Database(url, keyring=Keyring.in_memory(), pool_size=2)
        now = datetime.now(UTC)
        async with db.write() as conn:
            await conn.run_sync(_to_0005)
            await conn.execute(
                text(
                    "INSERT INTO dps_policies (name, primary_key, secondary_key, rights) VALUES (:n, :p, :s, :r)"
                ),
                {"n": "owner", "p": PRIMARY, "s": SECONDARY, "r": "EnrollmentRead"},
            )
            for n in range(3):
                await conn.execute(
                    enrollments.insert().values(
                        kind="individual",
                        key=f"old-{n}",
                        etag="e",
                        created=now,
                        updated=now,
                        doc=_old_enrollment_doc(f"old-{n}"),
                    )
                )
        yield db
        await db.dispose()


async def test_existing_secrets_are_sealed_and_read_back_unchanged(old_database: Database) -> None:
    db = old_database
    await migrate(db)
    async with db.read() as conn:
        policy = await instance_repo.get_policy(conn, "owner")
        found = [
            await enrollment_repo.get_enrollment(conn, EnrollmentKind.INDIVIDUAL, f"old-{n}")
            for n in range(3)
        ]
        raw_policies = (await conn.execute(select(dps_policies))).all()
        raw_docs = (await conn.execute(select(enrollments.c.doc, enrollments.c.sealed_with))).all()
    assert policy is not None and (policy.primary_key, policy.secondary_key) == (PRIMARY, SECONDARY)
    for e in found:
        assert e is not None and e.attestation.symmetric_key is not None
        assert (e.attestation.symmetric_key.primary_key, e.attestation.symmetric_key.secondary_key) == (
            DEVICE,
            DEVICE,
        )
    current = db.keyring.current
    assert [row.sealed_with for row in raw_policies] == [current]
    assert {row.sealed_with for row in raw_docs} == {current}
    everything = repr(raw_policies) + repr(raw_docs)
    for secret in (PRIMARY, SECONDARY, DEVICE):
        assert secret not in everything


async def test_a_sealed_value_moved_to_another_row_does_not_open(old_database: Database) -> None:
    """The row's identity is the associated data: copying a ciphertext between rows is caught."""
    db = old_database
    await migrate(db)
    async with db.write() as conn:
        doc = (await conn.execute(select(enrollments.c.doc).where(enrollments.c.key == "old-0"))).scalar_one()
        await conn.execute(
            enrollments.update()
            .where(enrollments.c.key == "old-1")
            .values(doc=doc.replace('"old-0"', '"old-1"'))
        )
    async with db.read() as conn:
        with pytest.raises(SecretUnreadable):
            await enrollment_repo.get_enrollment(conn, EnrollmentKind.INDIVIDUAL, "old-1")
