"""Linked hubs, regions, the default allocation policy, and device registration operations.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from provisiond.store.types import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dps_instance") as batch:
        batch.add_column(
            sa.Column("allocation_policy", sa.String(16), nullable=False, server_default="hashed")
        )
    op.create_table(
        "dps_hubs",
        sa.Column("key", sa.String(255)),
        sa.Column("host_name", sa.String(255), nullable=False),
        sa.Column("weight", sa.Integer, nullable=False),
        sa.Column("region", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_dps_hubs"),
    )
    op.create_table(
        "dps_regions",
        sa.Column("network", sa.String(64)),
        sa.Column("region", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("network", name="pk_dps_regions"),
    )
    op.create_table(
        "registration_operations",
        sa.Column("operation_id", sa.String(64)),
        sa.Column("registration_key", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.Column("updated", UtcDateTime, nullable=False),
        sa.Column("poll_not_before", UtcDateTime, nullable=True),
        sa.Column("doc", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("operation_id", name="pk_registration_operations"),
    )
    op.create_index("ix_registration_operations_status", "registration_operations", ["status"])


def downgrade() -> None:
    op.drop_index("ix_registration_operations_status", table_name="registration_operations")
    op.drop_table("registration_operations")
    op.drop_table("dps_regions")
    op.drop_table("dps_hubs")
    with op.batch_alter_table("dps_instance") as batch:
        batch.drop_column("allocation_policy")
