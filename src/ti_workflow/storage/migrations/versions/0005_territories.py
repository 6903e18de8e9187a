"""territories: labelled territories, their effective-dated names, members, communes, governance

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-29 10:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None

_DATED = ("territory_names", "territory_members", "territory_communes", "territory_governance")


def _period_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=True),
        sa.Column("ended_by_case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=True),
    ]


def _owner() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "territory_id", sa.String(length=40), sa.ForeignKey("territories.id"), nullable=False
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "territories",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column(
            "campaign_id", sa.String(length=100), sa.ForeignKey("campaigns.id"), nullable=False
        ),
        sa.Column("labelled_on", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_territories_campaign_id", "territories", ["campaign_id"])
    op.create_table(
        "territory_names",
        *_owner(),
        sa.Column("name", sa.String(length=300), nullable=False),
        *_period_columns(),
    )
    op.create_table(
        "territory_members",
        *_owner(),
        sa.Column("siren", sa.String(length=9), nullable=False),
        *_period_columns(),
    )
    op.create_index("ix_territory_members_siren", "territory_members", ["siren"])
    op.create_table(
        "territory_communes",
        *_owner(),
        sa.Column("code_insee", sa.String(length=5), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        *_period_columns(),
    )
    op.create_index("ix_territory_communes_code", "territory_communes", ["code_insee"])
    op.create_table(
        "territory_governance",
        *_owner(),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=True),
        *_period_columns(),
    )
    for table in _DATED:
        op.create_index(f"ix_{table}_territory_id", table, ["territory_id"])


def downgrade() -> None:
    for table in reversed(_DATED):
        op.drop_table(table)
    op.drop_table("territories")
