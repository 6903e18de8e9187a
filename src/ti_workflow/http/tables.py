"""The API's own tables: users, tokens (hashes only), idempotency keys, refusal log.

Migration ``0004_api_users_tokens`` creates them; these SQLModel classes declare the
same schema for reads and writes with SQLAlchemy Core.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _instant(nullable: bool = False) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(DateTime(timezone=True), nullable=nullable),
    )


class ApiUserRow(SQLModel, table=True):
    """Someone (or a script) who acts over HTTP under one role."""

    __tablename__ = "api_users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    role: str = Field(max_length=50)
    region: str | None = Field(default=None, max_length=3)
    email: str | None = Field(default=None, max_length=254)
    created_at: datetime = _instant()
    disabled_at: datetime | None = _instant(nullable=True)


class ApiTokenRow(SQLModel, table=True):
    """A bearer token: only the SHA-256 of the secret is kept; the secret is shown once."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="api_users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    label: str = Field(default="", max_length=200)
    created_at: datetime = _instant()
    expires_at: datetime | None = _instant(nullable=True)
    revoked_at: datetime | None = _instant(nullable=True)


class ApiIdempotencyRow(SQLModel, table=True):
    """The response of a write, kept under the caller's ``Idempotency-Key``.

    Written inside the write's own transaction (an engine hook): the response and
    the change it describes are committed together or not at all.
    """

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_api_idempotency_user_key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="api_users.id")
    key: str = Field(max_length=200)
    fingerprint: str = Field(max_length=64)
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    status: int
    response: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _instant()


class ApiAccessLogRow(SQLModel, table=True):
    """Every refusal (401, 403, 404, 409, 412, 413, 422...) the API answered.

    ``case_id`` has no foreign key on purpose: a refusal may name a case that does
    not exist (that is often why it was refused).
    """

    __tablename__ = "api_access_log"
    __table_args__ = (Index("ix_api_access_log_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _instant()
    user_id: int | None = Field(default=None)
    actor: str = Field(default="", max_length=300)
    method: str = Field(max_length=10)
    path: str = Field(max_length=500)
    status: int
    problem: str = Field(max_length=100)
    case_id: int | None = Field(default=None)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
