"""CA certificates of the DPS instance, referenced by enrollment groups' caReferences.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from provisiond.store.types import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dps_ca_certificates",
        sa.Column("key", sa.String(128)),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("der", sa.Text, nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_dps_ca_certificates"),
    )


def downgrade() -> None:
    op.drop_table("dps_ca_certificates")
