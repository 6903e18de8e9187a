"""The hot path of verify and snapshot: events straight off the driver, hashed cheaply.

An event's hash is ``sha256(prev_hash + canonical_json(body))``. On SQLite the engine
stores ``payload`` and ``annotations`` as their canonical JSON, the very text the hash
covers (``storage/sqlite_fast.py``), so the canonical body is assembled around the
stored text, in sorted-key order, without parsing or re-encoding it: one string and one
SHA-256 per event. Rows whose stored text is not canonical (written by ``json.dumps``
before that, or edited by hand) fail that first hash; their JSON is then parsed and
re-encoded canonically, and that hash decides, exactly as before. A stored hash that
matches its stored text proves that this text is what was hashed: only a forger
recomputing hashes could make the two disagree, which is what checkpoints catch. On
PostgreSQL events come through SQLAlchemy and are hashed from their parsed content.

``canonical_body`` (``domain/events.py``) is tested equal to ``canonical_json(Event.body())``
byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Connection

from ti_workflow.audit.store import stream_events
from ti_workflow.domain.events import (
    Event,
    assemble_body,
    canonical_body,
    iso_utc,
    load_json,
    object_text,
)

_COLUMNS = (
    "case_id, seq, trigger, source, dest, actor, role, at, payload, annotations, "
    "definition_version, prev_hash, hash"
)
_loads = load_json
_sha256 = hashlib.sha256
BATCH = 5_000


class _Strings(dict[str | None, str]):
    """JSON spelling of the short strings that repeat (triggers, roles, states, versions);
    bounded: emptied when full."""

    def __missing__(self, key: str | None) -> str:
        if len(self) >= 4_096:
            self.clear()
        value = self[key] = "null" if key is None else encode_basestring(key)
        return value


class _Json(dict[str, Any]):
    """Parsed JSON of the short texts that repeat (``{}``, annotations such as
    ``{"body":"state_services","region":"84"}``); longer texts are parsed each time.
    Bounded: emptied when full. The values are shared: readers never mutate them."""

    def __init__(self) -> None:
        super().__init__({"{}": {}})

    def __missing__(self, text: str) -> Any:
        value = _loads(text)
        if len(text) <= 96:
            if len(self) >= 4_096:
                self.clear()
            self[text] = value
        return value


def content_hash(e: Event, at: str, payload: str | None = None, notes: str | None = None) -> str:
    return _sha256((e.prev_hash + canonical_body(e, at, payload, notes)).encode()).hexdigest()


def row_hash(row: tuple[Any, ...], strings: _Strings, iso: str | None = None) -> str:
    """The content hash of a raw ``_COLUMNS`` row: over its stored JSON texts if they are
    the canonical ones the hash covers, else over their canonical re-encoding."""
    cid, seq, trig, src, dest, actor, role, at, pay, ann, dv, prev, stored = row
    if iso is None:
        iso = sqlite_iso(at)
    s = strings
    digest = _sha256(
        f'{prev}{{"actor":{encode_basestring(actor)},"annotations":{ann},"at":"{iso}",'
        f'"case_id":{cid},"definition_version":{s[dv]},"dest":{s[dest]},"payload":{pay},'
        f'"role":{s[role]},"seq":{seq},"source":{s[src]},"trigger":{s[trig]}}}'.encode()
    ).hexdigest()
    if digest == stored:
        return digest
    pay_text, ann_text = object_text(_loads(pay)), object_text(_loads(ann))
    if pay_text == pay and ann_text == ann:
        return digest  # canonical already: the content does not match its hash
    head = (s[trig], s[src], s[dest], encode_basestring(actor), s[role])
    body = assemble_body(cid, seq, *head, iso, pay_text, ann_text, s[dv])
    return _sha256((prev + body).encode()).hexdigest()


def json_cache() -> dict[str, Any]:
    """Parsed JSON by text: ``cache[text]`` (short texts remembered, bounded)."""
    return _Json()


def event_of(fields: dict[str, Any]) -> Event:
    """A frozen Event without the per-field ``object.__setattr__`` of its ``__init__``
    (a fifth of the hot loop); same class, same fields."""
    e = Event.__new__(Event)
    e.__dict__.update(fields)
    return e


def sqlite_iso(text: str) -> str:
    """``2023-07-03 08:00:00.000000`` (SQLAlchemy's SQLite spelling, UTC) as ``iso_utc``."""
    if len(text) == 26 and text[10] == " ":
        frac = text[20:]
        return f"{text[:10]}T{text[11:19]}{'' if frac == '000000' else '.' + frac}+00:00"
    return iso_utc(datetime.fromisoformat(text))


def sqlite_datetime(text: str) -> datetime:
    """A stored instant as an aware UTC datetime (through ``sqlite_iso``: ``fromisoformat``
    of the ``+00:00`` spelling costs half of ``fromisoformat`` then ``replace(tzinfo=)``)."""
    return datetime.fromisoformat(sqlite_iso(text))


def sqlite_instant(instant: datetime) -> str:
    """An instant in SQLAlchemy's SQLite DATETIME spelling (UTC), for comparisons in SQL."""
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


HashedEvent = tuple[Event, str]
"""An event and the hash of its content (compare with ``event.hash``)."""


def sqlite_rows(
    conn: Connection,
    columns: str = _COLUMNS,
    case_id: int | None = None,
    first: int | None = None,
    last: int | None = None,
    until: datetime | None = None,
    batch: int = BATCH,
    params: tuple[Any, ...] = (),
    condition: tuple[str, tuple[Any, ...]] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Raw ``events`` rows in ``(case_id, seq)`` order, from the driver's cursor: one case,
    or the cases ``first <= case_id <= last``, or all; only those at or before ``until``
    and meeting ``condition`` (SQL, its values). ``params``: the values of the
    placeholders in ``columns``."""
    where: list[str] = []
    values: list[Any] = list(params)
    if condition is not None:
        where.append(f"({condition[0]})")
        values.extend(condition[1])
    for clause, value in (
        ("case_id = ?", case_id),
        ("case_id >= ?", first),
        ("case_id <= ?", last),
        ("at <= ?", sqlite_instant(until) if until is not None else None),
    ):
        if value is not None:
            where.append(clause)
            values.append(value)
    sql = f"SELECT {columns} FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY case_id, seq"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, values)
        while rows := cursor.fetchmany(batch):
            yield from rows
    finally:
        cursor.close()


def sqlite_last_events(conn: Connection, until: datetime) -> Iterator[tuple[Any, ...]]:
    """Each case's last event at or before ``until``, by case id: ``(case_id, seq, dest,
    at, hash)``."""
    # SQLite fills bare columns from the row holding the max() (documented: "Bare columns
    # in an aggregate query"); grouped along the (case_id, seq) index, nothing is sorted.
    sql = (
        "SELECT case_id, max(seq), dest, at, hash FROM events WHERE at <= ? "
        "GROUP BY case_id ORDER BY case_id"
    )
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, (sqlite_instant(until),))
        while rows := cursor.fetchmany(BATCH):
            yield from rows
    finally:
        cursor.close()


def hashed_events(
    conn: Connection,
    case_id: int | None = None,
    until: datetime | None = None,
    hashed: bool = True,
    first: int | None = None,
    last: int | None = None,
) -> Iterator[HashedEvent]:
    """Every event in ``(case_id, seq)`` order with its recomputed content hash
    (``""`` when ``hashed`` is false: replaying for state needs no hash)."""
    if conn.dialect.name != "sqlite":
        for e in stream_events(conn, case_id, until=until, first=first, last=last):
            yield e, content_hash(e, iso_utc(e.at)) if hashed else ""
        return
    strings, parsed = _Strings(), _Json()
    fromiso = datetime.fromisoformat
    event = event_of
    for row in sqlite_rows(conn, case_id=case_id, first=first, last=last, until=until):
        cid, seq, trig, src, dest, actor, role, at, pay, ann, dv, prev, h = row
        iso = sqlite_iso(at)
        e = event(
            {
                "case_id": cid,
                "seq": seq,
                "trigger": trig,
                "source": src,
                "dest": dest,
                "actor": actor,
                "role": role,
                "at": fromiso(iso),
                "payload": parsed[pay],
                "annotations": parsed[ann],
                "definition_version": dv,
                "prev_hash": prev,
                "hash": h,
            }
        )
        yield e, row_hash(row, strings, iso) if hashed else ""


ChainLink = tuple[int, int, str, str, str]
"""``(case_id, seq, prev_hash, hash, recomputed hash)``: what a chain check needs."""


def chain_links(
    conn: Connection,
    case_id: int | None = None,
    first: int | None = None,
    last: int | None = None,
) -> Iterator[ChainLink]:
    """The quick verification's stream: no JSON parsed, no event built (on SQLite).

    (Assembling the body in SQL instead, with ``printf``/``json_quote``, was measured
    slower than in Python: 7.3 against 2.8 us per row to fetch.)
    """
    if conn.dialect.name != "sqlite":
        for e, digest in hashed_events(conn, case_id, first=first, last=last):
            yield e.case_id, e.seq, e.prev_hash, e.hash, digest
        return
    strings = _Strings()
    for row in sqlite_rows(conn, case_id=case_id, first=first, last=last):
        yield row[0], row[1], row[11], row[12], row_hash(row, strings)
