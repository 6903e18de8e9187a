"""Démarches Simplifiées connector tables: dossier <-> case links, sync cursors, the DS outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel


def _when(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class DsDossierRow(SQLModel, table=True):
    """One DS dossier and the one case it became (``case_id`` unique; NULL while its data
    cannot make a case). ``modified_at`` is the ``dateDerniereModification`` fully applied:
    a dossier seen again with the same one is skipped (sync is idempotent)."""

    __tablename__ = "ds_dossiers"

    number: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    procedure: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    dossier_id: str = Field(max_length=200)
    case_id: int | None = Field(default=None, foreign_key="cases.id", unique=True)
    state: str = Field(max_length=30)
    date_depot: datetime | None = _when()
    modified_at: datetime | None = _when()
    deleted_at: datetime | None = _when()
    problems: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    """What stopped the dossier (refused rules, data errors), for ``ds status``; [] when none."""
    synced_at: datetime = _when(nullable=False)


class DsSyncRow(SQLModel, table=True):
    """Per procedure: where the next sync starts (``updatedSince``/``deletedSince``) and,
    while a run is under way, the page it reached (an interrupted run resumes there)."""

    __tablename__ = "ds_sync"

    procedure: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    since: datetime | None = _when()
    deleted_since: datetime | None = _when()
    run_since: datetime | None = _when()
    run_cursor: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    run_started_at: datetime | None = _when()
    run_max_seen: datetime | None = _when()
    last_run_at: datetime | None = _when()
    last_report: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )


class DsOutboxRow(SQLModel, table=True):
    """A change to write on DS, queued in the transaction of the event that caused it."""

    __tablename__ = "ds_outbox"
    __table_args__ = (
        Index("ix_ds_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_ds_outbox_case", "case_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=300, unique=True)
    case_id: int = Field(foreign_key="cases.id")
    event_seq: int
    dossier_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    operation: str = Field(max_length=40)
    """``instruct``, ``accept``, ``refuse``, ``message`` (a return for completion)."""
    motivation: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = _when(nullable=False)
    lease_until: datetime | None = _when()
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    outcome: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _when(nullable=False)
    sent_at: datetime | None = _when()
