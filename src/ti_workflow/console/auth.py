"""Sign-in by e-mailed one-time link, server-side sessions, CSRF tokens, rate limits.

* A link is ``/connexion/lien?jeton=<43 random characters>``; only its SHA-256 is kept.
  It is valid 15 minutes and used once (opening it shows a button: a mail scanner that
  follows links does not burn it).
* The message is queued in the outbox (notification ``console_login_link``) and sent by
  the SMTP dispatcher like every other mail. The outbox row holds the link while it is
  useful; once the link is used or expired, :func:`scrub_login_mail` blanks its body.
* The answer to a request never says whether an account exists; requests are counted
  per address (hashed) and per IP, whether or not the account exists.
* A session is a random cookie (HttpOnly, SameSite=Lax, Secure over https) whose
  SHA-256 names a ``console_sessions`` row: 8 hours idle, 24 hours at most, revoked at
  logout. Each session has its CSRF token; before sign-in a double-submit cookie does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from ti_workflow.console.tables import (
    ConsoleLoginLinkRow,
    ConsoleLoginRequestRow,
    ConsoleSessionRow,
)
from ti_workflow.domain.actors import CANDIDATE, EMAIL_RE, SYSTEM
from ti_workflow.http.accounts import User, check_user, users
from ti_workflow.mail.outbox import outbox
from ti_workflow.storage.repository import utc

links = ConsoleLoginLinkRow.__table__  # type: ignore[attr-defined]
sessions = ConsoleSessionRow.__table__  # type: ignore[attr-defined]
requests_t = ConsoleLoginRequestRow.__table__  # type: ignore[attr-defined]

LINK_LIFETIME = timedelta(minutes=15)
SESSION_IDLE = timedelta(hours=8)
SESSION_MAX = timedelta(hours=24)
TOUCH_EVERY = timedelta(minutes=1)
"""A session's ``last_seen_at`` is written at most this often (reads stay reads)."""
RATE_WINDOW = timedelta(minutes=15)
MAX_PER_ADDRESS = 5
MAX_PER_IP = 30
LOGIN_NOTIFICATION = "console_login_link"
COOKIE = "tiw_session"
CSRF_COOKIE = "tiw_csrf"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def clean_address(text: str) -> str | None:
    address = text.strip().lower()
    return address if len(address) <= 254 and EMAIL_RE.match(address) else None


@dataclass(frozen=True)
class Session:
    id: int
    user: User
    csrf: str


@dataclass(frozen=True)
class LinkMail:
    """A link to send: the account it opens and the secret (only ever in the mail)."""

    user: User
    secret: str
    expires_at: datetime


def _user(m: Any) -> User:
    return User(m["id"], m["name"], m["role"], m["region"], m["email"], utc(m["created_at"]))


def accounts_for(conn: Connection, address: str) -> list[User]:
    """The enabled accounts (never ``system``) with this e-mail address."""
    rows = conn.execute(
        select(users)
        .where(
            func.lower(users.c.email) == address,
            users.c.disabled_at.is_(None),
            users.c.role != SYSTEM,
        )
        .order_by(users.c.id)
    ).all()
    return [_user(r._mapping) for r in rows]


def rate_limited(conn: Connection, address: str, ip: str, now: datetime) -> bool:
    """Count this request, then say whether it is one too many (per address or per IP)."""
    address_hash = digest(address)
    conn.execute(insert(requests_t), {"at": now, "address_hash": address_hash, "ip": ip[:64]})
    since = now - RATE_WINDOW
    count = select(func.count()).select_from(requests_t).where(requests_t.c.at > since)
    by_address = conn.execute(count.where(requests_t.c.address_hash == address_hash)).scalar()
    by_ip = conn.execute(count.where(requests_t.c.ip == ip[:64])).scalar()
    return int(by_address or 0) > MAX_PER_ADDRESS or int(by_ip or 0) > MAX_PER_IP


def register_candidate(conn: Connection, address: str, now: datetime) -> User:
    """A candidate account for this address (self-registration: candidates only)."""
    name = "candidat-" + digest(address)[:12]
    problems = check_user(name, CANDIDATE, None, address)
    assert not problems, problems  # the address was checked by clean_address
    conn.execute(
        insert(users),
        {"name": name, "role": CANDIDATE, "region": None, "email": address, "created_at": now},
    )
    row = conn.execute(select(users).where(users.c.name == name)).one()
    return _user(row._mapping)


def new_links(conn: Connection, accounts: list[User], now: datetime) -> list[LinkMail]:
    made = []
    for user in accounts:
        secret = secrets.token_urlsafe(32)
        conn.execute(
            insert(links),
            {
                "user_id": user.id,
                "token_hash": digest(secret),
                "created_at": now,
                "expires_at": now + LINK_LIFETIME,
                "used_at": None,
            },
        )
        made.append(LinkMail(user, secret, now + LINK_LIFETIME))
    return made


