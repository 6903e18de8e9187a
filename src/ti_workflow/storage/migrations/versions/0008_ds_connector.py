"""ds: Démarches Simplifiées dossier links, sync cursors and the DS outbox

Revision ID: ds_1
Revises: 0006
Create Date: 2026-12-03 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ds_1"
down_revision = "amendments_1"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ds_dossiers",
        sa.Column("number", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("procedure", sa.BigInteger(), nullable=False),
        sa.Column("dossier_id", sa.String(length=200), nullable=False),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=True),
        sa.Column("state", sa.String(length=30), nullable=False),
        _when("date_depot"),
        _when("modified_at"),
        _when("deleted_at"),
        sa.Column("problems", sa.JSON(), nullable=False),
        _when("synced_at", nullable=False),
        sa.UniqueConstraint("case_id", name="uq_ds_dossiers_case_id"),
    )
    op.create_index("ix_ds_dossiers_procedure", "ds_dossiers", ["procedure"])
    op.create_table(
        "ds_sync",
        sa.Column("procedure", sa.BigInteger(), primary_key=True, autoincrement=False),
        _when("since"),
        _when("deleted_since"),
        _when("run_since"),
        sa.Column("run_cursor", sa.Text(), nullable=True),
        _when("run_started_at"),
        _when("run_max_seen"),
        _when("last_run_at"),
        sa.Column("last_report", sa.JSON(), nullable=False),
    )
    op.create_table(
        "ds_outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dedupe_key", sa.String(length=300), nullable=False, unique=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("dossier_number", sa.BigInteger(), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("motivation", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("next_attempt_at", nullable=False),
        _when("lease_until"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        _when("created_at", nullable=False),
        _when("sent_at"),
    )
    op.create_index("ix_ds_outbox_status_next", "ds_outbox", ["status", "next_attempt_at"])
    op.create_index("ix_ds_outbox_case", "ds_outbox", ["case_id"])


def downgrade() -> None:
    op.drop_table("ds_outbox")
    op.drop_table("ds_sync")
    op.drop_table("ds_dossiers")
