"""The audit's own table: checkpoints over the heads of every case chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index
from sqlmodel import Field, SQLModel


class CheckpointRow(SQLModel, table=True):
    """A Merkle root over ``(case_id, last seq, head hash)`` of every case, and its instant.

    The heads are kept so that a later rewrite is located (which case), not just noticed.
    """

    __tablename__ = "audit_checkpoints"
    __table_args__ = (Index("ix_audit_checkpoints_taken_at", "taken_at"),)

    id: int | None = Field(default=None, primary_key=True)
    taken_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    root: str = Field(max_length=64)
    cases: int = 0
    events: int = 0
    heads: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
