"""Streamed reads for the audit: cases and events in ``(case_id, seq)`` order, never all at once.

Memory stays bounded by one case's history whatever the size of the log.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import datetime
from itertools import groupby
from typing import Any, NamedTuple

from sqlalchemy import Connection, MetaData, Table, inspect, select

from ti_workflow.clock import as_utc
from ti_workflow.domain.events import Event
from ti_workflow.storage import sqlite_fast
from ti_workflow.storage.repository import StoredCase, event_from_row
from ti_workflow.storage.tables import CaseRow, EventRow

cases_t = CaseRow.__table__  # type: ignore[attr-defined]
events_t = EventRow.__table__  # type: ignore[attr-defined]
BATCH = 5_000


def _ids(query: Any, column: Any, case_id: int | None, first: int | None, last: int | None) -> Any:
    """Restrict ``query`` to one case, or to the cases ``first <= id <= last``."""
    if case_id is not None:
        query = query.where(column == case_id)
    if first is not None:
        query = query.where(column >= first)
    if last is not None:
        query = query.where(column <= last)
    return query


def stream_cases(
    conn: Connection,
    case_id: int | None = None,
    first: int | None = None,
    last: int | None = None,
) -> Iterator[StoredCase]:
    if conn.dialect.name == "sqlite":
        db = conn.connection.driver_connection
        fields = sqlite_fast.case_fields
        for raw in sqlite_fast.case_rows(db, case_id, first, last, BATCH):  # type: ignore[arg-type]
            case = StoredCase.__new__(StoredCase)  # every field given: no per-field setattr
            case.__dict__.update(fields(raw))
            yield case
        return
    query = _ids(select(cases_t).order_by(cases_t.c.id), cases_t.c.id, case_id, first, last)
    for row in conn.execution_options(yield_per=BATCH).execute(query):
        yield StoredCase.from_row(row)


def stream_campaigns(conn: Connection) -> Generator[tuple[int, str], None, None]:
    """``(case id, campaign id)`` of every case, in id order."""
    query = select(cases_t.c.id, cases_t.c.campaign_id).order_by(cases_t.c.id)
    result = conn.execution_options(yield_per=BATCH).execute(query)
    try:
        for row in result:
            yield int(row[0]), str(row[1])
    finally:
        result.close()  # when the caller stops early (PostgreSQL: a server-side cursor)


class CaseHead(NamedTuple):
    """What the quick verification needs of a case row (no JSON columns decoded)."""

    id: int
    campaign_id: str
    last_seq: int
    head_hash: str


def stream_heads(
    conn: Connection,
    case_id: int | None = None,
    first: int | None = None,
    last: int | None = None,
) -> Iterator[CaseHead]:
    query = select(cases_t.c.id, cases_t.c.campaign_id, cases_t.c.last_seq, cases_t.c.head_hash)
    query = _ids(query, cases_t.c.id, case_id, first, last)
    for row in conn.execution_options(yield_per=BATCH).execute(query.order_by(cases_t.c.id)):
        yield CaseHead(*row)


def stream_events(
    conn: Connection,
    case_id: int | None = None,
    until: datetime | None = None,
    since: datetime | None = None,
    first: int | None = None,
    last: int | None = None,
) -> Iterator[Event]:
    query = select(events_t).order_by(events_t.c.case_id, events_t.c.seq)
    query = _ids(query, events_t.c.case_id, case_id, first, last)
    # In UTC, as stored: SQLite compares the text, whatever offset the instant had.
    if until is not None:
        query = query.where(events_t.c.at <= as_utc(until))
    if since is not None:
        query = query.where(events_t.c.at >= as_utc(since))
    for row in conn.execution_options(yield_per=BATCH).execute(query):
        yield event_from_row(row)


def by_case(events: Iterator[Event]) -> Iterator[tuple[int, list[Event]]]:
    for case_id, group in groupby(events, key=lambda e: e.case_id):
        yield case_id, list(group)


def outbox_table(conn: Connection) -> tuple[Table, str] | None:
    """The notification outbox, if this database has one that names its event.

    The outbox belongs to the notifications issue; the audit only relies on a table
    ``outbox`` with ``case_id`` and ``event_seq`` (or ``seq``) columns.
    """
    if not inspect(conn).has_table("outbox"):
        return None
    table = Table("outbox", MetaData(), autoload_with=conn)
    seq = next((n for n in ("event_seq", "seq") if n in table.c), None)
    if "case_id" not in table.c or seq is None:
        return None
    return table, seq


def notifications(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    found = outbox_table(conn)
    if found is None:
        return []
    table, seq = found
    rows = conn.execute(
        select(table).where(table.c.case_id == case_id).order_by(table.c[seq])
    ).all()
    wanted = ("id", seq, "recipient", "recipients", "to_addr", "subject", "status", "sent_at")
    return [{k: v for k, v in r._mapping.items() if k in wanted and v is not None} for r in rows]


def orphan_messages(
    conn: Connection, case_id: int | None = None
) -> list[tuple[Any, int | None, Any, str]]:
    """Outbox rows whose cause does not exist: ``(message id, case_id, seq, what)``.

    A message names the event that caused it (``case_id``, ``seq``) or, when a timer
    sent it (reminders, announcements, escalations), that timer (``timer_id``).
    """
    found = outbox_table(conn)
    if found is None:
        return []
    table, seq = found
    ident = table.c["id"] if "id" in table.c else table.c[seq]
    by_event = (
        select(ident, table.c.case_id, table.c[seq])
        .select_from(
            table.outerjoin(
                events_t,
                (events_t.c.case_id == table.c.case_id) & (events_t.c.seq == table.c[seq]),
            )
        )
        .where(table.c[seq].is_not(None), events_t.c.id.is_(None))
    )
    if case_id is not None:
        by_event = by_event.where(table.c.case_id == case_id)
    found_rows = [
        (r[0], r[1], r[2], f"names event #{r[2]}, which does not exist")
        for r in conn.execute(by_event).all()
    ]
    if "timer_id" not in table.c or not inspect(conn).has_table("timers"):
        return found_rows  # an outbox older than the scheduler: its messages name events
    timers = Table("timers", MetaData(), autoload_with=conn)
    by_timer = (
        select(ident, table.c.case_id, table.c.timer_id)
        .select_from(table.outerjoin(timers, timers.c.id == table.c.timer_id))
        .where(table.c[seq].is_(None), timers.c.id.is_(None))
        # The console's login links are mail without a case cause, by design.
        .where(table.c.notification != "console_login_link")
    )
    if case_id is not None:
        by_timer = by_timer.where(table.c.case_id == case_id)
    for r in conn.execute(by_timer).all():
        cause = (
            "names no event and no timer"
            if r[2] is None
            else f"names timer #{r[2]}, which does not exist"
        )
        found_rows.append((r[0], r[1], None, cause))
    return sorted(found_rows, key=lambda r: (r[1] or 0, r[0]))