def queue_login_mail(
    conn: Connection,
    address: str,
    subject: str,
    text: str,
    html: str,
    mail_from: str,
    now: datetime,
) -> None:
    """One outbox row for the dispatcher (no case, no event: ``audit verify`` knows)."""
    domain = mail_from.rsplit("@", 1)[-1].strip(">").strip() or "ti-workflow.invalid"
    key = uuid.uuid4().hex
    conn.execute(
        insert(outbox),
        {
            "message_id": f"<{key}.{LOGIN_NOTIFICATION}@{domain}>",
            "dedupe_key": f"{LOGIN_NOTIFICATION}:{key}",
            "notification": LOGIN_NOTIFICATION,
            "campaign_id": None,
            "case_id": None,
            "event_seq": None,
            "timer_id": None,
            "recipients": [{"role": "login", "address": address}],
            "remaining": [address],
            "rejected": {},
            "subject": subject,
            "body_text": text,
            "body_html": html,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "last_error": None,
        },
    )


SCRUBBED = "(lien de connexion effacé après usage ou expiration)"


def scrub_login_mail(conn: Connection, now: datetime) -> None:
    """Blank the body of login messages that were sent and whose links have all expired
    (the link was only ever useful 15 minutes): the outbox keeps no usable secret."""
    conn.execute(
        update(outbox)
        .where(
            outbox.c.notification == LOGIN_NOTIFICATION,
            outbox.c.status.in_(("sent", "failed", "undeliverable")),
            outbox.c.created_at < now - LINK_LIFETIME,
            outbox.c.body_text != SCRUBBED,
        )
        .values(body_text=SCRUBBED, body_html=f"<p>{SCRUBBED}</p>")
    )


class LinkRefused(Exception):
    """The link is unknown, used or expired (the page says so, in French)."""


def consume_link(conn: Connection, secret: str, now: datetime) -> tuple[str, Session]:
    """Use a link once and open a session: ``(cookie secret, session)``."""
    row = conn.execute(
        select(links, users)
        .join(users, users.c.id == links.c.user_id)
        .where(links.c.token_hash == digest(secret))
    ).first()
    if row is None:
        raise LinkRefused("unknown")
    m = row._mapping
    if m["used_at"] is not None:
        raise LinkRefused("used")
    if utc(m["expires_at"]) <= now:
        raise LinkRefused("expired")
    if m["disabled_at"] is not None or m["role"] == SYSTEM:
        raise LinkRefused("disabled")
    done = conn.execute(
        update(links)
        .where(links.c.token_hash == digest(secret), links.c.used_at.is_(None))
        .values(used_at=now)
    )
    if done.rowcount != 1:  # a concurrent twin used it first
        raise LinkRefused("used")
    user = User(m["user_id"], m["name"], m["role"], m["region"], m["email"], utc(m["created_at"]))
    return open_session(conn, user, now)


def open_session(conn: Connection, user: User, now: datetime) -> tuple[str, Session]:
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session_id = conn.execute(
        insert(sessions).returning(sessions.c.id),
        {
            "user_id": user.id,
            "token_hash": digest(cookie),
            "csrf_token": csrf,
            "created_at": now,
            "last_seen_at": now,
            "expires_at": now + SESSION_MAX,
            "revoked_at": None,
        },
    ).scalar_one()
    return cookie, Session(session_id, user, csrf)


_SESSION = select(
    sessions.c.id.label("session_id"),
    sessions.c.csrf_token,
    sessions.c.last_seen_at,
    sessions.c.expires_at,
    sessions.c.revoked_at,
    users,
).join(users, users.c.id == sessions.c.user_id)


def find_session(conn: Connection, cookie: str, now: datetime) -> tuple[Session, bool] | None:
    """The live session of this cookie and whether its ``last_seen_at`` needs a touch."""
    row = conn.execute(_SESSION.where(sessions.c.token_hash == digest(cookie))).first()
    if row is None:
        return None
    m = row._mapping
    if m["revoked_at"] is not None or m["disabled_at"] is not None:
        return None
    if utc(m["expires_at"]) <= now or utc(m["last_seen_at"]) + SESSION_IDLE <= now:
        return None
    session = Session(m["session_id"], _user(m), m["csrf_token"])
    return session, utc(m["last_seen_at"]) + TOUCH_EVERY <= now


def touch_session(conn: Connection, session_id: int, now: datetime) -> None:
    conn.execute(update(sessions).where(sessions.c.id == session_id).values(last_seen_at=now))


def revoke_session(conn: Connection, session_id: int, now: datetime) -> None:
    conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def purge(conn: Connection, now: datetime) -> None:
    """Forget what can no longer serve: old requests, dead links and sessions."""
    conn.execute(requests_t.delete().where(requests_t.c.at < now - RATE_WINDOW))
    conn.execute(links.delete().where(links.c.expires_at < now - timedelta(days=1)))
    conn.execute(
        sessions.delete().where(
            or_(
                sessions.c.expires_at < now - timedelta(days=1),
                and_(
                    sessions.c.revoked_at.is_not(None),
                    sessions.c.revoked_at < now - timedelta(days=1),
                ),
            )
        )
    )
