"""``scheduler run``: APScheduler wakes the sweep and the dispatcher; the rows stay the truth.

The only module importing apscheduler. A ``BlockingScheduler`` with an in-memory job
store (nothing to pickle, nothing to lose: due instants live in the ``timers`` table)
runs a timers job at the next due instant and a mail job at the next message due, each
also on a safety interval, with ``misfire_grace_time=None`` and ``coalesce``. Each has
its own worker thread: two sweeps (or two sends) never overlap, and a slow SMTP server
never delays a deadline. On start both run at once: a process started after a deadline
catches up immediately.
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


def next_timer(engine: Engine) -> datetime | None:
    with read(engine.db) as conn:
        return next_due(conn)


def next_mail(engine: Engine) -> datetime | None:
    with read(engine.db) as conn:
        mail = conn.execute(
            select(func.min(outbox.c.next_attempt_at)).where(outbox.c.status == "pending")
        ).scalar()
    return utc(mail) if mail else None


def run(
    engine: Engine,
    interval: int,
    exit_after: float | None = None,
    on_wake: Callable[[dict[str, Any]], None] | None = None,
) -> RunStats:
    """Timers and mail are two jobs on two worker threads: a slow or hung SMTP server
    never holds up a deadline (each job still never overlaps itself)."""
    settings = scheduling_of(engine).settings
    worker = worker_id()
    ttl = timedelta(seconds=max(3 * interval, 120))
    lock.acquire(engine.db, worker, ttl)
    dispatcher = Dispatcher(engine.db, settings, engine.clock)
    stats = RunStats()
    scheduler = BlockingScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(1), "mail": ThreadPoolExecutor(1)},
        job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
    )
    timers_guard, mail_guard, stats_guard = threading.Lock(), threading.Lock(), threading.Lock()

    def again(job: Callable[[], None], at: datetime | None, name: str, executor: str) -> None:
        if at is not None:
            when = max(at, datetime.now(UTC) + MIN_WAIT)
            scheduler.add_job(
                job, DateTrigger(when), id=name, replace_existing=True, executor=executor
            )

    def wake() -> None:
        with timers_guard:
            lock.acquire(engine.db, worker, ttl)
            swept = sweep(engine, worker=worker)
            upcoming = next_timer(engine)
            again(wake, upcoming, "next-timer", "default")
            with stats_guard:
                stats.wakes += 1
                stats.timers += len(swept.timers)
            if swept.timers:  # what the timers queued goes out now, on the mail thread
                again(send, datetime.now(UTC), "next-mail", "mail")
            if on_wake:
                on_wake(
                    {
                        "sweep": swept.as_dict(),
                        "next": upcoming.isoformat() if upcoming else None,
                    }
                )

    def send() -> None:
        with mail_guard:
            sent = dispatcher.send_due()
            upcoming = next_mail(engine)
            again(send, upcoming, "next-mail", "mail")
            with stats_guard:
                stats.sent += sent.sent
                stats.errors += sent.errors
            if on_wake and sent.claimed:
                on_wake(
                    {
                        "sent": sent.sent,
                        "retrying": sent.retrying,
                        "failed": sent.failed,
                        "next_mail": upcoming.isoformat() if upcoming else None,
                    }
                )

    now = datetime.now(UTC)
    for job, name, executor in ((wake, "safety", "default"), (send, "safety-mail", "mail")):
        scheduler.add_job(
            job,
            IntervalTrigger(seconds=interval),
            id=name,
            next_run_time=now,
            replace_existing=True,
            executor=executor,
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
