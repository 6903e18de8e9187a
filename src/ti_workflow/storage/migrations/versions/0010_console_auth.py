"""console: one-time login links, browser sessions, login requests (rate limits)

Revision ID: console_1
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "console_1"
down_revision = "rel_runtime_1"
branch_labels = None
depends_on = None


def _instant(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "console_login_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("api_users.id"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        _instant("created_at"),
        _instant("expires_at"),
        _instant("used_at", nullable=True),
    )
    op.create_index("ix_console_login_links_user_id", "console_login_links", ["user_id"])
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("api_users.id"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        _instant("created_at"),
        _instant("last_seen_at"),
        _instant("expires_at"),
        _instant("revoked_at", nullable=True),
    )
    op.create_index("ix_console_sessions_user_id", "console_sessions", ["user_id"])
    op.create_table(
        "console_login_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        _instant("at"),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
    )
    op.create_index(
        "ix_console_login_requests_address_at", "console_login_requests", ["address_hash", "at"]
    )
    op.create_index("ix_console_login_requests_ip_at", "console_login_requests", ["ip", "at"])


def downgrade() -> None:
    op.drop_table("console_login_requests")
    op.drop_table("console_sessions")
    op.drop_table("console_login_links")
