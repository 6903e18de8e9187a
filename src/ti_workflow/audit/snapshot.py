"""The state of one case, or of every case, as it was at an instant.

Replays only the events recorded up to that instant, so the answer is what the
live system showed then, whatever happened since (including later tampering of
the ``cases`` table, which the replay never reads for state).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, func, select

from ti_workflow.audit.fast import event_of, hashed_events, json_cache, sqlite_iso, sqlite_rows
from ti_workflow.audit.replay import MIGRATE, ReplayedCase, Replayer
from ti_workflow.audit.store import by_case, cases_t, events_t, stream_campaigns, stream_events
from ti_workflow.clock import as_utc, paris, parse_instant
from ti_workflow.domain.events import Event
from ti_workflow.engine import CREATE, UPDATE, Engine
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
        body: dict[str, Any] = {
            "at": self.at.isoformat(),
            "at_paris": paris(self.at).isoformat(),
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

    Each case is replayed from its events up to ``at`` without the checks (``verify``
    proves them): form data from its create/update events, facts from the effects of
    the steps that have some. On SQLite a step whose trigger has no effect in any
    definition version is read without its payload and moves the replay as it would
    have: to its transition's destination.
    """
    catalog = engine.catalog
    with read(engine.db) as conn:
        campaigns = stream_campaigns(conn)
        campaign: tuple[int, str] | None = next(campaigns, None)
        cases: Iterator[tuple[int, Sequence[Event | PlainStep], datetime]]
        if conn.dialect.name == "sqlite":
            cases = _sqlite_cases(conn, at, _payload_triggers(engine))
        else:
            stream = (e for e, _ in hashed_events(conn, until=at, hashed=False))
            cases = ((cid, events, events[-1].at) for cid, events in by_case(stream))
        try:
            for case_id, steps, last_at in cases:
                while campaign is not None and campaign[0] < case_id:
                    campaign = next(campaigns, None)
                of = campaign[1] if campaign is not None and campaign[0] == case_id else ""
                r = Replayer(catalog, case_id, of, check=False)
                for step in steps:
                    if isinstance(step, Event):
                        r.apply(step)
                    else:
                        r.plain_step(*step)
                case = r.case
                if state is not None and case.state != state:
                    continue
                if workflow is not None and case.workflow != workflow:
                    continue
                yield CaseAt(at, case, last_at)
        finally:
            campaigns.close()


def _payload_triggers(engine: Engine) -> tuple[str, ...]:
    """Triggers whose events the replay must read whole: data, migrations, effects."""
    found = {CREATE, UPDATE, MIGRATE}
    for d in engine.catalog.definitions.values():
        found.update(t.trigger for t in d.transitions if t.effects)
    return tuple(sorted(found))


PlainStep = tuple[int, str, str, str, str]
"""``(seq, trigger, dest, definition_version, hash)``: a step read without its payload."""


def _sqlite_cases(
    conn: Connection, at: datetime, whole: tuple[str, ...]
) -> Iterator[tuple[int, list[Event | PlainStep], datetime]]:
    """Each case's events up to ``at``: whole (an Event) for the ``whole`` triggers, else
    the plain step; and the instant of the last one."""
    marks = ", ".join("?" * len(whole))
    columns = (
        "case_id, seq, trigger, source, dest, actor, role, at, "
        f"CASE WHEN trigger IN ({marks}) THEN payload END, "
        f"CASE WHEN trigger IN ({marks}) THEN annotations END, definition_version, prev_hash, hash"
    )
    rows = sqlite_rows(conn, columns, until=at, params=(*whole, *whole))
    parsed = json_cache()
    fromiso = datetime.fromisoformat
    for case_id, group in groupby(rows, key=itemgetter(0)):
        steps: list[Event | PlainStep] = []
        text = ""
        for row in group:
            _, seq, trigger, source, dest, actor, role, text, pay, ann, version, prev, h = row
            if pay is None:
                steps.append((seq, trigger, dest, version, h))
                continue
            steps.append(
                event_of(
                    {
                        "case_id": case_id,
                        "seq": seq,
                        "trigger": trigger,
                        "source": source,
                        "dest": dest,
                        "actor": actor,
                        "role": role,
                        "at": fromiso(sqlite_iso(text)),
                        "payload": parsed[pay],
                        "annotations": parsed[ann],
                        "definition_version": version,
                        "prev_hash": prev,
                        "hash": h,
                    }
                )
            )
        yield case_id, steps, fromiso(sqlite_iso(text))


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
