"""The fire path on SQLite, straight on the driver: the same rows SQLAlchemy would write.

A fire reads one case row, updates it with ``version = expected`` and inserts its events.
Through SQLAlchemy's execution layer those three statements cost more than SQLite itself
(bench/RESULTS.md); here they go to the ``sqlite3`` connection SQLAlchemy opened, inside
the transaction it began (``BEGIN IMMEDIATE``), in the formats its types use: JSON text
from ``json.dumps`` and datetimes as ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC. PostgreSQL
keeps the Core statements.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ti_workflow.domain.events import Event

_SELECT = (
    "SELECT id, workflow, definition_version, campaign_id, state, title, owner_email, data, "
    "facts, regions, version, last_seq, head_hash, created_at, updated_at "
    "FROM cases WHERE id = ?"
)
_ADVANCE = (
    "UPDATE cases SET state = ?, facts = ?, version = ?, last_seq = ?, head_hash = ?, "
    "updated_at = ? WHERE id = ? AND version = ?"
)
_INSERT = (
    "INSERT INTO events (case_id, seq, trigger, source, dest, actor, role, at, payload, "
    "annotations, definition_version, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def sqlite_datetime(instant: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME storage format, for a UTC instant."""
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def select_case(db: sqlite3.Connection, case_id: int) -> dict[str, Any] | None:
    row = db.execute(_SELECT, (case_id,)).fetchone()
    if row is None:
        return None
    return {
        "id": row[0],
        "workflow": row[1],
        "definition_version": row[2],
        "campaign_id": row[3],
        "state": row[4],
        "title": row[5],
        "owner_email": row[6],
        "data": json.loads(row[7]) if row[7] else {},
        "facts": json.loads(row[8]) if row[8] else {},
        "regions": tuple(json.loads(row[9]) if row[9] else ()),
        "version": row[10],
        "last_seq": row[11],
        "head_hash": row[12],
        "created_at": _instant(row[13]),
        "updated_at": _instant(row[14]),
    }


def advance(
    db: sqlite3.Connection,
    case_id: int,
    expected: int,
    state: str,
    facts: dict[str, Any],
    events: Sequence[Event],
) -> bool:
    """Versioned update and event inserts; False (nothing written) if the version moved."""
    last = events[-1]
    cursor = db.execute(
        _ADVANCE,
        (
            state,
            json.dumps(facts),
            expected + 1,
            last.seq,
            last.hash,
            sqlite_datetime(last.at),
            case_id,
            expected,
        ),
    )
    if cursor.rowcount != 1:
        return False
    db.executemany(
        _INSERT,
        [
            (
                e.case_id,
                e.seq,
                e.trigger,
                e.source,
                e.dest,
                e.actor,
                e.role,
                sqlite_datetime(e.at),
                json.dumps(e.payload),
                json.dumps(e.annotations),
                e.definition_version,
                e.prev_hash,
                e.hash,
            )
            for e in events
        ],
    )
    return True
