"""API users and their bearer tokens.

A token is ``tiw_`` + 43 random URL-safe characters (256 bits). Only its SHA-256 is
stored: a leaked database gives no usable token, and with that much entropy a plain
hash is enough (no salt or slow hash needed, unlike passwords). The secret is
returned once, by :func:`create_token`, and never again.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from ti_workflow.domain.actors import (
    CANDIDATE,
    EMAIL_RE,
    REGION_RE,
    REGIONAL_ROLES,
    ROLES,
    SYSTEM,
    TERRITORY_ROLES,
    Actor,
)
from ti_workflow.errors import FieldError, InvalidData, NotFound
from ti_workflow.http.errors import Unauthenticated
from ti_workflow.http.tables import ApiAccessLogRow, ApiTokenRow, ApiUserRow
from ti_workflow.storage import sqlite_fast
from ti_workflow.storage.database import is_sqlite, read
from ti_workflow.storage.repository import utc

users = ApiUserRow.__table__  # type: ignore[attr-defined]
tokens = ApiTokenRow.__table__  # type: ignore[attr-defined]
access_log = ApiAccessLogRow.__table__  # type: ignore[attr-defined]

TOKEN_PREFIX = "tiw_"
HTTP_ROLES = tuple(r for r in ROLES if r != SYSTEM and r not in TERRITORY_ROLES)
"""Territory roles (FAQ 3-5) act through the CLI for now: an API account has no territory."""
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
DURATION_RE = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    region: str | None
    email: str | None
    created_at: datetime

    @property
    def actor(self) -> Actor:
        return Actor(
            self.role, email=self.email if self.role == CANDIDATE else None, region=self.region
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "region": self.region,
            "email": self.email,
            "actor": self.actor.label,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Token:
    id: int
    user: str
    prefix: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def as_dict(self, now: datetime) -> dict[str, object]:
        return {
            "id": self.id,
            "user": self.user,
            "prefix": self.prefix,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "status": self.status(now),
        }


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _user(row: object) -> User:
    m = row._mapping  # type: ignore[attr-defined]
    return User(m["id"], m["name"], m["role"], m["region"], m["email"], utc(m["created_at"]))


def check_user(name: str, role: str, region: str | None, email: str | None) -> list[FieldError]:
    """Every problem with a new user, each naming its option and what is allowed."""
    errors = []
    if not NAME_RE.match(name):
        errors.append(FieldError("NAME", "1-100 letters, digits, '.', '_', '@' or '-'"))
    if role == SYSTEM:
        errors.append(
            FieldError("--role", "system is the scheduler's role and never acts over HTTP")
        )
    elif role not in HTTP_ROLES:
        errors.append(
            FieldError("--role", f"unknown role {role!r}; allowed: {', '.join(HTTP_ROLES)}")
        )
    if role in REGIONAL_ROLES:
        if region is None or not REGION_RE.match(region):
            errors.append(
                FieldError(
                    "--region", f"{role} needs an INSEE region code such as 84, got {region!r}"
                )
            )
    elif region is not None:
        errors.append(
            FieldError("--region", "only regional_council and state_services have a region")
        )
    if role == CANDIDATE and (email is None or not EMAIL_RE.match(email)):
        errors.append(
            FieldError(
                "--email",
                f"a candidate needs the e-mail address that owns its cases, got {email!r}",
            )
        )
    elif email is not None and not EMAIL_RE.match(email):
        errors.append(FieldError("--email", f"not an e-mail address: {email!r}"))
    return errors


def add_user(
    db: Engine,
    name: str,
    role: str,
    now: datetime,
    region: str | None = None,
    email: str | None = None,
) -> User:
    email = email.strip().lower() if email else None
    errors = check_user(name, role, region, email)
    if errors:
        raise InvalidData("user", errors)
    try:
        with db.begin() as conn:
            conn.execute(
                insert(users),
                {"name": name, "role": role, "region": region, "email": email, "created_at": now},
            )
            row = conn.execute(select(users).where(users.c.name == name)).one()
    except IntegrityError:
        raise InvalidData(
            "user", [FieldError("NAME", f"a user named {name!r} already exists")]
        ) from None
    return _user(row)


def list_users(db: Engine) -> list[User]:
    with read(db) as conn:
        return [_user(r) for r in conn.execute(select(users).order_by(users.c.id))]


def get_user(db: Engine, name: str) -> User:
    with read(db) as conn:
        row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        raise NotFound("user", name)
    return _user(row)


def parse_duration(text: str) -> timedelta:
    """ISO 8601 durations in weeks, days, hours, minutes: P30D, P2W, PT12H, P1DT6H."""
    m = DURATION_RE.match(text.strip().upper())
    if not m or not any(m.groups()) or text.strip().upper().endswith("T"):
        raise InvalidData(
            "token",
            [FieldError("--expires-in", f"{text!r} is not a duration such as P30D, P2W or PT12H")],
        )
    weeks, days, hours, minutes = (int(g or 0) for g in m.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes)


def create_token(
    db: Engine, user_name: str, now: datetime, expires_at: datetime | None = None, label: str = ""
) -> tuple[str, Token]:
    """A new token for the user: ``(secret, token)``; the secret is not kept."""
    user = get_user(db, user_name)
    if expires_at is not None and expires_at <= now:
        raise InvalidData("token", [FieldError("--expires", "the expiry is in the past")])
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.begin() as conn:
        token_id = conn.execute(
            insert(tokens).returning(tokens.c.id),
            {
                "user_id": user.id,
                "token_hash": hash_token(secret),
                "prefix": secret[:10],
                "label": label,
                "created_at": now,
                "expires_at": expires_at,
                "revoked_at": None,
            },
        ).scalar_one()
    return secret, Token(token_id, user.name, secret[:10], label, now, expires_at, None)


_TOKENS = select(tokens, users.c.name.label("user_name")).join(
    users, users.c.id == tokens.c.user_id
)


def _token(row: object) -> Token:
    m = row._mapping  # type: ignore[attr-defined]
    return Token(
        m["id"],
        m["user_name"],
        m["prefix"],
        m["label"],
        utc(m["created_at"]),
        utc(m["expires_at"]) if m["expires_at"] else None,
        utc(m["revoked_at"]) if m["revoked_at"] else None,
    )


def list_tokens(db: Engine, user_name: str | None = None) -> list[Token]:
    query = _TOKENS.order_by(tokens.c.id)
    if user_name:
        query = query.where(users.c.name == user_name)
    with read(db) as conn:
        return [_token(r) for r in conn.execute(query)]


def revoke_token(db: Engine, token_id: int, now: datetime) -> Token:
    """Revoke a token (at once, for every process); revoking twice keeps the first instant."""
    with db.begin() as conn:
        conn.execute(
            update(tokens)
            .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        row = conn.execute(_TOKENS.where(tokens.c.id == token_id)).first()
    if row is None:
        raise NotFound("token", token_id)
    return _token(row)


_AUTH = (
    select(
        users.c.id,
        users.c.name,
        users.c.role,
        users.c.region,
        users.c.email,
        users.c.created_at,
        users.c.disabled_at,
        tokens.c.expires_at,
        tokens.c.revoked_at,
    )
    .join(users, users.c.id == tokens.c.user_id)
    .where(tokens.c.token_hash == bindparam("h"))
)


def _token_row(db: Engine, token_hash: str) -> dict[str, Any] | None:
    """The user and token columns for a token hash. On every request, so on SQLite the
    compiled ``_AUTH`` runs on a pooled driver connection, without SQLAlchemy's
    per-statement layers (same values: its types' own processors)."""
    params = {"h": token_hash}
    if not is_sqlite(db):
        with read(db) as conn:
            rows = [tuple(row) for row in conn.execute(_AUTH, params)]
    else:
        raw = db.raw_connection()
        try:
            driver = raw.driver_connection
            assert driver is not None
            rows = sqlite_fast.select_rows(driver, db.dialect, _AUTH, params)
        finally:
            raw.close()
    return dict(zip(_AUTH.selected_columns.keys(), rows[0], strict=True)) if rows else None


def authenticate(db: Engine, secret: str, now: datetime) -> User:
    """The user behind a bearer token, or :class:`Unauthenticated` saying why not."""
    if not secret.startswith(TOKEN_PREFIX):
        raise Unauthenticated("malformed token (API tokens start with 'tiw_')")
    m = _token_row(db, hash_token(secret))
    if m is None:
        raise Unauthenticated("unknown token")
    if m["revoked_at"] is not None:
        raise Unauthenticated("this token was revoked")
    if m["expires_at"] is not None and utc(m["expires_at"]) <= now:
        raise Unauthenticated("this token has expired")
    if m["disabled_at"] is not None or m["role"] == SYSTEM:
        raise Unauthenticated("this user may not use the API")
    return User(m["id"], m["name"], m["role"], m["region"], m["email"], utc(m["created_at"]))


def refusals(db: Engine, limit: int, user_name: str | None = None) -> list[dict[str, object]]:
    """The latest recorded refusals, newest first (``users refusals``)."""
    query = select(access_log).order_by(access_log.c.id.desc()).limit(limit)
    if user_name:
        query = query.where(access_log.c.user_id == get_user(db, user_name).id)
    with read(db) as conn:
        rows = conn.execute(query).all()
    return [{**r._mapping, "at": utc(r._mapping["at"]).isoformat()} for r in rows]
