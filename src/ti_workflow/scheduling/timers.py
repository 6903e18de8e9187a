"""Timer rows: create them idempotently, claim one at a time, record what happened.

A claim is its own short transaction: on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets
several schedulers share the table without ever taking the same row; on SQLite
``BEGIN IMMEDIATE`` serialises claims (and one scheduler runs at a time anyway).
A claim sets a lease: a process that dies after claiming leaves the row to be taken
again once the lease expires; every action is idempotent (state checks, outbox keys).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, bindparam, func, or_, select, update

from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.timers import CampaignTimerSpec
from ti_workflow.errors import InvalidDefinition
from ti_workflow.scheduling import lock
from ti_workflow.scheduling.tables import TimerRow
from ti_workflow.storage.database import is_sqlite
from ti_workflow.storage.repository import insert_or_ignore, utc

timers = TimerRow.__table__  # type: ignore[attr-defined]
LEASE = timedelta(minutes=15)
OPEN_STATUSES = ("pending", "claimed")
STATUSES = ("pending", "claimed", "done", "skipped", "escalated", "cancelled", "failed")
PENDING_OF_CASE = select(timers.c.id, timers.c.action).where(
    timers.c.case_id == bindparam("case_id"), timers.c.status == "pending"
)


def insert_timer(conn: Connection, **values: Any) -> bool:
    """Insert unless a timer with this key exists; True if inserted."""
    values.setdefault("status", "pending")
    values.setdefault("attempts", 0)
    values.setdefault("outcome", {})
    return insert_or_ignore(conn, timers, values, conflict=("key",))


def campaign_action(spec: CampaignTimerSpec) -> dict[str, Any]:
    return {
        "kind": "campaign",
        "workflow": spec.workflow,
        "actions": [
            {"kind": a.kind, "name": a.name, "states": list(a.states)} for a in spec.actions
        ],
        "context": {k: str(v) for k, v in spec.context.items()},
        "every": spec.every.text if spec.every else None,
        "time": spec.time if spec.every else None,
    }


@dataclass
class SyncReport:
    """What making the pending rows follow the campaign files did (or, dry, would do)."""

    created: int = 0
    cancelled: list[dict[str, Any]] = field(default_factory=list)
    replanned: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "cancelled": self.cancelled, "replanned": self.replanned}

    def lines(self) -> list[str]:
        """One line per timer cancelled or re-planned, for the operator."""
        return [
            f"cancelled   {c['campaign']} {c['name']} (was due {c['due_at']}): {c['reason']}"
            for c in self.cancelled
        ] + [f"re-planned  {r['campaign']} {r['name']}: {r['change']}" for r in self.replanned]


def _fires(action: dict[str, Any]) -> set[str]:
    return {a["name"] for a in action.get("actions", []) if a.get("kind") == "fire"}


def sync_campaign_timers(
    conn: Connection,
    campaigns: Iterable[Campaign],
    now: datetime,
    *,
    allow_cancel: bool = False,
    dry_run: bool = False,
    create: bool = True,
) -> SyncReport:
    """Make the pending rows say what the campaign files say: create the rows of new
    timers, move or re-plan pending ones whose file entry changed (the next occurrence of
    a repeating timer takes its new actions and late policy, and keeps its instant), and
    cancel pending ones whose entry is gone (a timer removed from the file must not fire).

    Cancelling a timer that fires a trigger (or a re-plan that drops a trigger it fires)
    needs ``allow_cancel`` or the timer's entry under the file's ``cancelled:`` (a date and
    a reason); otherwise nothing is changed and :class:`CancelRefused` says which timers.
    ``dry_run`` checks and reports without writing; ``create=False`` (init) leaves the
    rows of new timers to the next tick."""
    report = SyncReport()
    refused: list[str] = []
    writes: list[tuple[Any, dict[str, Any]]] = []
    for campaign in campaigns:
        specs = {spec.name: spec for spec in campaign.timers}
        pending = conn.execute(
            select(timers.c.id, timers.c.key, timers.c.name, timers.c.due_at)
            .add_columns(timers.c.action, timers.c.late_policy)
            .where(
                timers.c.campaign_id == campaign.id,
                timers.c.case_id.is_(None),
                timers.c.status == "pending",
            )
            .order_by(timers.c.due_at, timers.c.id)
        ).all()
        for row in pending:
            spec = specs.get(row.name)
            due_at = utc(row.due_at)
            fires = _fires(row.action)
            why = campaign.cancellation(row.name)
            if spec is None:
                reason = (
                    f"taken out on {why.on.isoformat()}: {why.reason}"
                    if why
                    else f"removed from the file of campaign {campaign.id}"
                )
                if fires and why is None and not allow_cancel:
                    refused.append(_refusal(campaign, row.name, due_at, fires, "is no longer"))
                report.cancelled.append(_seen(campaign, row.name, due_at, reason))
                writes.append(
                    (
                        row.id,
                        {"status": "cancelled", "fired_at": now, "outcome": {"reason": reason}},
                    )
                )
                continue
            # A first occurrence follows the file's instant; a next one (key@instant) keeps its.
            due = spec.due if row.key == _key(campaign, spec) else due_at
            wanted: dict[str, Any] = {
                "due_at": due,
                "action": campaign_action(spec),
                "late_policy": spec.late,
            }
            if (due_at, row.action, row.late_policy) == tuple(wanted.values()):
                continue
            dropped = fires - _fires(wanted["action"])
            if dropped and why is None and not allow_cancel:
                refused.append(_refusal(campaign, row.name, due_at, dropped, "no longer fires"))
            report.replanned.append(
                {
                    "campaign": campaign.id,
                    "name": row.name,
                    "due_at": due_at.isoformat(),
                    "change": _change(row, due_at, wanted),
                }
            )
            writes.append((row.id, wanted))
        if create and not dry_run:
            for spec in campaign.timers:
                report.created += insert_timer(
                    conn,
                    key=_key(campaign, spec),
                    campaign_id=campaign.id,
                    case_id=None,
                    name=spec.name,
                    due_at=spec.due,
                    action=campaign_action(spec),
                    late_policy=spec.late,
                    created_at=now,
                )
    if refused:
        raise CancelRefused(refused)
    if not dry_run:
        for timer_id, values in writes:
            conn.execute(
                update(timers)
                .where(timers.c.id == timer_id, timers.c.status == "pending")
                .values(**values)
            )
    return report


class CancelRefused(InvalidDefinition):
    """A campaign file change would cancel a timer that fires a trigger, unannounced."""


def _refusal(campaign: Campaign, name: str, due: datetime, fires: set[str], what: str) -> str:
    return (
        f"{campaign.source}: timers: {name!r} (due {due.isoformat()}, fires "
        f"{', '.join(sorted(fires))}) {what} in the file: its pending timer would be "
        f"cancelled. Put it back, or say when and why it is taken out: "
        f"cancelled: [{{name: {name.split('.')[0]}, on: YYYY-MM-DD, reason: ...}}], "
        "or run init (or scheduler tick) with --allow-cancel"
    )


def _seen(campaign: Campaign, name: str, due: datetime, reason: str) -> dict[str, Any]:
    return {"campaign": campaign.id, "name": name, "due_at": due.isoformat(), "reason": reason}


def _change(row: Row[Any], due_at: datetime, wanted: dict[str, Any]) -> str:
    parts = []
    if wanted["due_at"] != due_at:
        parts.append(f"due {due_at.isoformat()} -> {wanted['due_at'].isoformat()}")
    if wanted["action"] != row.action:
        parts.append("actions changed")
    if wanted["late_policy"] != row.late_policy:
        parts.append(f"late {row.late_policy} -> {wanted['late_policy']}")
    return ", ".join(parts)


def _key(campaign: Campaign, spec: CampaignTimerSpec) -> str:
    return f"campaign:{campaign.id}:{spec.name}"


def release_dead_claims(db: Engine, now: datetime) -> list[str]:
    """Expire at once the leases of claimants that were processes of this host and are
    gone: their timers are taken again now, not 15 minutes later."""
    return lock.release_dead_claims(db, timers, "claimed", now)


def claim_next(db: Engine, now: datetime, horizon: datetime, worker: str) -> Row[Any] | None:
    """Take the earliest due timer (or one whose claimant's lease expired), or None."""
    due = and_(
        timers.c.due_at <= horizon,
        or_(
            timers.c.status == "pending",
            and_(timers.c.status == "claimed", timers.c.lease_until < now),
        ),
    )
    q = select(timers).where(due).order_by(timers.c.due_at, timers.c.id).limit(1)
    if not is_sqlite(db):
        q = q.with_for_update(skip_locked=True)
    with db.begin() as conn:
        row = conn.execute(q).first()
        if row is None:
            return None
        conn.execute(
            update(timers)
            .where(timers.c.id == row.id)
            .values(
                status="claimed",
                claimed_by=worker,
                lease_until=now + LEASE,
                attempts=timers.c.attempts + 1,
            )
        )
    return row


def finish(
    db: Engine, timer_id: int, worker: str, status: str, outcome: dict[str, Any], now: datetime
) -> bool:
    """Record the outcome; False if the lease was lost to another process meanwhile."""
    with db.begin() as conn:
        done = conn.execute(
            update(timers)
            .where(
                timers.c.id == timer_id,
                timers.c.status == "claimed",
                timers.c.claimed_by == worker,
            )
            .values(status=status, outcome=outcome, fired_at=now, lease_until=None)
        )
    return bool(done.rowcount)


def record_progress(
    conn: Connection, timer_id: int, worker: str, progress: dict[str, Any], now: datetime
) -> None:
    """What a long fan-out did so far, written in the transaction of the batch it counts
    (and the lease renewed): a run taken over after a crash adds to it rather than
    counting only its own part."""
    conn.execute(
        update(timers)
        .where(timers.c.id == timer_id, timers.c.claimed_by == worker)
        .values(outcome={"progress": progress}, lease_until=now + LEASE)
    )


def renew(db: Engine, timer_id: int, worker: str, now: datetime) -> None:
    """Extend the lease of a long fan-out (thousands of cases) so no one takes it over."""
    with db.begin() as conn:
        conn.execute(
            update(timers)
            .where(timers.c.id == timer_id, timers.c.claimed_by == worker)
            .values(lease_until=now + LEASE)
        )


def next_due(conn: Connection) -> datetime | None:
    value = conn.execute(
        select(func.min(timers.c.due_at)).where(timers.c.status.in_(OPEN_STATUSES))
    ).scalar()
    return utc(value) if value is not None else None


def list_timers(
    conn: Connection,
    *,
    statuses: Iterable[str] = OPEN_STATUSES,
    case_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    q = select(timers).where(timers.c.status.in_(list(statuses)))
    if case_id is not None:
        q = q.where(timers.c.case_id == case_id)
    q = q.order_by(timers.c.due_at, timers.c.id).limit(limit)
    return [public(r) for r in conn.execute(q).all()]


def count_timers(
    conn: Connection, *, statuses: Iterable[str] = OPEN_STATUSES, case_id: int | None = None
) -> int:
    q = select(func.count()).select_from(timers).where(timers.c.status.in_(list(statuses)))
    if case_id is not None:
        q = q.where(timers.c.case_id == case_id)
    return int(conn.execute(q).scalar_one())


def public(row: Row[Any]) -> dict[str, Any]:
    m = row._mapping
    return {
        "id": m["id"],
        "name": m["name"],
        "campaign": m["campaign_id"],
        "case_id": m["case_id"],
        "due_at": utc(m["due_at"]).isoformat(),
        "action": m["action"],
        "late_policy": m["late_policy"],
        "status": m["status"],
        "attempts": m["attempts"],
        "claimed_by": m["claimed_by"],
        "fired_at": utc(m["fired_at"]).isoformat() if m["fired_at"] else None,
        "outcome": m["outcome"],
    }


def late_or_escalated(
    conn: Connection, now: datetime, case_ids: Iterable[int] | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Timers still open past their due instant, and timers that escalated, soonest first.

    ``case_ids`` restricts them to those cases (a region's view: campaign timers left out)."""
    late = and_(timers.c.status.in_(OPEN_STATUSES), timers.c.due_at < now)
    q = select(timers).where(or_(late, timers.c.status == "escalated"))
    if case_ids is not None:
        q = q.where(timers.c.case_id.in_(list(case_ids)))
    q = q.order_by(timers.c.due_at, timers.c.id).limit(limit)
    return [public(r) for r in conn.execute(q).all()]
