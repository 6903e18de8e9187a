"""``Idempotency-Key``: a retried write returns the original response, acting once.

The stored response is written by an engine hook inside the write's own transaction,
so the change and the record of its response commit together: a crash between the
two cannot make a retry act twice. Two concurrent requests with one key collide on
the unique ``(user_id, key)`` index; the loser rolls back and replays the winner's
response.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from ti_workflow.engine import Change
from ti_workflow.errors import FieldError, InvalidData
from ti_workflow.http.errors import IdempotencyMismatch, IdempotentReplay
from ti_workflow.http.tables import ApiIdempotencyRow
from ti_workflow.storage.database import read

table = ApiIdempotencyRow.__table__  # type: ignore[attr-defined]
KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")

Render = Callable[[Change], dict[str, Any]]


@dataclass(frozen=True)
class Pending:
    user_id: int
    key: str
    fingerprint: str
    status: int
    render: Render


@dataclass(frozen=True)
class Stored:
    status: int
    body: dict[str, Any]


PENDING: ContextVar[Pending | None] = ContextVar("ti_workflow_idempotency", default=None)


def check_key(key: str) -> str:
    if not KEY_RE.match(key):
        raise InvalidData(
            "header",
            [FieldError("Idempotency-Key", "1 to 200 visible ASCII characters, e.g. a UUID")],
        )
    return key


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


_LOOKUP = select(table.c.fingerprint, table.c.status, table.c.response).where(
    table.c.user_id == bindparam("user_id"),
    table.c.key == bindparam("key"),
)


def lookup(db: Engine, user_id: int, key: str, fp: str) -> Stored | None:
    """The stored response for this key, or None; another request under it is refused."""
    with read(db) as conn:
        row = conn.execute(_LOOKUP, {"user_id": user_id, "key": key}).first()
    if row is None:
        return None
    if row.fingerprint != fp:
        raise IdempotencyMismatch(key)
    return Stored(row.status, row.response)


def hook(conn: Connection, change: Change) -> None:
    """Engine hook: record the response of the keyed request being executed, if any."""
    pending = PENDING.get()
    if pending is None:
        return
    try:
        conn.execute(
            insert(table),
            {
                "user_id": pending.user_id,
                "key": pending.key,
                "fingerprint": pending.fingerprint,
                "case_id": change.case.id,
                "status": pending.status,
                "response": pending.render(change),
                "created_at": change.now,
            },
        )
    except IntegrityError:
        raise IdempotentReplay(pending.key) from None
