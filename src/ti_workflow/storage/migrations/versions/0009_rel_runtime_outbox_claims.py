"""outbox: who holds a claimed message (a dead sender's claims are taken back at once)

Revision ID: rel_runtime_1
Revises: 0006
Create Date: 2026-12-03 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rel_runtime_1"
down_revision = "ds_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_by")
