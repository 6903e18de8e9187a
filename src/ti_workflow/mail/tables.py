"""The outbox: every rendered message, written in the transaction of what caused it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel


class OutboxRow(SQLModel, table=True):
    """A message exactly as it will be (or was) sent; ``dedupe_key`` stops a second copy."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_case", "case_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=300, unique=True)
    dedupe_key: str = Field(max_length=300, unique=True)
    notification: str = Field(max_length=100)
    campaign_id: str | None = Field(default=None, max_length=100)
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    event_seq: int | None = None
    timer_id: int | None = None
    recipients: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    remaining: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    rejected: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    subject: str = Field(sa_column=Column(Text, nullable=False))
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    claimed_by: str | None = Field(default=None, max_length=200)
    """``host:pid`` of the sender holding the row while it is ``sending``."""
    lease_until: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    sent_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
