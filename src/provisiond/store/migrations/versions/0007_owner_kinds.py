"""Owner kinds: an operation row says whether a partner or a tenant owns it; tenants' name no vendor.

Until now ``operations.partner_id`` held a partner's id or a tenant's ``owner_id``, told apart only
by the ranges they were drawn from (partners 10^9 to 10^10, tenants 10^12 to 10^13), and Azure
Sphere operations carried vendor ``google``. The column becomes ``owner_id`` beside a new
``owner_kind``, and ``vendor`` becomes nullable. Existing rows are converted in the migration's
transaction: an operation whose owner number is a tenant's ``owner_id`` is marked ``tenant`` and
its vendor cleared (these are exactly the ``sphere_*`` operations), every other one ``partner``
with its vendor kept. The values are written out here rather than imported, so that this
migration keeps doing what it did whatever the code later becomes.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    op.drop_index("ix_operations_partner", table_name="operations")
    with op.batch_alter_table("operations") as batch:
        batch.alter_column(
            "partner_id", new_column_name="owner_id", existing_type=sa.BigInteger, existing_nullable=False
        )
        batch.alter_column("vendor", existing_type=sa.String(16), nullable=True)
        batch.add_column(sa.Column("owner_kind", sa.String(16), nullable=True))
    operations = sa.table("operations", sa.column("owner_id"), sa.column("owner_kind"), sa.column("vendor"))
    tenants = sa.table("tenants", sa.column("owner_id"))
    bind.execute(
        sa.update(operations)
        .where(operations.c.owner_id.in_(sa.select(tenants.c.owner_id)))
        .values(owner_kind="tenant", vendor=None)
    )
    bind.execute(sa.update(operations).where(operations.c.owner_kind.is_(None)).values(owner_kind="partner"))
    with op.batch_alter_table("operations") as batch:
        batch.alter_column("owner_kind", existing_type=sa.String(16), nullable=False)
    op.create_index("ix_operations_owner", "operations", ["owner_kind", "owner_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_operations_owner", table_name="operations")
    operations = sa.table("operations", sa.column("vendor"))
    op.get_bind().execute(sa.update(operations).where(operations.c.vendor.is_(None)).values(vendor="google"))
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("owner_kind")
        batch.alter_column("vendor", existing_type=sa.String(16), nullable=False)
        batch.alter_column(
            "owner_id", new_column_name="partner_id", existing_type=sa.BigInteger, existing_nullable=False
        )
    op.create_index("ix_operations_partner", "operations", ["partner_id", "id"])
