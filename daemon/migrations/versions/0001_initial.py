"""The first schema: accounts, folders, messages with their locations and addresses,
drafts, prospects and worker leases.

Revision ID: 0001
Revises:
Create Date: 2024-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the types in daemon.models: a migration must not change when they do.
_Moment = sa.DateTime(timezone=True)
_RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("last_sync_at", _Moment),
        sa.Column("last_success_at", _Moment),
        sa.Column("last_error", sa.String(500)),
        sa.Column("last_error_at", _Moment),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("name", name="uq_accounts_name"),
    )
    op.create_table(
        "folders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("cursor", sa.Text()),
        sa.Column("synced_at", _Moment),
        sa.PrimaryKeyConstraint("id", name="pk_folders"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_folders_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("account_id", "name", name="uq_folders_account_id_name"),
        sa.CheckConstraint("role IN ('inbox', 'sent', 'drafts')", name="ck_folders_role"),
    )
    op.create_table(
        "messages",
        sa.Column("id", _RowId, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text()),
        sa.Column("in_reply_to", sa.Text()),
        sa.Column("reference_ids", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("date", _Moment),
        sa.Column("received_at", _Moment),
        sa.Column("at", _Moment),
        sa.Column("from_email", sa.Text()),
        sa.Column("from_name", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.Text()),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger()),
        sa.Column("excerpt", sa.Text()),
        sa.Column("report_type", sa.String(40)),
        sa.Column("report_action", sa.String(40)),
        sa.Column("report_recipients", sa.Text()),
        sa.Column("defects", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_messages_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("account_id", "dedup_key", name="uq_messages_account_id_dedup_key"),
    )
    op.create_index("ix_messages_account_id_from_email", "messages", ["account_id", "from_email"])
    op.create_index("ix_messages_account_id_thread_id", "messages", ["account_id", "thread_id"])
    op.create_table(
        "message_locations",
        sa.Column("folder_id", sa.Integer(), nullable=False),
        sa.Column("remote_id", sa.Text(), nullable=False),
        sa.Column("message_id", _RowId, nullable=False),
        sa.PrimaryKeyConstraint("folder_id", "remote_id", name="pk_message_locations"),
        sa.ForeignKeyConstraint(
            ["folder_id"],
            ["folders.id"],
            name="fk_message_locations_folder_id_folders",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_message_locations_message_id_messages",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_message_locations_message_id", "message_locations", ["message_id"])
    op.create_table(
        "message_addresses",
        sa.Column("message_id", _RowId, nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "role", "email", name="pk_message_addresses"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_message_addresses_message_id_messages",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("role IN ('to', 'cc', 'reply_to')", name="ck_message_addresses_role"),
    )
    op.create_index("ix_message_addresses_email", "message_addresses", ["email"])
    op.create_table(
        "drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("prospect", sa.Text(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("folder", sa.Text()),
        sa.Column("remote_id", sa.Text()),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("created_at", _Moment, nullable=False),
        sa.Column("updated_at", _Moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_drafts"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_drafts_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("key", name="uq_drafts_key"),
        sa.UniqueConstraint(
            "account_id", "prospect", "stage", name="uq_drafts_account_id_prospect_stage"
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'written', 'dismissed', 'retracted', 'sent')",
            name="ck_drafts_state",
        ),
    )
    op.create_table(
        "prospects",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("snoozed_until", _Moment),
        sa.Column("excluded_reason", sa.Text()),
        sa.Column("updated_at", _Moment, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "email", name="pk_prospects"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_prospects_account_id_accounts",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "leases",
        sa.Column("account_name", sa.String(200), nullable=False),
        sa.Column("worker_id", sa.Text(), nullable=False),
        sa.Column("expires_at", _Moment, nullable=False),
        sa.PrimaryKeyConstraint("account_name", name="pk_leases"),
    )


def downgrade() -> None:
    for table in (
        "leases",
        "prospects",
        "drafts",
        "message_addresses",
        "message_locations",
        "messages",
        "folders",
        "accounts",
    ):
        op.drop_table(table)
