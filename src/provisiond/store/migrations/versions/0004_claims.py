"""Claims: partners, customers, devices and their lookup keys, claims, durable operations.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from provisiond.store.types import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.BigInteger, autoincrement=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_partners"),
        sa.UniqueConstraint("token_hash", name="uq_partners_token_hash"),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.BigInteger, autoincrement=False),
        sa.Column("partner_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("vendor", sa.String(16), nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
    )
    op.create_index("ix_customers_partner", "customers", ["partner_id", "id"])
    op.create_table(
        "devices",
        sa.Column("id", sa.BigInteger, autoincrement=True),
        sa.Column("manufacturer", sa.String(128), nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("imei", sa.String(32), nullable=True),
        sa.Column("meid", sa.String(32), nullable=True),
        sa.Column("serial", sa.String(128), nullable=True),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
    )
    op.create_table(
        "device_keys",
        sa.Column("key", sa.String(512)),
        sa.Column("device_id", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_device_keys"),
    )
    op.create_index("ix_device_keys_device", "device_keys", ["device_id"])
    op.create_table(
        "claims",
        sa.Column("device_id", sa.BigInteger),
        sa.Column("section", sa.String(32)),
        sa.Column("customer_id", sa.BigInteger, nullable=False),
        sa.Column("partner_id", sa.BigInteger, nullable=False),
        sa.Column("order_number", sa.String(200), nullable=True),
        sa.Column("vendor_params", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("device_id", "section", name="pk_claims"),
    )
    op.create_index("ix_claims_customer", "claims", ["customer_id", "device_id"])
    op.create_index("ix_claims_partner", "claims", ["partner_id", "device_id"])
    op.create_table(
        "operations",
        sa.Column("id", sa.BigInteger, autoincrement=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("partner_id", sa.BigInteger, nullable=False),
        sa.Column("vendor", sa.String(16), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("processed", sa.Integer, nullable=False),
        sa.Column("succeeded", sa.Integer, nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.Column("started", UtcDateTime, nullable=True),
        sa.Column("completed", UtcDateTime, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_operations"),
    )
    op.create_index("ix_operations_partner", "operations", ["partner_id", "id"])
    op.create_index("ix_operations_state", "operations", ["state"])
    op.create_table(
        "operation_items",
        sa.Column("operation_id", sa.BigInteger),
        sa.Column("seq", sa.Integer),
        sa.Column("request", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("operation_id", "seq", name="pk_operation_items"),
    )
    op.create_table(
        "operation_results",
        sa.Column("operation_id", sa.BigInteger),
        sa.Column("seq", sa.Integer),
        sa.Column("result", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("operation_id", "seq", name="pk_operation_results"),
    )


def downgrade() -> None:
    for table in (
        "operation_results",
        "operation_items",
        "operations",
        "claims",
        "device_keys",
        "devices",
        "customers",
        "partners",
    ):
        op.drop_table(table)
