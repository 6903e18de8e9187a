"""territory_contacts: the account that files amendments for a territory (FAQ 2.3)

Revision ID: amendments_1
Revises: 0006
Create Date: 2026-12-03 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "amendments_1"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "territory_contacts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "territory_id", sa.String(length=40), sa.ForeignKey("territories.id"), nullable=False
        ),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_territory_contacts_territory_id", "territory_contacts", ["territory_id"])


def downgrade() -> None:
    op.drop_index("ix_territory_contacts_territory_id", table_name="territory_contacts")
    op.drop_table("territory_contacts")
