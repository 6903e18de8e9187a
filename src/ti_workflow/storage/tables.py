"""The database schema, declared with SQLModel (migrations in ``migrations/versions``).

SQLModel declares the tables and serves simple reads; the fire path writes with
prepared SQLAlchemy Core statements on these same tables (see ``repository.py``),
since the ORM unit of work costs four times the database itself (LIBRARY-NOTES).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _json(nullable: bool = False) -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=nullable))


def _instant() -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class DefinitionRow(SQLModel, table=True):
    __tablename__ = "definitions"

    version: str = Field(primary_key=True, max_length=64)
    workflow: str = Field(index=True, max_length=100)
    source: str = Field(max_length=500)
    document: dict[str, Any] = _json()
    text: str = Field(sa_column=Column(Text, nullable=False))
    stored_at: datetime = _instant()


class CampaignRow(SQLModel, table=True):
    __tablename__ = "campaigns"

    id: str = Field(primary_key=True, max_length=100)
    name: str = Field(max_length=300)
    timezone: str = Field(max_length=64)
    opens_on: date
    closes_on: date
    version: str = Field(max_length=64)
    text: str = Field(sa_column=Column(Text, nullable=False))
    stored_at: datetime = _instant()


class RegionRow(SQLModel, table=True):
    __tablename__ = "regions"

    code: str = Field(primary_key=True, max_length=3)
    name: str = Field(max_length=200)


class DepartmentRow(SQLModel, table=True):
    __tablename__ = "departments"

    code: str = Field(primary_key=True, max_length=3)
    name: str = Field(max_length=200)
    region: str = Field(max_length=3)


class GroupementRow(SQLModel, table=True):
    """EPCI à fiscalité propre and Grand Paris EPT (``;``-separated departments/regions)."""

    __tablename__ = "groupements"

    siren: str = Field(primary_key=True, max_length=9)
    name: str = Field(max_length=300)
    nature: str = Field(max_length=10)
    departments: str = Field(max_length=100)
    regions: str = Field(max_length=100)
    population: int = 0


class CommuneRow(SQLModel, table=True):
    __tablename__ = "communes"

    code_insee: str = Field(primary_key=True, max_length=5)
    name: str = Field(max_length=200)
    siren: str = Field(max_length=9)
    epci_siren: str | None = Field(default=None, max_length=9, index=True)
    department: str = Field(max_length=3)
    region: str = Field(max_length=3)
    population: int = 0


class CaseRow(SQLModel, table=True):
    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_workflow_state", "workflow", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    workflow: str = Field(max_length=100)
    definition_version: str = Field(max_length=64, foreign_key="definitions.version")
    campaign_id: str = Field(max_length=100, foreign_key="campaigns.id", index=True)
    state: str = Field(max_length=100)
    title: str = Field(default="", max_length=300)
    owner_email: str | None = Field(default=None, max_length=254, index=True)
    data: dict[str, Any] = _json()
    facts: dict[str, Any] = _json()
    regions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    version: int = 1
    last_seq: int = 0
    head_hash: str = Field(max_length=64)
    created_at: datetime = _instant()
    updated_at: datetime = _instant()


class CaseRegionRow(SQLModel, table=True):
    """The regions a case concerns, one row each, for region-scoped lists."""

    __tablename__ = "case_regions"

    case_id: int = Field(primary_key=True, foreign_key="cases.id")
    region: str = Field(primary_key=True, max_length=3, index=True)


class EventRow(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("case_id", "seq", name="uq_events_case_seq"),
        Index("ix_events_trigger_at", "trigger", "at"),  # filings per day (dashboard)
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    seq: int
    trigger: str = Field(max_length=100)
    source: str | None = Field(default=None, max_length=100)
    dest: str = Field(max_length=100)
    actor: str = Field(max_length=300)
    role: str = Field(max_length=50)
    at: datetime = _instant()
    payload: dict[str, Any] = _json()
    annotations: dict[str, Any] = _json()
    definition_version: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
