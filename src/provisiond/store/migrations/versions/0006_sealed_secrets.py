"""Secrets sealed at rest: policy keys and enrollment symmetric keys, under the outer key.

The existing rows of a data dir are sealed here, in the migration's transaction, with the keyring
``provisiond.store.migrate`` hands in; a crash rolls the whole migration back on both engines.
The row identities used as associated data are written out here rather than imported, so that
this migration keeps doing what it did whatever the code later becomes.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_PAGE = 1000


def upgrade() -> None:
    keyring = context.config.attributes["keyring"]
    bind = op.get_bind()
    op.create_table(
        "outer_key_check",
        sa.Column("id", sa.Integer),
        sa.Column("sealed_with", sa.String(32), nullable=False),
        sa.Column("sealed", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outer_key_check"),
    )
    check = sa.table("outer_key_check", sa.column("id"), sa.column("sealed_with"), sa.column("sealed"))
    sealed = keyring.seal("provisiond", "outer_key_check/1")
    bind.execute(sa.insert(check).values(id=1, sealed_with=_key_id(sealed), sealed=sealed))
    _seal_policies(bind, keyring)
    op.add_column("enrollments", sa.Column("sealed_with", sa.String(32), nullable=True))
    _seal_enrollments(bind, keyring)


def _seal_policies(bind: Any, keyring: Any) -> None:
    with op.batch_alter_table("dps_policies") as batch:
        batch.add_column(sa.Column("sealed_keys", sa.Text, nullable=True))
        batch.add_column(sa.Column("sealed_with", sa.String(32), nullable=True))
    policies = sa.table(
        "dps_policies",
        sa.column("name"),
        sa.column("primary_key"),
        sa.column("secondary_key"),
        sa.column("sealed_keys"),
        sa.column("sealed_with"),
    )
    rows = bind.execute(sa.select(policies.c.name, policies.c.primary_key, policies.c.secondary_key)).all()
    for name, primary, secondary in rows:
        sealed = keyring.seal(f"{primary} {secondary}", f"dps_policies/{name}")
        bind.execute(
            sa.update(policies)
            .where(policies.c.name == name)
            .values(sealed_keys=sealed, sealed_with=_key_id(sealed))
        )
    with op.batch_alter_table("dps_policies") as batch:
        batch.drop_column("primary_key")
        batch.drop_column("secondary_key")
        batch.alter_column("sealed_keys", existing_type=sa.Text, nullable=False)
        batch.alter_column("sealed_with", existing_type=sa.String(32), nullable=False)


def _seal_enrollments(bind: Any, keyring: Any) -> None:
    enrollments = sa.table(
        "enrollments", sa.column("kind"), sa.column("key"), sa.column("doc"), sa.column("sealed_with")
    )
    after: tuple[str, str] = ("", "")
    while True:
        page = bind.execute(
            sa.select(enrollments.c.kind, enrollments.c.key, enrollments.c.doc)
            .where(sa.tuple_(enrollments.c.kind, enrollments.c.key) > sa.tuple_(*after))
            .order_by(enrollments.c.kind, enrollments.c.key)
            .limit(_PAGE)
        ).all()
        for kind, key, text in page:
            doc = json.loads(text)
            keys = doc["attestation"].get("symmetric_key")
            if not isinstance(keys, list):
                continue
            sealed = keyring.seal(" ".join(keys), f"enrollments/{kind}/{key}")
            doc["attestation"]["symmetric_key"] = sealed
            text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
            bind.execute(
                sa.update(enrollments)
                .where(enrollments.c.kind == kind, enrollments.c.key == key)
                .values(doc=text, sealed_with=_key_id(sealed))
            )
        if len(page) < _PAGE:
            return
        after = (page[-1][0], page[-1][1])


def _key_id(sealed: str) -> str:
    return sealed.split(".", 2)[1]  # v1.<key id>.<ciphertext>


def downgrade() -> None:
    raise NotImplementedError("sealed secrets are not unsealed by a downgrade")
