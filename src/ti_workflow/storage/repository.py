"""Reads and writes of cases and events, with optimistic concurrency.

Writes are prepared SQLAlchemy Core statements (built once, at import) on the
SQLModel tables: the fire path stays close to the database's own speed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import ReturningInsert

from ti_workflow.domain.events import Event
from ti_workflow.errors import Conflict, NotFound
from ti_workflow.storage import sqlite_fast
from ti_workflow.storage.tables import CaseRegionRow, CaseRow, EventRow

cases = CaseRow.__table__  # type: ignore[attr-defined]
events = EventRow.__table__  # type: ignore[attr-defined]
case_regions = CaseRegionRow.__table__  # type: ignore[attr-defined]


def utc(value: datetime) -> datetime:
    """SQLite hands datetimes back naive: they were written as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class StoredCase:
    id: int
    workflow: str
    definition_version: str
    campaign_id: str
    state: str
    title: str
    owner_email: str | None
    data: dict[str, Any]
    facts: dict[str, Any]
    regions: tuple[str, ...]
    version: int
    last_seq: int
    head_hash: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> StoredCase:
        m = row._mapping
        return cls(
            id=m["id"],
            workflow=m["workflow"],
            definition_version=m["definition_version"],
            campaign_id=m["campaign_id"],
            state=m["state"],
            title=m["title"],
            owner_email=m["owner_email"],
            data=m["data"] or {},
            facts=m["facts"] or {},
            regions=tuple(m["regions"] or ()),
            version=m["version"],
            last_seq=m["last_seq"],
            head_hash=m["head_hash"],
            created_at=utc(m["created_at"]),
            updated_at=utc(m["updated_at"]),
        )


_SELECT_CASE = select(cases).where(cases.c.id == bindparam("case_id"))
_ADVANCE_CASE = (
    update(cases)
    .where(cases.c.id == bindparam("case_id"), cases.c.version == bindparam("expected"))
    .values(
        state=bindparam("state"),
        facts=bindparam("facts"),
        version=bindparam("new_version"),
        last_seq=bindparam("last_seq"),
        head_hash=bindparam("head_hash"),
        updated_at=bindparam("updated_at"),
    )
)
_UPDATE_DATA = (
    update(cases)
    .where(cases.c.id == bindparam("case_id"), cases.c.version == bindparam("expected"))
    .values(
        data=bindparam("data"),
        regions=bindparam("regions"),
        title=bindparam("title"),
        version=bindparam("new_version"),
        last_seq=bindparam("last_seq"),
        head_hash=bindparam("head_hash"),
        updated_at=bindparam("updated_at"),
    )
)
_INSERT_EVENT = insert(events)


def load_case(conn: Connection, case_id: int) -> StoredCase:
    if conn.dialect.name == "sqlite":
        found = sqlite_fast.select_case(_driver(conn), case_id)
        if found is None:
            raise NotFound("case", case_id)
        return StoredCase(**found)
    row = conn.execute(_SELECT_CASE, {"case_id": case_id}).first()
    if row is None:
        raise NotFound("case", case_id)
    return StoredCase.from_row(row)


def load_cases(conn: Connection, case_ids: Sequence[int]) -> dict[int, StoredCase]:
    """The cases of a batch that exist, by id, read in one statement per 500 ids."""
    found: dict[int, StoredCase] = {}
    for start in range(0, len(case_ids), 500):
        ids = list(case_ids[start : start + 500])
        if conn.dialect.name == "sqlite":
            batch = [StoredCase(**row) for row in sqlite_fast.select_cases(_driver(conn), ids)]
        else:
            rows = conn.execute(select(cases).where(cases.c.id.in_(ids))).all()
            batch = [StoredCase.from_row(r) for r in rows]
        found.update((c.id, c) for c in batch)
    return found


def insert_or_ignore(
    conn: Connection, table: Table, values: Mapping[str, Any], conflict: tuple[str, ...] = ()
) -> bool:
    """Insert one row unless it clashes with a unique one (``conflict``: on these columns
    only); True if written. Prepared once per table and set of columns."""
    if conn.dialect.name == "sqlite":
        return sqlite_fast.insert_or_ignore(_driver(conn), conn.dialect, table, values, conflict)
    return conn.execute(_pg_insert(table, conflict), dict(values)).first() is not None


