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
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Dialect, Select, Table

from ti_workflow.domain.events import Event, canonical_json, load_json

_SELECT = (
    "SELECT id, workflow, definition_version, campaign_id, state, title, owner_email, data, "
    "facts, regions, version, last_seq, head_hash, created_at, updated_at "
    "FROM cases"
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
    # isoformat is three times cheaper than strftime; the same 26 characters.
    return instant.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def _instant(text: str) -> datetime:
    if len(text) == 26 and text[10] == " ":  # as written: UTC without an offset
        return datetime.fromisoformat(text + "+00:00")  # a sixth of .replace(tzinfo=UTC)
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def select_case(db: sqlite3.Connection, case_id: int) -> dict[str, Any] | None:
    row = db.execute(_SELECT + " WHERE id = ?", (case_id,)).fetchone()
    return None if row is None else case_fields(row)


def select_cases(db: sqlite3.Connection, case_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The rows of these cases (those that exist), in one statement."""
    marks = ", ".join("?" * len(case_ids))
    return [case_fields(row) for row in db.execute(f"{_SELECT} WHERE id IN ({marks})", case_ids)]


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


def insert_or_ignore(
    db: sqlite3.Connection,
    dialect: Dialect,
    table: Table,
    values: Mapping[str, Any],
    conflict: tuple[str, ...],
) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING`` of one row; True if written.

    Values go through the column types' own bind processors (JSON, DATETIME) and absent
    columns take their scalar defaults: the stored row is the one SQLAlchemy writes.
    """
    sql, binders = _insert_plan(dialect, table, tuple(values), conflict)
    return bool(db.execute(sql, [bind(values) for bind in binders]).rowcount)


@lru_cache(maxsize=256)
def _insert_plan(
    dialect: Dialect, table: Table, names: tuple[str, ...], conflict: tuple[str, ...]
) -> tuple[str, list[Callable[[Mapping[str, Any]], Any]]]:
    binders: list[Callable[[Mapping[str, Any]], Any]] = []
    columns = []
    for column in table.columns:
        if column.name in names:
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            binders.append(_binder(column.name, process))
        elif column.default is not None:
            if not column.default.is_scalar:
                raise ValueError(f"{table.name}.{column.name}: only scalar defaults here")
            binders.append(_constant(column.default.arg))  # type: ignore[attr-defined]
        else:
            continue
        columns.append(column.name)
    unknown = set(names) - set(columns)
    if unknown:
        raise ValueError(f"{table.name}: no column {', '.join(sorted(unknown))}")
    target = f"({', '.join(conflict)}) " if conflict else ""
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT {target}DO NOTHING"
    )
    return sql, binders


def select_rows(
    db: sqlite3.Connection, dialect: Dialect, statement: Select[Any], params: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """A Core SELECT, compiled once by SQLAlchemy, run on the driver; values go through the
    types' own bind and result processors, so rows hold what SQLAlchemy would return."""
    sql, binders, processors = _select_plan(dialect, statement)
    cursor = db.execute(sql, [bind(params) for bind in binders])
    return [tuple(p(v) if p else v for p, v in zip(processors, row, strict=True)) for row in cursor]


@lru_cache(maxsize=256)
def _select_plan(
    dialect: Dialect, statement: Select[Any]
) -> tuple[str, list[Callable[[Mapping[str, Any]], Any]], list[Callable[[Any], Any] | None]]:
    compiled = statement.compile(dialect=dialect)
    binders = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if bind.value is None and not bind.callable:  # given at each call
            binders.append(_binder(name, process))
        else:
            value = bind.effective_value
            binders.append(_constant(process(value) if process and value is not None else value))
    processors: list[Callable[[Any], Any] | None] = [
        c.type.dialect_impl(dialect).result_processor(dialect, None)
        for c in statement.selected_columns
    ]
    return compiled.string, binders, processors


def _constant(value: Any) -> Callable[[Mapping[str, Any]], Any]:
    return lambda _values: value


def _binder(name: str, process: Callable[[Any], Any] | None) -> Callable[[Mapping[str, Any]], Any]:
    if process is None:
        return lambda values: values[name]
    return lambda values: None if values[name] is None else process(values[name])
