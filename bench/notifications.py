"""notifications: the outbox dispatcher against a plain smtplib loop, and the window-closing sweep.

1. Mail: N queued messages sent through :class:`ti_workflow.mail.dispatch.Dispatcher`
   (aiosmtplib, one connection per batch, each outcome committed to the outbox on SQLite)
   and, in the same run and to the same local aiosmtpd server, the same N messages sent
   by a plain ``smtplib`` loop over one connection (no database). Rounds alternate.
   Target: dispatcher rate >= 0.8 x plain smtplib rate.
2. Sweep: the campaign's ``window_closing`` timer over D drafts and S submitted cases on
   SQLite (WAL, synchronous=FULL): each case one audited transition (hash-chained event,
   versioned case update) with the notifications it causes rendered into the outbox, in
   its own savepoint; 500 cases per fsync'd transaction (``Engine.fire_many``).
   Target: under 10 s for 10,000 + 10,000.

    .venv/bin/python bench/notifications.py [--messages N] [--rounds R]
                                            [--drafts D] [--submitted S]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import PARIS, SimulatedClock
from ti_workflow.domain.events import GENESIS, Event
from ti_workflow.domain.rules import FORMS, classify_letters
from ti_workflow.engine import Engine
from ti_workflow.mail.dispatch import Dispatcher
from ti_workflow.mail.outbox import build_message, outbox
from ti_workflow.scheduling.install import scheduling_of
from ti_workflow.scheduling.sweep import sweep
from ti_workflow.settings import Settings
from ti_workflow.storage import repository as repo

START = datetime(2023, 7, 3, 10, 0, tzinfo=PARIS)
CLOSED = datetime(2023, 9, 23, 0, 0, 1, tzinfo=PARIS)
MAIL_TARGET, SWEEP_TARGET = 0.8, 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def candidacy(i: int) -> dict[str, Any]:
    return FORMS["candidacy"].parse(
        {
            "territory_name": f"Territoire {i}",
            "contact_email": f"t{i}@example.org",
            "perimeter": {"members": ["200000172", "200033116"]},
            "governance": {
                "members": [
                    {"name": "Élue", "role": "elected", "organisation": "CC"},
                    {"name": "Industriel", "role": "industrial", "organisation": "SA"},
                ]
            },
            "letters_of_intent": [
                {"signatory": "Élue", "organisation": "CC", "date": "2023-07-01"},
                {"signatory": "Industriel", "organisation": "SA", "date": "2023-07-02"},
            ],
            "action_plan": [
                {"title": "Campus", "priority": "skills", "summary": "Former."},
                {"title": "Friches", "priority": "land", "summary": "Requalifier."},
            ],
        }
    )


def submission(data: dict[str, Any]) -> dict[str, Any]:
    """What ``record_submission`` records at ``submit`` (facts and annotations alike)."""
    return {"governance_mode": "territory", "letters_of_intent": classify_letters(data)}


def seed_cases(engine: Engine, drafts: int, submitted: int) -> None:
    """Cases with a valid create (and submit) event chain, written in one transaction."""
    definition = engine.catalog.current_definition("candidacy")
    now = START.astimezone(UTC)
    with engine.db.begin() as conn:
        next_id = (conn.execute(select(func.max(repo.cases.c.id))).scalar() or 0) + 1
        case_rows, event_rows = [], []
        for n in range(drafts + submitted):
            cid, data = next_id + n, candidacy(n)
            state = "draft" if n < drafts else "submitted"
            create = Event(
                cid,
                1,
                "create",
                None,
                "draft",
                f"candidate:t{n}@example.org",
                "candidate",
                now,
                {"data": data},
                {},
                definition.version,
                GENESIS,
            )
            chain = [Event(**{**create.__dict__, "hash": create.compute_hash()})]
            if state == "submitted":
                sub = Event(
                    cid,
                    2,
                    "submit",
                    "draft",
                    "submitted",
                    chain[0].actor,
                    "candidate",
                    now,
                    {},
                    {"regions": ["84"], **submission(data)},
                    definition.version,
                    chain[0].hash,
                )
                chain.append(Event(**{**sub.__dict__, "hash": sub.compute_hash()}))
            case_rows.append(
                {
                    "id": cid,
                    "workflow": "candidacy",
                    "definition_version": definition.version,
                    "campaign_id": "ti-2023-2027",
                    "state": state,
                    "title": data["territory_name"],
                    "owner_email": f"t{n}@example.org",
                    "data": data,
                    "facts": submission(data) if state == "submitted" else {},
                    "regions": ["84"],
                    "version": len(chain),
                    "last_seq": len(chain),
                    "head_hash": chain[-1].hash,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            event_rows += [repo._event_params(e) for e in chain]
        conn.execute(insert(repo.cases), case_rows)
        conn.execute(
            insert(repo.case_regions), [{"case_id": r["id"], "region": "84"} for r in case_rows]
        )
        conn.execute(insert(repo.events), event_rows)


def queue_messages(engine: Engine, n: int) -> None:
    sched = scheduling_of(engine)
    composer = sched.composer
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(0), _candidate(0))
    spec = sched.notification(engine.catalog.current_definition("candidacy"), "closing_reminder")
    campaign = engine.catalog.campaign("ti-2023-2027")
    context = composer.case_context(case, campaign, None, None, {})
    with engine.db.begin() as conn:
        for i in range(n):
            composer.enqueue(
                conn, spec, context, dedupe_key=f"bench:{i}", now=engine.clock.now(), case=case
            )


def _candidate(i: int) -> Any:
    from ti_workflow.domain.actors import Actor

    return Actor("candidate", email=f"t{i}@example.org")


def plain_smtplib(port: int, rows: list[Any], mail_from: str) -> float:
    """The baseline: the same stored messages, built the same way, one smtplib connection."""
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for row in rows:
            m = build_message(row, mail_from)
            smtp.send_message(m, from_addr="no-reply@example.org", to_addrs=row.remaining)
    return time.perf_counter() - start


def start_sink_process(port: int) -> subprocess.Popen[bytes]:
    """``ti-workflow smtp-sink`` in its own process, as a real local server would be."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ti_workflow.cli", "smtp-sink", "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the SMTP sink did not start")


