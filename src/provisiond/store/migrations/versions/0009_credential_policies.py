"""Certificate issuance: credential policies (issuing CA, sealed key, CRL) and issued certificates.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from provisiond.store.types import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credential_policies",
        sa.Column("key", sa.String(64)),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("validity_days", sa.Integer, nullable=False),
        sa.Column("key_type", sa.String(16), nullable=False),
        sa.Column("crl_url", sa.Text, nullable=True),
        sa.Column("chain_pem", sa.Text, nullable=False),
        sa.Column("sealed_key", sa.Text, nullable=False),
        sa.Column("sealed_with", sa.String(32), nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.Column("crl", sa.Text, nullable=False),
        sa.Column("crl_number", sa.BigInteger, nullable=False),
        sa.Column("crl_next_update", UtcDateTime, nullable=False),
        sa.Column("upper_crls", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_credential_policies"),
    )
    op.create_table(
        "issued_certificates",
        sa.Column("serial", sa.String(64)),
        sa.Column("policy_key", sa.String(64), nullable=False),
        sa.Column("registration_key", sa.String(128), nullable=False),
        sa.Column("registration_id", sa.String(128), nullable=False),
        sa.Column("sha256_thumbprint", sa.String(64), nullable=False),
        sa.Column("not_before", UtcDateTime, nullable=False),
        sa.Column("not_after", UtcDateTime, nullable=False),
        sa.Column("issued", UtcDateTime, nullable=False),
        sa.Column("operation_id", sa.String(64), nullable=False),
        sa.Column("revoked", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("serial", name="pk_issued_certificates"),
    )
    op.create_index(
        "ix_issued_certificates_registration", "issued_certificates", ["registration_key", "issued"]
    )
    op.create_index("ix_issued_certificates_policy", "issued_certificates", ["policy_key", "revoked"])


def downgrade() -> None:
    op.drop_index("ix_issued_certificates_policy", table_name="issued_certificates")
    op.drop_index("ix_issued_certificates_registration", table_name="issued_certificates")
    op.drop_table("issued_certificates")
    op.drop_table("credential_policies")
