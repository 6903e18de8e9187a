"""The state of one case, or of every case, as it was at an instant.

Replays only the events recorded up to that instant, so the answer is what the
live system showed then, whatever happened since (including later tampering of
the ``cases`` table, which the replay never reads for state).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, func, select

from ti_workflow.audit.fast import (
    event_of,
    hashed_events,
    json_cache,
    sqlite_datetime,
    sqlite_last_events,
    sqlite_rows,
)
from ti_workflow.audit.replay import MIGRATE, ReplayedCase, Replayer
from ti_workflow.audit.store import by_case, cases_t, events_t, stream_campaigns, stream_events
from ti_workflow.clock import as_utc, paris, parse_instant
from ti_workflow.domain.rules import FACTS_KEPT
from ti_workflow.engine import CONTEXT, CREATE, UPDATE, Engine
from ti_workflow.errors import FieldError, InvalidData, NotFound
from ti_workflow.storage.database import read


@dataclass(frozen=True)
class CaseAt:
    at: datetime
    case: ReplayedCase | None
    """``None``: the case did not exist yet at that instant."""
    last_event_at: datetime | None

    def as_dict(self, with_data: bool = True) -> dict[str, Any]:
        if self.case is None:
            return {"at": self.at.isoformat(), "exists": False}
        c = self.case
        at, at_paris = _spellings(self.at)
        body: dict[str, Any] = {
            "at": at,
            "at_paris": at_paris,
            "exists": True,
            "id": c.case_id,
            "title": c.title,
            "workflow": c.workflow,
            "definition_version": c.definition_version,
            "state": c.state,
            "regions": list(c.regions),
            "opinions": c.facts.get("opinions", {}),
            "decision": c.facts.get("decision"),
            "last_seq": c.last_seq,
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
        }
        if with_data:
            body["data"] = c.data
            body["facts"] = c.facts
        return body


@lru_cache(maxsize=16)
def _spellings(at: datetime) -> tuple[str, str]:
    """The instant as given and in Paris time: the same for every case of a snapshot."""
    return at.isoformat(), paris(at).isoformat()


def parse_at(text: str, option: str = "--at") -> datetime:
    """ISO 8601; without an offset the instant is read in Europe/Paris."""
    try:
        return parse_instant(text)
    except ValueError:
        raise InvalidData(
            "instant",
            [
                FieldError(
                    option,
                    f"{text!r} is not an ISO 8601 instant; e.g. 2023-12-01, "
                    "2023-09-22T23:59:59 (Europe/Paris) or 2023-09-22T21:59:59+00:00",
                )
            ],
        ) from None


def state_at(engine: Engine, case_id: int, at: datetime) -> CaseAt:
    with read(engine.db) as conn:
        row = conn.execute(select(cases_t.c.campaign_id).where(cases_t.c.id == case_id)).first()
        if row is None:
            raise NotFound("case", case_id)
        events = list(stream_events(conn, case_id, until=at))
    if not events:
        return CaseAt(at, None, None)
    r = Replayer(engine.catalog, case_id, row[0], check=False)
    return CaseAt(at, r.apply_all(events), events[-1].at)


def snapshot(
    engine: Engine, at: datetime, state: str | None = None, workflow: str | None = None
) -> Iterator[CaseAt]:
    """Every case that existed at ``at``, in id order, streamed.

    Each case is rebuilt from its events up to ``at`` without the checks (``verify`` is
    where they are proven): form data from its create/update events, facts from the
    effects of the steps that change them. On SQLite only those events are read whole;
    each is applied in the state it records leaving, and the case ends in the state of
    its last event by then. On a log that verifies this is exactly the full replay
    (tested); on PostgreSQL every event is replayed.
    """
    catalog = engine.catalog
    with read(engine.db) as conn:
        campaigns = stream_campaigns(conn)
        pending = [next(campaigns, None)]

        def replayer(case_id: int) -> Replayer:
            campaign = pending[0]
            while campaign is not None and campaign[0] < case_id:
                campaign = next(campaigns, None)
            pending[0] = campaign
            of = campaign[1] if campaign is not None and campaign[0] == case_id else ""
            return Replayer(catalog, case_id, of, check=False)

        if conn.dialect.name == "sqlite":
            replays = _sqlite_replays(conn, at, _rebuilding(engine), replayer)
        else:
            replays = _replays(conn, at, replayer)
        try:
            for case, last_at in replays:
                if state is not None and case.state != state:
                    continue
                if workflow is not None and case.workflow != workflow:
                    continue
                yield CaseAt(at, case, last_at)
        finally:
            campaigns.close()


def _replays(
    conn: Connection, at: datetime, replayer: Callable[[int], Replayer]
) -> Iterator[tuple[ReplayedCase, datetime]]:
    stream = (e for e, _ in hashed_events(conn, until=at, hashed=False))
    for case_id, events in by_case(stream):
        yield replayer(case_id).apply_all(events), events[-1].at


def _rebuilding(engine: Engine) -> tuple[str, tuple[Any, ...]]:
    """The events a snapshot must apply, as an SQL condition and its values: data and
    migrations, and per definition version the triggers whose effects change the facts."""
    clauses, values = ["trigger IN (?, ?, ?)"], [CREATE, UPDATE, MIGRATE]
    for version, d in engine.catalog.definitions.items():
        triggers = sorted(
            {t.trigger for t in d.transitions if any(e not in FACTS_KEPT for e in t.effects)}
        )
        if triggers:
            marks = ", ".join("?" * len(triggers))
            clauses.append(f"(definition_version = ? AND trigger IN ({marks}))")
            values += [version, *triggers]
    return " OR ".join(clauses), tuple(values)


def _sqlite_replays(
    conn: Connection,
    at: datetime,
    whole: tuple[str, tuple[Any, ...]],
    replayer: Callable[[int], Replayer],
) -> Iterator[tuple[ReplayedCase, datetime]]:
    """Per case (in id order): its last event up to ``at`` and, merged in, its events up
    to ``at`` that meet the ``whole`` condition, applied in order. Annotations and ``prev_hash``
    are not fetched (an unchecked replay reads neither; left empty in these Events,
    which never leave this function), except where they hold a step's ``context``."""
    # Annotations only where a step recorded the database facts its effects read.
    columns = (
        "case_id, seq, trigger, source, dest, actor, role, at, payload, definition_version, "
        f"CASE WHEN instr(annotations, '\"{CONTEXT}\":') > 0 THEN annotations END"
    )
    rows = sqlite_rows(conn, columns, until=at, condition=whole)
    row = next(rows, None)
    parsed = json_cache()
    for case_id, seq, dest, text, head in sqlite_last_events(conn, at):
        r = replayer(case_id)
        while row is not None and row[0] == case_id:
            _, number, trigger, source, to, actor, role, when, payload, recorded, notes = row
            r.resume(
                event_of(
                    {
                        "case_id": case_id,
                        "seq": number,
                        "trigger": trigger,
                        "source": source,
                        "dest": to,
                        "actor": actor,
                        "role": role,
                        "at": sqlite_datetime(when),
                        "payload": parsed[payload],
                        "annotations": _NOTHING if notes is None else parsed[notes],
                        "definition_version": recorded,
                        "prev_hash": "",
                        "hash": "",
                    }
                )
            )
            row = next(rows, None)
        r.finish(seq, dest, head)
        yield r.case, sqlite_datetime(text)


_NOTHING: dict[str, Any] = {}


def states_at(engine: Engine, at: datetime, state: str | None = None) -> list[tuple[int, str, str]]:
    """``(case id, state at ``at``, current title)`` for every case, by SQL alone.

    The state at an instant is the destination of the case's last event recorded by
    then; on an intact log (``audit verify``) that is exactly what the replay gives,
    without decoding any form data or re-running effects: the fast path for "which
    cases were labelled on ...", at the cost of the opinions, decision and data.
    """
    last = (
        select(events_t.c.case_id, func.max(events_t.c.seq).label("seq"))
        .where(events_t.c.at <= as_utc(at))  # UTC, as stored
        .group_by(events_t.c.case_id)
        .subquery()
    )
    query = (
        select(events_t.c.case_id, events_t.c.dest, cases_t.c.title)
        .join(last, (events_t.c.case_id == last.c.case_id) & (events_t.c.seq == last.c.seq))
        .join(cases_t, cases_t.c.id == events_t.c.case_id)
        .order_by(events_t.c.case_id)
    )
    if state is not None:
        query = query.where(events_t.c.dest == state)
    with read(engine.db) as conn:
        return [(int(r[0]), str(r[1]), str(r[2])) for r in conn.execute(query)]
