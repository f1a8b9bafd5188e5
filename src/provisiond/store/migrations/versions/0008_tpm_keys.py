"""TPM keys: the sealed HMAC keys a TPM device is given (its challenge key, its hub key).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from provisiond.store.types import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tpm_keys",
        sa.Column("key", sa.String(128)),
        sa.Column("issued", UtcDateTime, nullable=False),
        sa.Column("endorsement_key", sa.Text, nullable=False),
        sa.Column("storage_root_key", sa.Text, nullable=False),
        sa.Column("sealed", sa.Text, nullable=False),
        sa.Column("sealed_with", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_tpm_keys"),
    )


def downgrade() -> None:
    op.drop_table("tpm_keys")
