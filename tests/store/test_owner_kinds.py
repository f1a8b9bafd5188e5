"""Operations are owned by a kind of account and a number together, on both engines: migration
0007 marks the operations of an existing database (tenants' ``tenant`` without a vendor, partners'
``partner`` with theirs) and undoes that on downgrade, and a partner whose number equals a
tenant's still sees none of the tenant's operations."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import BigInteger, Connection, Integer, String, Uuid, column, insert, select, table, text

from provisiond.domain.claims import ItemResult, ItemStatus, OperationKind, OwnerKind, Partner
from provisiond.domain.device_identifiers import Vendor
from provisiond.errors import NotFound
from provisiond.services.claims import ClaimsService
from provisiond.services.sphere import SphereService
from provisiond.services.worker import OperationWorker
from provisiond.store import claims as claims_repo
from provisiond.store.db import Database
from provisiond.store.keyring import Keyring
from provisiond.store.migrate import _SCRIPTS, migrate
from provisiond.store.tables import operations
from provisiond.store.types import UtcDateTime
from tests.support.databases import own_database

PARTNER = 1_000_000_007
TENANT_OWNER = 1_000_000_000_005
TENANT = uuid.UUID(int=5)
SPHERE_OP = uuid.UUID(int=3)
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

# (id, kind, owner number, vendor) as versions before 0007 stored them.
OLD_OPERATIONS = [
    (1_000_000_001, "claim", PARTNER, "google"),
    (1_000_000_002, "unclaim", PARTNER, "samsung"),
    (1_000_000_003, "sphere_bulk_claim", TENANT_OWNER, "google"),
]


def _alembic(connection: Connection, keyring: Keyring, step: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    config.attributes["keyring"] = keyring  # 0006 seals the (here: no) secrets already stored
    getattr(command, step)(config, revision)


def _old_operations() -> Any:
    return table(
        "operations",
        column("id", BigInteger),
        column("kind", String),
        column("partner_id", BigInteger),
        column("vendor", String),
        column("state", String),
        column("total", Integer),
        column("processed", Integer),
        column("succeeded", Integer),
        column("created", UtcDateTime),
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database of its own at revision 0006 (before owner kinds) with a partner's and a
    tenant's operations in it."""
    pg = str(request.getfixturevalue("pg_url")) if request.param == "postgresql" else None
    with own_database(request.param, tmp_path, pg) as url:
        db = Database(url, keyring=Keyring.in_memory(), pool_size=2)
        async with db.write() as conn:
            await conn.run_sync(_alembic, db.keyring, "upgrade", "0006")
            await conn.execute(
                insert(
                    table(
                        "partners",
                        column("id"),
                        column("name"),
                        column("token_hash"),
                        column("created", UtcDateTime),
                    )
                ),
                {"id": PARTNER, "name": "reseller", "token_hash": "p" * 64, "created": NOW},
            )
            tenants = table(
                "tenants",
                column("id", Uuid),
                column("owner_id"),
                column("name"),
                column("token_hash"),
                column("created", UtcDateTime),
            )
            await conn.execute(
                insert(tenants),
                {
                    "id": TENANT,
                    "owner_id": TENANT_OWNER,
                    "name": "tenant",
                    "token_hash": "t" * 64,
                    "created": NOW,
                },
            )
            await conn.execute(
                insert(_old_operations()),
                [
                    {
                        "id": op_id,
                        "kind": kind,
                        "partner_id": owner,
                        "vendor": vendor,
                        "state": "pending",
                        "total": 0,
                        "processed": 0,
                        "succeeded": 0,
                        "created": NOW,
                    }
                    for op_id, kind, owner, vendor in OLD_OPERATIONS
                ],
            )
            await conn.execute(
                insert(
                    table("sphere_operations", column("id", Uuid), column("operation_id"), column("owner_id"))
                ),
                {"id": SPHERE_OP, "operation_id": 1_000_000_003, "owner_id": TENANT_OWNER},
            )
        yield db
        await db.dispose()


async def test_migration_marks_tenants_and_partners_operations_and_clears_sphere_vendors(
    old_database: Database,
) -> None:
    db = old_database
    await migrate(db)
    async with db.read() as conn:
        rows = {
            row.id: (row.owner_kind, row.owner_id, row.vendor)
            for row in await conn.execute(
                select(operations.c.id, operations.c.owner_kind, operations.c.owner_id, operations.c.vendor)
            )
        }
    assert rows == {
        1_000_000_001: ("partner", PARTNER, "google"),
        1_000_000_002: ("partner", PARTNER, "samsung"),
        1_000_000_003: ("tenant", TENANT_OWNER, None),
    }
    claims, sphere = ClaimsService(db), SphereService(db)
    partner = Partner(PARTNER, "reseller")
    listed, total, _ = await claims.operations(partner, None, None, None, 10)
    assert ([op.id for op in listed], total) == ([1_000_000_001, 1_000_000_002], 2)
    assert (await claims.operation(partner, 1_000_000_002)).vendor is Vendor.SAMSUNG
    tenant = await sphere.tenant(TENANT)
    core = (await sphere.operation(tenant, str(SPHERE_OP))).core
    assert (core.owner, core.vendor) == (tenant.owner, None)


async def test_downgrade_gives_back_the_old_owner_column_and_vendors(old_database: Database) -> None:
    """0007 undone: one owner number again, and Sphere operations named ``google`` as before."""
    db = old_database
    await migrate(db)
    async with db.write() as conn:
        await conn.run_sync(_alembic, db.keyring, "downgrade", "0006")
    async with db.read() as conn:
        old = _old_operations()
        rows = [
            tuple(row)
            for row in await conn.execute(
                select(old.c.id, old.c.kind, old.c.partner_id, old.c.vendor).order_by(old.c.id)
            )
        ]
        revision = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert rows == OLD_OPERATIONS and revision == "0006"


async def test_a_partner_numbered_like_a_tenant_sees_none_of_its_operations(db: Database) -> None:
    """The owner kind, not the number ranges, keeps partners and tenants apart."""
    sphere, claims = SphereService(db), ClaimsService(db)
    tenant, _ = await sphere.create_tenant("tenant")
    twin = Partner(tenant.owner_id, "same number")
    async with db.write() as conn:
        await claims_repo.insert_partner(conn, twin, "x" * 64, NOW)
    claimed = await sphere.bulk_claim(tenant, [f"{n:0128x}" for n in range(3)])
    await OperationWorker(db).run_once()
    assert claimed.core.owner.kind is OwnerKind.TENANT and claimed.core.vendor is None
    with pytest.raises(NotFound):
        await claims.operation(twin, claimed.core.id)
    assert await claims.operations(twin, None, None, None, 10) == ([], 0, False)
    mine = await claims.submit(twin, OperationKind.CLAIM, Vendor.GOOGLE, [])
    assert (await claims.operation(twin, mine.id)).owner == twin.owner
    items = await sphere.operation_items(await sphere.operation(tenant, str(claimed.id)))
    assert [result for _, result in items] == [ItemResult(ItemStatus.SUCCESS)] * 3
