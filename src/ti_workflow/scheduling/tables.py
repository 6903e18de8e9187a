"""Timer rows and the scheduler lock: the rows are the truth, not APScheduler's job store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index
from sqlmodel import Field, SQLModel


class TimerRow(SQLModel, table=True):
    """One due action. ``key`` makes creation idempotent; ``status`` + lease make firing once."""

    __tablename__ = "timers"
    __table_args__ = (
        Index("ix_timers_status_due", "status", "due_at"),
        Index("ix_timers_case_status", "case_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, unique=True)
    campaign_id: str = Field(max_length=100)
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    name: str = Field(max_length=200)
    due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    action: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    late_policy: str = Field(max_length=20)
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=200)
    lease_until: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    fired_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    outcome: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class SchedulerLockRow(SQLModel, table=True):
    """On SQLite one scheduler at a time: the holder renews ``expires_at`` while it runs."""

    __tablename__ = "scheduler_locks"

    name: str = Field(primary_key=True, max_length=50)
    holder: str = Field(max_length=200)
    acquired_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
