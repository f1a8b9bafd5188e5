"""Azure Sphere: tenants, their devices, and the public ids of their operations.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from provisiond.store.types import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("owner_id", name="uq_tenants_owner_id"),
        sa.UniqueConstraint("token_hash", name="uq_tenants_token_hash"),
    )
    op.create_table(
        "sphere_devices",
        sa.Column("device_id", sa.String(128)),
        sa.Column("owner_id", sa.BigInteger, nullable=True),
        sa.Column("chip_sku", sa.Integer, nullable=False),
        sa.Column("device_group_id", sa.Uuid, nullable=True),
        sa.Column("product_id", sa.Uuid, nullable=True),
        sa.Column("last_available_os_version", sa.String(64), nullable=True),
        sa.Column("last_installed_os_version", sa.String(64), nullable=True),
        sa.Column("last_os_update", UtcDateTime, nullable=True),
        sa.Column("last_update_request", UtcDateTime, nullable=True),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_sphere_devices"),
    )
    op.create_index("ix_sphere_devices_owner", "sphere_devices", ["owner_id", "device_id"])
    op.create_table(
        "sphere_operations",
        sa.Column("id", sa.Uuid),
        sa.Column("operation_id", sa.BigInteger, nullable=False),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("device_id", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sphere_operations"),
        sa.UniqueConstraint("operation_id", name="uq_sphere_operations_operation_id"),
    )


def downgrade() -> None:
    for table in ("sphere_operations", "sphere_devices", "tenants"):
        op.drop_table(table)
