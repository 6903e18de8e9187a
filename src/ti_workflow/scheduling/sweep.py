"""The sweep: run every timer due up to now, once, applying late policies.

For each due row: claim it (own transaction), act, record the outcome. A campaign
timer fires its trigger through ``Engine.fire_many(..., Actor("system"))``, ``CHUNK``
cases per transaction (one fsync each on SQLite), each case in a savepoint with the rows
``Engine.fire`` writes; the lease is renewed between batches. A case that has moved on is
counted as skipped, not as an error, and undone alone. Notifications go to the outbox with
a key per timer and case, so a second sweep (or a sweep taking over a dead process's
expired lease, whose unfinished batch left nothing) fires nothing twice and queues nothing
twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, Select, func, select

from ti_workflow.definitions.timers import parse_delay
from ti_workflow.domain.actors import Actor
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.timers import Delay
from ti_workflow.engine import Engine
from ti_workflow.errors import (
    Conflict,
    GuardRefused,
    NotFound,
    TiWorkflowError,
    TransitionNotAllowed,
)
from ti_workflow.mail.french import GENERIC_LABEL, fr_duration
from ti_workflow.mail.outbox import campaign_context, once_key, outbox
from ti_workflow.scheduling.install import ESCALATION, Scheduling, scheduling_of
from ti_workflow.scheduling.jobs import JOBS, JobContext
from ti_workflow.scheduling.lock import this_process
from ti_workflow.scheduling.timers import (
    SyncReport,
    claim_next,
    finish,
    insert_timer,
    record_progress,
    release_dead_claims,
    renew,
    sync_campaign_timers,
)
from ti_workflow.storage import repository as repo
from ti_workflow.storage.database import batch, read
from ti_workflow.storage.repository import StoredCase, utc

SYSTEM = Actor("system")
MOVED_ON = (TransitionNotAllowed, Conflict, GuardRefused, NotFound)
CHUNK = 500


def worker_id() -> str:
    return this_process()


@dataclass
class SweepReport:
    created: int = 0
    timers: list[dict[str, Any]] = field(default_factory=list)
    synced: SyncReport = field(default_factory=SyncReport)
    """The pending campaign timers this sweep cancelled or re-planned (file changes)."""

    def count(self, status: str) -> int:
        return sum(1 for t in self.timers if t["status"] == status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "cancelled": self.synced.cancelled,
            "replanned": self.synced.replanned,
            "run": len(self.timers),
            "done": self.count("done"),
            "skipped": self.count("skipped"),
            "escalated": self.count("escalated"),
            "failed": self.count("failed"),
            "timers": self.timers,
        }


def sweep(
    engine: Engine,
    until: datetime | None = None,
    worker: str | None = None,
    allow_cancel: bool = False,
) -> SweepReport:
    sched = scheduling_of(engine)
    worker = worker or worker_id()
    now = engine.clock.now()
    horizon = min(until, now) if until else now
    report = SweepReport()
    with engine.db.begin() as conn:
        report.synced = sync_campaign_timers(
            conn, engine.catalog.campaigns.values(), now, allow_cancel=allow_cancel
        )
        report.created = report.synced.created
    release_dead_claims(engine.db, now)
    while (row := claim_next(engine.db, now, horizon, worker)) is not None:
        status, outcome = _run(engine, sched, row, now, worker)
        if finish(engine.db, row.id, worker, status, outcome, now):
            report.timers.append(
                {
                    "id": row.id,
                    "name": row.name,
                    "case_id": row.case_id,
                    "due_at": utc(row.due_at).isoformat(),
                    "status": status,
                    "outcome": outcome,
                }
            )
            _repeat(engine, row)
    return report


def _run(
    engine: Engine, sched: Scheduling, row: Row[Any], now: datetime, worker: str
) -> tuple[str, Any]:
    due = utc(row.due_at)
    late_by = now - due
    late = late_by > timedelta(seconds=sched.settings.scheduler_grace_seconds)
    if late and row.late_policy == "skip":
        return "skipped", {"late_by": str(late_by), "policy": "skip"}
    if late and row.late_policy == "escalate":
        escalated = _escalate(engine, sched, row, now, late_by)
        if escalated is None:
            return "skipped", {
                "late_by": str(late_by),
                "policy": "escalate",
                "reason": "no case in the states it acts on: nothing to escalate",
            }
        return "escalated", escalated
    try:
        if row.action["kind"] == "case":
            return _run_case_timer(engine, sched, row, now)
        return "done", {
            "late_by": str(late_by) if late else None,
            "actions": _run_campaign_timer(engine, sched, row, now, late, worker),
        }
    except TiWorkflowError as exc:
        return "failed", {"error": exc.kind, "message": str(exc)}


def _timer_context(
    row: Row[Any], now: datetime, campaign: Campaign | None = None
) -> dict[str, Any]:
    due = utc(row.due_at)
    labels = {t.name: t.label_fr for t in campaign.timers} if campaign else {}
    return {
        "name": row.name,
        "label": labels.get(row.name) or labels.get(row.name.split(".")[0]) or GENERIC_LABEL,
        "due_at": due,
        "late_by": fr_duration(now - due) if now > due else None,
        "actions": row.action.get("actions", []),
    }


def _run_case_timer(
    engine: Engine, sched: Scheduling, row: Row[Any], now: datetime
) -> tuple[str, Any]:
    action = row.action
    with read(engine.db) as conn:
        case = repo.load_case(conn, row.case_id)
        last = repo.load_events(conn, case.id)[-1] if row.attempts and action.get("fire") else None
    if case.state not in action["while_in"]:
        if last is not None and last.trigger == action["fire"] and last.role == "system":
            # an earlier attempt fired it, then died before recording that it had
            return "done", {"fired": action["fire"]}
        return "skipped", {"reason": f"case is now {case.state}"}
    if action.get("fire"):
        try:
            engine.fire(case.id, action["fire"], SYSTEM)
        except MOVED_ON as exc:
            return "skipped", {"reason": exc.kind, "message": str(exc)}
        return "done", {"fired": action["fire"]}
    definition = engine.catalog.definition(case.definition_version)
    spec = sched.notification(definition, action["notify"])
    campaign = engine.catalog.campaign(case.campaign_id)
    composer = sched.composer
    with engine.db.begin() as conn:
        queued = composer.enqueue(
            conn,
            spec,
            composer.case_context(case, campaign, None, _timer_context(row, now, campaign), {}),
            dedupe_key=f"timer:{row.id}",
            now=now,
            case=case,
            timer_id=row.id,
        )
    return "done", {"queued": int(queued)}


def _cases(engine: Engine, row: Row[Any], states: list[str]) -> list[StoredCase]:
    with read(engine.db) as conn:
        return [StoredCase.from_row(r) for r in conn.execute(_in_states(row, states)).all()]


def _case_ids(engine: Engine, row: Row[Any], states: list[str]) -> list[int]:
    query = _in_states(row, states).with_only_columns(repo.cases.c.id)
    with read(engine.db) as conn:
        return list(conn.execute(query).scalars())


def _in_states(row: Row[Any], states: list[str]) -> Select[Any]:
    """The cases of the timer's campaign and workflow in these states, by id."""
    c = repo.cases.c
    return (
        select(repo.cases)
        .where(
            c.campaign_id == row.campaign_id,
            c.workflow == row.action["workflow"],
            c.state.in_(states),
        )
        .order_by(c.id)
    )


