"""DPS instance, shared access policies, enrollments and registration states.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from provisiond.store.types import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dps_instance",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("id_scope", sa.String(32), nullable=False),
        sa.Column("service_host", sa.String(255), nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dps_instance"),
    )
    op.create_table(
        "dps_policies",
        sa.Column("name", sa.String(64)),
        sa.Column("primary_key", sa.String(128), nullable=False),
        sa.Column("secondary_key", sa.String(128), nullable=False),
        sa.Column("rights", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_dps_policies"),
    )
    op.create_table(
        "enrollments",
        sa.Column("kind", sa.String(16)),
        sa.Column("key", sa.String(128)),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.Column("updated", UtcDateTime, nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", name="pk_enrollments"),
    )
    op.create_table(
        "registration_states",
        sa.Column("key", sa.String(128)),
        sa.Column("group_key", sa.String(128), nullable=True),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.Column("updated", UtcDateTime, nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_registration_states"),
    )
    op.create_index("ix_registration_states_group", "registration_states", ["group_key", "key"])


def downgrade() -> None:
    op.drop_index("ix_registration_states_group", table_name="registration_states")
    op.drop_table("registration_states")
    op.drop_table("enrollments")
    op.drop_table("dps_policies")
    op.drop_table("dps_instance")
