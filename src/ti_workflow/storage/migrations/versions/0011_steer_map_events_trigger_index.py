"""steer-map: index events by trigger and instant (the dashboard's filings per day)

Revision ID: steer_map_1
Revises: console_1
"""

from __future__ import annotations

from alembic import op

revision = "steer_map_1"
down_revision = "console_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_trigger_at", "events", ["trigger", "at"])


def downgrade() -> None:
    op.drop_index("ix_events_trigger_at", table_name="events")