def _run_campaign_timer(
    engine: Engine, sched: Scheduling, row: Row[Any], now: datetime, late: bool, worker: str
) -> list[dict[str, Any]]:
    results = []
    progress: dict[str, dict[str, int]] = {
        k: dict(v) for k, v in ((row.outcome or {}).get("progress") or {}).items()
    }
    for index, action in enumerate(row.action["actions"]):
        kind, name = action["kind"], action["name"]
        result: dict[str, Any] = {"kind": kind, "name": name}
        if kind == "job":
            ctx = JobContext(engine, row.campaign_id, row.name, utc(row.due_at), now, late)
            result["result"] = dict(JOBS[name](ctx))
        elif kind == "fire":
            # An earlier attempt killed half-way (kill -9, lost connection) counted its
            # committed batches in the row: the cases it moved are no longer listed here.
            done = progress.setdefault(str(index), {"fired": 0, "skipped": 0})
            ids = _case_ids(engine, row, action["states"])
            for start in range(0, len(ids), CHUNK):
                if start:
                    renew(engine.db, row.id, worker, engine.clock.now())
                with batch(engine.db) as conn:
                    outcomes = engine.fire_many(
                        ids[start : start + CHUNK], name, SYSTEM, refusals=MOVED_ON
                    )
                    refused = sum(1 for o in outcomes if o.refusal is not None)
                    done["fired"] += len(outcomes) - refused
                    done["skipped"] += refused
                    record_progress(conn, row.id, worker, progress, engine.clock.now())
            result.update(done)
        else:
            result.update(_notify_cases(engine, sched, row, index, name, action["states"], now))
        results.append(result)
    return results