def mail_bench(workdir: Path, template: Path, n: int, rounds: int) -> float:
    port = free_port()
    sink = start_sink_process(port)
    rates: dict[str, list[float]] = {"dispatcher": [], "smtplib": []}
    try:
        print(
            f"\n1. mail: {n} messages per round to `ti-workflow smtp-sink` (aiosmtpd, own process)"
            f" on 127.0.0.1:{port}, {rounds} rounds"
        )
        print(f"{'round':>5} {'side':<11} {'seconds':>8} {'msg/s':>8}")
        for r in range(rounds):
            db = workdir / f"mail{r}.db"
            shutil.copyfile(template, db)
            settings = Settings(db_url=f"sqlite:///{db}", smtp_host="127.0.0.1", smtp_port=port)
            clock = SimulatedClock(START)
            engine = open_engine(settings, clock)
            queue_messages(engine, n)
            with engine.db.connect() as conn:
                rows = conn.execute(select(outbox).where(outbox.c.dedupe_key.like("bench:%"))).all()
            sides = ["dispatcher", "smtplib"] if r % 2 == 0 else ["smtplib", "dispatcher"]
            for side in sides:
                if side == "smtplib":
                    seconds = plain_smtplib(port, rows, settings.mail_from)
                else:
                    start = time.perf_counter()
                    report = Dispatcher(engine.db, settings, clock).send_due(batch=500)
                    seconds = time.perf_counter() - start
                    assert report.sent == n, report
                rates[side].append(n / seconds)
                print(f"{r + 1:>5} {side:<11} {seconds:8.3f} {n / seconds:8.0f}")
            engine.db.dispose()
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    d, p = statistics.median(rates["dispatcher"]), statistics.median(rates["smtplib"])
    ratio = d / p
    verdict = "OK" if ratio >= MAIL_TARGET else "BELOW TARGET"
    print(f"median dispatcher {d:8.0f} msg/s   plain smtplib {p:8.0f} msg/s")
    print(f"ratio {ratio:.2f} (target >= {MAIL_TARGET}) {verdict}")
    return ratio


def sweep_bench(
    workdir: Path, template: Path, drafts: int, submitted: int, hooks: bool = True
) -> float:
    db = workdir / f"sweep{int(hooks)}.db"
    shutil.copyfile(template, db)
    settings = Settings(db_url=f"sqlite:///{db}")
    clock = SimulatedClock(START)
    engine = open_engine(settings, clock)
    if not hooks:  # the same transitions without the mail hook: what notifications cost
        engine.hooks[:] = [h for h in engine.hooks if "scheduling" not in h.__module__]
    seed_cases(engine, drafts, submitted)
    clock.set(datetime(2023, 9, 22, 23, 0, tzinfo=PARIS))
    sweep(engine)  # everything due before the closing (reminders...) runs first, untimed
    clock.set(CLOSED)
    label = "" if hooks else ", WITHOUT the notification hook"
    print(f"\n2. sweep: window_closing over {drafts} drafts + {submitted} submitted{label}")
    start, cpu = time.perf_counter(), time.process_time()
    report = sweep(engine)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    [closing] = [t for t in report.timers if t["name"] == "window_closing"]
    with engine.db.connect() as conn:
        states = dict(
            conn.execute(
                select(repo.cases.c.state, func.count()).group_by(repo.cases.c.state)
            ).all()
        )
        queued = conn.execute(select(func.count()).select_from(outbox)).scalar()
    engine.db.dispose()
    fires = drafts + submitted
    print(f"   outcome {closing['outcome']['actions']}")
    print(f"   states after: {states}; outbox rows: {queued}")
    verdict = "OK" if seconds < SWEEP_TARGET else "ABOVE TARGET"
    print(
        f"   {seconds:.2f} s for {fires} audited transitions = {fires / seconds:.0f} fires/s,"
        f" {1000 * seconds / fires:.3f} ms each (target < {SWEEP_TARGET:.0f} s) {verdict}"
    )
    print(f"   {cpu:.2f} s of CPU in this process; load average now {os.getloadavg()[0]:.2f}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--drafts", type=int, default=10_000)
    parser.add_argument("--submitted", type=int, default=10_000)
    parser.add_argument("--db-dir", type=Path, default=None)
    parser.add_argument(
        "--breakdown", type=int, default=2000, help="also sweep N+N cases with and without hook"
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="ti-notif-", dir=args.db_dir))
    print("notifications: dispatcher vs plain smtplib; window-closing sweep")
    print(f"date     {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(
        f"python   {platform.python_version()}  machine {platform.machine()}  cpus {os.cpu_count()}"
    )
    print(
        f"sqlite   {sqlite3.sqlite_version}   load average {os.getloadavg()[0]:.2f}"
        " (shared machine)"
    )
    try:
        template = workdir / "template.db"
        initialise(Settings(db_url=f"sqlite:///{template}"), SimulatedClock(START))
        ratio = mail_bench(workdir, template, args.messages, args.rounds)
        seconds = sweep_bench(workdir, template, args.drafts, args.submitted)
        if args.breakdown:
            sweep_bench(workdir, template, args.breakdown, args.breakdown, hooks=True)
            sweep_bench(workdir, template, args.breakdown, args.breakdown, hooks=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ratio >= MAIL_TARGET and seconds < SWEEP_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
