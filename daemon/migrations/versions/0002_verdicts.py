"""Verdicts kept between evaluations: a revision per account, bumped by every write that
changes its stored mail, and the `evaluations` table holding the team's latest verdicts.
Drafts remember the digest of what Relight wrote, to tell an untouched draft from an
edited one.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copy of the type in daemon.models: a migration must not change when it does.
_Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("revision", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    op.create_table(
        "evaluations",
        sa.Column("team_key", sa.String(64), nullable=False),
        sa.Column("revisions", sa.Text(), nullable=False),
        sa.Column("evaluated_at", _Moment, nullable=False),
        sa.Column("verdicts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("team_key", name="pk_evaluations"),
    )
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("digest", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("drafts") as batch:
        batch.drop_column("digest")
    op.drop_table("evaluations")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("revision")