def _notify_cases(
    engine: Engine,
    sched: Scheduling,
    row: Row[Any],
    index: int,
    name: str,
    states: list[str],
    now: datetime,
) -> dict[str, int]:
    composer = sched.composer
    cases = _cases(engine, row, states)
    campaign = engine.catalog.campaign(row.campaign_id)
    timer = _timer_context(row, now, campaign)
    extra = dict(row.action.get("context") or {})
    for start in range(0, len(cases), CHUNK):
        with engine.db.begin() as conn:
            for case in cases[start : start + CHUNK]:
                definition = engine.catalog.definition(case.definition_version)
                spec = sched.notification(definition, name)
                context = composer.case_context(case, campaign, None, timer, extra)
                composer.enqueue(
                    conn,
                    spec,
                    context,
                    dedupe_key=once_key(spec, case) or f"timer:{row.id}:{index}:case:{case.id}",
                    now=now,
                    case=case,
                    timer_id=row.id,
                )
    # Messages an earlier, interrupted attempt queued count too (their keys are this timer's).
    with read(engine.db) as conn:
        queued = conn.execute(
            select(func.count())
            .select_from(outbox)
            .where(
                outbox.c.timer_id == row.id,
                outbox.c.dedupe_key.like(f"timer:{row.id}:{index}:case:%"),
            )
        ).scalar_one()
    return {"cases": len(cases), "queued": int(queued)}


def _escalate(
    engine: Engine, sched: Scheduling, row: Row[Any], now: datetime, late_by: timedelta
) -> dict[str, Any] | None:
    """Instead of acting late, tell the national committee what was missed (None: the
    timer would have acted on no case, so there is nothing to tell)."""
    action = row.action
    if action["kind"] == "case":
        with read(engine.db) as conn:
            case = repo.load_case(conn, row.case_id)
        definition = engine.catalog.definition(case.definition_version)
        cases = [case]
    else:
        definition = engine.catalog.current_definition(action["workflow"])
        states = sorted({s for a in action["actions"] for s in a["states"]})
        cases = _cases(engine, row, states)
        if not cases and all(a["kind"] != "job" for a in action["actions"]):
            return None  # it would have acted on no case: nobody to alert
    spec = sched.notification(definition, ESCALATION)
    campaign = engine.catalog.campaign(row.campaign_id)
    labels = {s.name: s.label_fr or s.name for s in definition.states}
    context = {
        "campaign": campaign_context(campaign),
        "timer": _timer_context(row, now, campaign),
        "params": dict(campaign.parameters),
        "count": len(cases),
        "cases": [
            {
                "id": c.id,
                "title": c.title,
                "state": c.state,
                "state_label": labels.get(c.state, c.state),
            }
            for c in cases[:100]
        ],
    }
    with engine.db.begin() as conn:
        queued = sched.composer.enqueue(
            conn,
            spec,
            context,
            dedupe_key=f"timer:{row.id}:escalated",
            now=now,
            campaign_id=row.campaign_id,
            timer_id=row.id,
        )
    return {
        "late_by": str(late_by),
        "policy": "escalate",
        "queued": int(queued),
        "cases": len(cases),
    }


def _repeat(engine: Engine, row: Row[Any]) -> None:
    """A repeating campaign timer (``every:``) gets its next occurrence once this one ran."""
    every = row.action.get("every")
    if not every:
        return
    delay: Delay | None = parse_delay(every, "every", lambda _p, _m: None)
    if delay is None:
        return
    campaign = engine.catalog.campaign(row.campaign_id)
    due = _occurrence_after(utc(row.due_at), delay, campaign.zone, row.action.get("time"))
    now = engine.clock.now()
    while due <= now:  # after a long downtime, one catch-up run is enough
        due = _occurrence_after(due, delay, campaign.zone, row.action.get("time"))
    base = row.key.split("@", 1)[0]
    with engine.db.begin() as conn:
        insert_timer(
            conn,
            key=f"{base}@{due.isoformat()}",
            campaign_id=row.campaign_id,
            case_id=None,
            name=row.name,
            due_at=due,
            action=row.action,
            late_policy=row.late_policy,
            created_at=now,
        )


def _occurrence_after(due: datetime, every: Delay, zone: ZoneInfo, at: str | None) -> datetime:
    """The next occurrence of a repeating timer. Whole days keep the declared local time
    (``at``, HH:MM): a 02:30 timer that ran at 03:30 on the night 02:30 did not exist
    (last Sunday of March) is back at 02:30 the next day; on the night 02:30 happens twice
    it runs at the first."""
    following = every.after(due, zone)
    if at is None or every.seconds or not every.days:
        return following
    hours, minutes = (int(part) for part in at.split(":"))
    day = following.astimezone(zone).date()
    return datetime.combine(day, time(hours, minutes), zone).astimezone(UTC)
