"""The fire path on SQLite, straight on the driver: the same rows SQLAlchemy would write.

A fire reads one case row, updates it with ``version = expected`` and inserts its events.
Through SQLAlchemy's execution layer those three statements cost more than SQLite itself
(bench/RESULTS.md); here they go to the ``sqlite3`` connection SQLAlchemy opened, inside
the transaction it began (``BEGIN IMMEDIATE``), in the formats its types use: JSON text
and datetimes as ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC. PostgreSQL keeps the Core
statements.

An event's ``payload`` and ``annotations`` are stored as their canonical JSON
(:func:`~ti_workflow.domain.events.canonical_json`), the very text its hash covers, so
that ``audit verify`` hashes the stored text as it is (``audit/fast.py``). Any JSON
reader reads them as before; events written earlier (``json.dumps`` text) still verify.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from ti_workflow.domain.events import Event, canonical_json, load_json

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
    if len(text) == 26 and text[10] == " ":  # as written: UTC without an offset
        return datetime.fromisoformat(text + "+00:00")  # a sixth of .replace(tzinfo=UTC)
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def select_case(db: sqlite3.Connection, case_id: int) -> dict[str, Any] | None:
    row = db.execute(_SELECT, (case_id,)).fetchone()
    return None if row is None else case_fields(row)


def case_fields(row: Sequence[Any]) -> dict[str, Any]:
    """A ``cases`` row (``_SELECT``'s columns) as ``StoredCase`` fields."""
    return {
        "id": row[0],
        "workflow": row[1],
        "definition_version": row[2],
        "campaign_id": row[3],
        "state": row[4],
        "title": row[5],
        "owner_email": row[6],
        "data": load_json(row[7]) if row[7] else {},
        "facts": load_json(row[8]) if row[8] else {},
        "regions": tuple(load_json(row[9]) if row[9] else ()),
        "version": row[10],
        "last_seq": row[11],
        "head_hash": row[12],
        "created_at": _instant(row[13]),
        "updated_at": _instant(row[14]),
    }


def case_rows(
    db: sqlite3.Connection,
    case_id: int | None,
    first: int | None,
    last: int | None,
    batch: int,
) -> Iterator[Sequence[Any]]:
    """Raw ``cases`` rows in id order: one case, the ids ``first..last``, or all."""
    where = [
        clause
        for clause, value in (("id = ?", case_id), ("id >= ?", first), ("id <= ?", last))
        if value is not None
    ]
    params = [v for v in (case_id, first, last) if v is not None]
    sql = _SELECT.replace(" WHERE id = ?", "")
    if where:
        sql += " WHERE " + " AND ".join(where)
    cursor = db.cursor()
    try:
        cursor.execute(sql + " ORDER BY id", params)
        while rows := cursor.fetchmany(batch):
            yield from rows
    finally:
        cursor.close()


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
    insert_events(db, events)
    return True


def insert_events(db: sqlite3.Connection, events: Sequence[Event]) -> None:
    db.executemany(_INSERT, [event_row(e) for e in events])


def event_row(e: Event) -> tuple[Any, ...]:
    """The ``events`` row of an event, in ``_INSERT``'s column order."""
    return (
        e.case_id,
        e.seq,
        e.trigger,
        e.source,
        e.dest,
        e.actor,
        e.role,
        sqlite_datetime(e.at),
        canonical_json(e.payload),
        canonical_json(e.annotations),
        e.definition_version,
        e.prev_hash,
        e.hash,
    )