def select_rows(
    conn: Connection, statement: Select[Any], params: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """The rows of a Core SELECT as plain tuples (on SQLite without SQLAlchemy's per-call
    cost: for the small reads hooks make inside every fire)."""
    if conn.dialect.name == "sqlite":
        return sqlite_fast.select_rows(_driver(conn), conn.dialect, statement, params)
    return [tuple(row) for row in conn.execute(statement, dict(params))]


@cache
def _pg_insert(table: Table, conflict: tuple[str, ...]) -> ReturningInsert[Any]:
    """With ``RETURNING``: psycopg reports a rowcount of -1 for these inserts, written or not."""
    statement = postgresql.insert(table).on_conflict_do_nothing(
        index_elements=list(conflict) or None
    )
    return statement.returning(*table.primary_key.columns)


def _driver(conn: Connection) -> Any:
    """The DBAPI connection under ``conn``, inside the transaction SQLAlchemy began."""
    return conn.connection.driver_connection


def _event_params(e: Event) -> dict[str, Any]:
    return {
        "case_id": e.case_id,
        "seq": e.seq,
        "trigger": e.trigger,
        "source": e.source,
        "dest": e.dest,
        "actor": e.actor,
        "role": e.role,
        "at": e.at,
        "payload": e.payload,
        "annotations": e.annotations,
        "definition_version": e.definition_version,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def insert_case(
    conn: Connection,
    *,
    workflow: str,
    definition_version: str,
    campaign_id: str,
    state: str,
    title: str,
    owner_email: str | None,
    data: dict[str, Any],
    regions: Sequence[str],
    at: datetime,
) -> int:
    result = conn.execute(
        insert(cases).returning(cases.c.id),
        {
            "workflow": workflow,
            "definition_version": definition_version,
            "campaign_id": campaign_id,
            "state": state,
            "title": title,
            "owner_email": owner_email,
            "data": data,
            "facts": {},
            "regions": list(regions),
            "version": 0,
            "last_seq": 0,
            "head_hash": "",
            "created_at": at,
            "updated_at": at,
        },
    )
    return int(result.scalar_one())


def append(
    conn: Connection,
    case: StoredCase,
    new_events: Sequence[Event],
    *,
    state: str,
    facts: dict[str, Any],
    data: dict[str, Any] | None = None,
    regions: Sequence[str] | None = None,
    title: str | None = None,
) -> int:
    """Advance the case by its new events, only if nobody else did in between.

    Returns the case's new version. Raises :class:`Conflict` (and the caller's
    transaction rolls back) if the stored version is no longer ``case.version``.
    """
    last = new_events[-1]
    new_version = case.version + 1
    if data is None and regions is None and conn.dialect.name == "sqlite":
        try:
            moved = not sqlite_fast.advance(
                _driver(conn), case.id, case.version, state, facts, new_events
            )
        except sqlite3.IntegrityError:
            raise Conflict(case.id, case.version, None) from None
        if moved:
            actual = conn.execute(select(cases.c.version).where(cases.c.id == case.id)).scalar()
            raise Conflict(case.id, case.version, actual)
        return new_version
    common = {
        "case_id": case.id,
        "expected": case.version,
        "new_version": new_version,
        "last_seq": last.seq,
        "head_hash": last.hash,
        "updated_at": last.at,
    }
    if data is not None:
        result = conn.execute(
            _UPDATE_DATA,
            {**common, "data": data, "regions": list(regions or ()), "title": title or ""},
        )
    else:
        result = conn.execute(_ADVANCE_CASE, {**common, "state": state, "facts": facts})
    if result.rowcount != 1:
        actual = conn.execute(select(cases.c.version).where(cases.c.id == case.id)).scalar()
        raise Conflict(case.id, case.version, actual)
    insert_events(conn, case, new_events)
    if regions is not None:
        replace_regions(conn, case.id, regions)
    return new_version


def insert_events(conn: Connection, case: StoredCase, new_events: Sequence[Event]) -> None:
    """Raises :class:`Conflict` if ``(case_id, seq)`` is taken: another writer got there first
    (the caller's transaction rolls back)."""
    try:
        if conn.dialect.name == "sqlite":
            sqlite_fast.insert_events(_driver(conn), new_events)
        else:
            conn.execute(_INSERT_EVENT, [_event_params(e) for e in new_events])
    except (IntegrityError, sqlite3.IntegrityError):
        raise Conflict(case.id, case.version, None) from None


def replace_regions(conn: Connection, case_id: int, regions: Iterable[str]) -> None:
    conn.execute(delete(case_regions).where(case_regions.c.case_id == case_id))
    rows = [{"case_id": case_id, "region": r} for r in regions]
    if rows:
        conn.execute(insert(case_regions), rows)


@dataclass(frozen=True)
class CaseFilter:
    workflow: str | None = None
    state: str | None = None
    campaign: str | None = None
    region: str | None = None
    text: str | None = None
    owner_email: str | None = None
    scope_region: str | None = None
    scope_territory: str | None = None
    """Only the cases whose data names this territory (``territory_id``)."""
    order: str = "id"
    """One of :data:`CASE_ORDERS` (``-`` first: descending); ties by id."""


CASE_ORDERS = ("id", "-id", "title", "-title", "state", "-state", "updated", "-updated")


def list_cases(
    conn: Connection, f: CaseFilter, *, limit: int = 100, offset: int = 0
) -> tuple[list[StoredCase], int]:
    query = select(cases)
    if f.workflow:
        query = query.where(cases.c.workflow == f.workflow)
    if f.state:
        query = query.where(cases.c.state == f.state)
    if f.campaign:
        query = query.where(cases.c.campaign_id == f.campaign)
    if f.owner_email:
        query = query.where(cases.c.owner_email == f.owner_email)
    for region in (f.region, f.scope_region):
        if region:
            query = query.where(
                cases.c.id.in_(
                    select(case_regions.c.case_id).where(case_regions.c.region == region)
                )
            )
    if f.scope_territory:
        query = query.where(cases.c.data["territory_id"].as_string() == f.scope_territory)
    if f.text:
        escaped = f.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(cases.c.title).like(f"%{escaped}%", escape="\\"))
    ids = query.with_only_columns(cases.c.id)
    total = int(conn.execute(select(func.count()).select_from(ids.subquery())).scalar_one())
    key = {"id": cases.c.id, "title": func.lower(cases.c.title), "state": cases.c.state}.get(
        f.order.lstrip("-"), cases.c.updated_at
    )
    first = key.desc() if f.order.startswith("-") else key.asc()
    # Sort and cut on the ids alone, then read the page's rows: sorting whole rows would
    # carry every case's JSON through the sort.
    page = [r[0] for r in conn.execute(ids.order_by(first, cases.c.id).limit(limit).offset(offset))]
    found = {r.id: r for r in conn.execute(select(cases).where(cases.c.id.in_(page))).all()}
    return [StoredCase.from_row(found[i]) for i in page], total


def load_events(conn: Connection, case_id: int) -> list[Event]:
    rows = conn.execute(
        select(events).where(events.c.case_id == case_id).order_by(events.c.seq)
    ).all()
    return [event_from_row(r) for r in rows]


def iter_events(conn: Connection) -> Iterator[Event]:
    result = conn.execution_options(yield_per=5_000).execute(
        select(events).order_by(events.c.case_id, events.c.seq)
    )
    for row in result:
        yield event_from_row(row)


def event_from_row(row: Row[Any]) -> Event:
    m = row._mapping
    return Event(
        case_id=m["case_id"],
        seq=m["seq"],
        trigger=m["trigger"],
        source=m["source"],
        dest=m["dest"],
        actor=m["actor"],
        role=m["role"],
        at=utc(m["at"]),
        payload=m["payload"] or {},
        annotations=m["annotations"] or {},
        definition_version=m["definition_version"],
        prev_hash=m["prev_hash"],
        hash=m["hash"],
    )
