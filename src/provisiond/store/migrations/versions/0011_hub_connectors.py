"""Hub connectors: how a linked hub learns its devices, and its sealed connection string.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dps_hubs") as batch:
        batch.add_column(sa.Column("connector", sa.String(16), nullable=False, server_default="none"))
        batch.add_column(sa.Column("endpoint", sa.Text, nullable=True))
        batch.add_column(sa.Column("ca_pem", sa.Text, nullable=True))
        batch.add_column(sa.Column("sealed", sa.Text, nullable=True))
        batch.add_column(sa.Column("sealed_with", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dps_hubs") as batch:
        for name in ("sealed_with", "sealed", "ca_pem", "endpoint", "connector"):
            batch.drop_column(name)
