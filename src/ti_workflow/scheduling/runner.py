"""``scheduler run``: APScheduler wakes the sweep and the dispatcher; the rows stay the truth.

The only module importing apscheduler. A ``BlockingScheduler`` with an in-memory job
store (nothing to pickle, nothing to lose: due instants live in the ``timers`` table)
runs one ``wake`` job at the next due instant and a safety job every interval, both
with ``misfire_grace_time=None`` and ``coalesce``, on a single worker thread so two
wakes never overlap. On start the first wake runs at once: a process started after a
deadline catches up immediately.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
from apscheduler.schedulers.blocking import BlockingScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.date import DateTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from sqlalchemy import func, select

from ti_workflow.engine import Engine
from ti_workflow.mail.dispatch import Dispatcher
from ti_workflow.mail.outbox import outbox
from ti_workflow.scheduling import lock
from ti_workflow.scheduling.install import scheduling_of
from ti_workflow.scheduling.sweep import sweep, worker_id
from ti_workflow.scheduling.timers import next_due
from ti_workflow.storage.database import read
from ti_workflow.storage.repository import utc

MIN_WAIT = timedelta(seconds=1)


@dataclass
class RunStats:
    wakes: int = 0
    timers: int = 0
    sent: int = 0
    errors: list[str] = field(default_factory=list)


def next_wake(engine: Engine) -> datetime | None:
    with read(engine.db) as conn:
        timer = next_due(conn)
        mail = conn.execute(
            select(func.min(outbox.c.next_attempt_at)).where(outbox.c.status == "pending")
        ).scalar()
    candidates = [t for t in (timer, utc(mail) if mail else None) if t is not None]
    return min(candidates) if candidates else None


def run(
    engine: Engine,
    interval: int,
    exit_after: float | None = None,
    on_wake: Callable[[dict[str, Any]], None] | None = None,
) -> RunStats:
    settings = scheduling_of(engine).settings
    worker = worker_id()
    ttl = timedelta(seconds=max(3 * interval, 120))
    lock.acquire(engine.db, worker, ttl)
    dispatcher = Dispatcher(engine.db, settings, engine.clock)
    stats = RunStats()
    scheduler = BlockingScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(1)},
        job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
    )
    guard = threading.Lock()

    def wake() -> None:
        with guard:
            lock.acquire(engine.db, worker, ttl)
            swept = sweep(engine, worker=worker)
            sent = dispatcher.send_due()
            stats.wakes += 1
            stats.timers += len(swept.timers)
            stats.sent += sent.sent
            stats.errors += sent.errors
            upcoming = next_wake(engine)
            if upcoming is not None:
                at = max(upcoming, datetime.now(UTC) + MIN_WAIT)
                scheduler.add_job(wake, DateTrigger(at), id="next-due", replace_existing=True)
            if on_wake:
                on_wake(
                    {
                        "sweep": swept.as_dict(),
                        "sent": sent.sent,
                        "retrying": sent.retrying,
                        "failed": sent.failed,
                        "next": upcoming.isoformat() if upcoming else None,
                    }
                )

    now = datetime.now(UTC)
    scheduler.add_job(
        wake,
        IntervalTrigger(seconds=interval),
        id="safety",
        next_run_time=now,
        replace_existing=True,
    )
    if exit_after is not None:
        scheduler.add_job(
            lambda: scheduler.shutdown(wait=False),
            DateTrigger(now + timedelta(seconds=exit_after)),
            id="exit",
        )

    def stop(_signum: int, _frame: Any) -> None:
        scheduler.shutdown(wait=False)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        scheduler.start()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        lock.release(engine.db, worker)
    return stats
