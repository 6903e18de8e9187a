"""Territory tables: every fact about a labelled territory is effective-dated.

A row holds from ``valid_from`` (inclusive) to ``valid_to`` (exclusive, ``NULL`` = still
in force), calendar days in Europe/Paris. Rows are closed, never rewritten, so "which
groupements formed territory X on date D" and "which territory held EPCI Y on D" stay
answerable after any number of amendments. ``case_id`` names the candidacy or amendment
that opened a row, ``ended_by_case_id`` the amendment that closed it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel


class TerritoryRow(SQLModel, table=True):
    __tablename__ = "territories"

    id: str = Field(primary_key=True, max_length=40)
    campaign_id: str = Field(max_length=100, foreign_key="campaigns.id", index=True)
    labelled_on: date
    source: str = Field(max_length=20)
    """``candidacy`` (labelled through the workflow) or ``import`` (an existing list)."""
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class TerritoryNameRow(SQLModel, table=True):
    __tablename__ = "territory_names"

    id: int | None = Field(default=None, primary_key=True)
    territory_id: str = Field(max_length=40, foreign_key="territories.id", index=True)
    name: str = Field(max_length=300)
    valid_from: date
    valid_to: date | None = None
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    ended_by_case_id: int | None = Field(default=None, foreign_key="cases.id")


class TerritoryMemberRow(SQLModel, table=True):
    """One groupement (EPCI à fiscalité propre or EPT, by SIREN) in one territory."""

    __tablename__ = "territory_members"
    __table_args__ = (Index("ix_territory_members_siren", "siren"),)

    id: int | None = Field(default=None, primary_key=True)
    territory_id: str = Field(max_length=40, foreign_key="territories.id", index=True)
    siren: str = Field(max_length=9)
    valid_from: date
    valid_to: date | None = None
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    ended_by_case_id: int | None = Field(default=None, foreign_key="cases.id")


class TerritoryCommuneRow(SQLModel, table=True):
    """A commune added to (``include``) or taken out of (``exclude``) a territory on its own,
    where its groupement is split between territories (FAQ 2.3)."""

    __tablename__ = "territory_communes"
    __table_args__ = (Index("ix_territory_communes_code", "code_insee"),)

    id: int | None = Field(default=None, primary_key=True)
    territory_id: str = Field(max_length=40, foreign_key="territories.id", index=True)
    code_insee: str = Field(max_length=5)
    mode: str = Field(max_length=10)
    valid_from: date
    valid_to: date | None = None
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    ended_by_case_id: int | None = Field(default=None, foreign_key="cases.id")


class TerritoryGovernanceRow(SQLModel, table=True):
    """The binôme / polynôme in force over a period (the whole list, as approved)."""

    __tablename__ = "territory_governance"

    id: int | None = Field(default=None, primary_key=True)
    territory_id: str = Field(max_length=40, foreign_key="territories.id", index=True)
    members: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    justification: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    valid_from: date
    valid_to: date | None = None
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    ended_by_case_id: int | None = Field(default=None, foreign_key="cases.id")


class TerritoryContactRow(SQLModel, table=True):
    """The account that files amendments for a territory, set by the Délégation (for an
    imported territory; a labelled one starts with its candidacy's contact). Rows are
    closed (``ended_at``), never rewritten: who set which address when stays answerable."""

    __tablename__ = "territory_contacts"

    id: int | None = Field(default=None, primary_key=True)
    territory_id: str = Field(max_length=40, foreign_key="territories.id", index=True)
    email: str = Field(max_length=254)
    set_by: str = Field(max_length=200)
    set_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    ended_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
