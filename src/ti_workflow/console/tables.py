"""The console's own tables: one-time login links, sessions, login requests (rate limits).

Migration ``0007_console_auth`` creates them; these SQLModel classes declare the same
schema for reads and writes with SQLAlchemy Core. Secrets are never stored: a link or a
session cookie is kept as its SHA-256, like the API's tokens.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index
from sqlmodel import Field, SQLModel


def _instant(nullable: bool = False) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(DateTime(timezone=True), nullable=nullable),
    )


class ConsoleLoginLinkRow(SQLModel, table=True):
    """A one-time login link e-mailed to a user: valid 15 minutes, used at most once."""

    __tablename__ = "console_login_links"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="api_users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _instant()
    expires_at: datetime = _instant()
    used_at: datetime | None = _instant(nullable=True)


class ConsoleSessionRow(SQLModel, table=True):
    """A signed-in browser: 8 hours idle, 24 hours at most, revoked at logout."""

    __tablename__ = "console_sessions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="api_users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _instant()
    last_seen_at: datetime = _instant()
    expires_at: datetime = _instant()
    revoked_at: datetime | None = _instant(nullable=True)


class ConsoleLoginRequestRow(SQLModel, table=True):
    """Each request for a login link (whether or not the account exists): rate limits."""

    __tablename__ = "console_login_requests"
    __table_args__ = (
        Index("ix_console_login_requests_address_at", "address_hash", "at"),
        Index("ix_console_login_requests_ip_at", "ip", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _instant()
    address_hash: str = Field(max_length=64)
    ip: str = Field(max_length=64)
