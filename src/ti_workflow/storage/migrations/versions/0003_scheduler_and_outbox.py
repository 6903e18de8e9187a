"""scheduler timers, scheduler lock and e-mail outbox

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-29 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def _instant(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "timers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("campaign_id", sa.String(length=100), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        _instant("due_at"),
        sa.Column("action", sa.JSON(), nullable=False),
        sa.Column("late_policy", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        _instant("lease_until", nullable=True),
        _instant("fired_at", nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=False),
        _instant("created_at"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_timers_status_due", "timers", ["status", "due_at"])
    op.create_index("ix_timers_case_status", "timers", ["case_id", "status"])
    op.create_table(
        "scheduler_locks",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        _instant("acquired_at"),
        _instant("expires_at"),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=300), nullable=False),
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("notification", sa.String(length=100), nullable=False),
        sa.Column("campaign_id", sa.String(length=100), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("event_seq", sa.Integer(), nullable=True),
        sa.Column("timer_id", sa.Integer(), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("remaining", sa.JSON(), nullable=False),
        sa.Column("rejected", sa.JSON(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _instant("next_attempt_at"),
        _instant("lease_until", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _instant("created_at"),
        _instant("sent_at", nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index("ix_outbox_status_next", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_case", "outbox", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_case", table_name="outbox")
    op.drop_index("ix_outbox_status_next", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("scheduler_locks")
    op.drop_index("ix_timers_case_status", table_name="timers")
    op.drop_index("ix_timers_status_due", table_name="timers")
    op.drop_table("timers")
