"""The hot path of verify and snapshot: events straight off the driver, hashed cheaply.

Going through SQLAlchemy's result processing and ``json.dumps(sort_keys=True)`` of the
whole event body costs most of a verification. Here, on SQLite, rows come from the
DBAPI cursor as plain tuples, JSON columns are parsed once, and the canonical body is
assembled field by field in sorted-key order (only ``payload`` and ``annotations`` go
through ``json.dumps``). ``canonical_body`` is tested equal to
``canonical_json(Event.body())`` byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Connection

from ti_workflow.audit.store import stream_events
from ti_workflow.domain.events import Event, iso_utc

_COLUMNS = (
    "case_id, seq, trigger, source, dest, actor, role, at, payload, annotations, "
    "definition_version, prev_hash, hash"
)
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads
_sha256 = hashlib.sha256


def _obj(value: Any) -> str:
    return "{}" if not value else _dumps(value)


class _Canonical:
    """Canonical JSON of a stored JSON text, remembered for the texts that repeat
    (``{}``, ``{"regions": ["84"]}``...); a bounded cache, emptied when full."""

    def __init__(self, size: int = 4_096) -> None:
        self.size = size
        self.memo: dict[str, tuple[Any, str]] = {"{}": ({}, "{}")}

    def __call__(self, text: str) -> tuple[Any, str]:
        hit = self.memo.get(text)
        if hit is not None:
            return hit
        value = _loads(text)
        if len(self.memo) >= self.size:
            self.memo = {"{}": ({}, "{}")}
        result = self.memo[text] = (value, _dumps(value))
        return result


def _str(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def canonical_body(e: Event, at: str, payload: str | None = None, notes: str | None = None) -> str:
    payload = _obj(e.payload) if payload is None else payload
    notes = _obj(e.annotations) if notes is None else notes
    return (
        f'{{"actor":{_str(e.actor)},"annotations":{notes},"at":"{at}",'
        f'"case_id":{e.case_id},"definition_version":{_str(e.definition_version)},'
        f'"dest":{_str(e.dest)},"payload":{payload},"role":{_str(e.role)},'
        f'"seq":{e.seq},"source":{_str(e.source)},"trigger":{_str(e.trigger)}}}'
    )


def content_hash(e: Event, at: str, payload: str | None = None, notes: str | None = None) -> str:
    return _sha256((e.prev_hash + canonical_body(e, at, payload, notes)).encode()).hexdigest()


def _event(fields: dict[str, Any]) -> Event:
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


HashedEvent = tuple[Event, str]
"""An event and the hash of its content (compare with ``event.hash``)."""


def hashed_events(
    conn: Connection,
    case_id: int | None = None,
    until: datetime | None = None,
    batch: int = 5_000,
    hashed: bool = True,
) -> Iterator[HashedEvent]:
    """Every event in ``(case_id, seq)`` order with its recomputed content hash
    (``""`` when ``hashed`` is false: replaying for state needs no hash)."""
    if conn.dialect.name != "sqlite":
        for e in stream_events(conn, case_id, until=until):
            yield e, content_hash(e, iso_utc(e.at)) if hashed else ""
        return
    where: list[str] = []
    params: list[Any] = []
    if case_id is not None:
        where.append("case_id = ?")
        params.append(case_id)
    if until is not None:
        where.append("at <= ?")
        params.append(until.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
    sql = f"SELECT {_COLUMNS} FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY case_id, seq"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    canon = _Canonical()
    fromiso = datetime.fromisoformat
    try:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(batch):
            for cid, seq, trig, src, dest, actor, role, at, pay, ann, dv, prev, h in rows:
                iso = sqlite_iso(at)
                payload, pay_text = canon(pay)
                notes, notes_text = canon(ann)
                e = _event(
                    {
                        "case_id": cid,
                        "seq": seq,
                        "trigger": trig,
                        "source": src,
                        "dest": dest,
                        "actor": actor,
                        "role": role,
                        "at": fromiso(iso),
                        "payload": payload,
                        "annotations": notes,
                        "definition_version": dv,
                        "prev_hash": prev,
                        "hash": h,
                    }
                )
                yield e, content_hash(e, iso, pay_text, notes_text) if hashed else ""
    finally:
        cursor.close()
