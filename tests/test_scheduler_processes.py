"""Several scheduler processes, the SQLite one-scheduler rule, the CLI, the schema."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, inspect, select
from typer.testing import CliRunner, Result

from conftest import CANDIDATE, COMMITTEE, candidacy, give_all_opinions, paris
from french import fr
from sched_support import smtp_sink
from ti_workflow.bootstrap import open_engine
from ti_workflow.cli.app import app
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.mail.outbox import outbox
from ti_workflow.scheduling import lock
from ti_workflow.scheduling.sweep import sweep
from ti_workflow.scheduling.timers import insert_timer, timers
from ti_workflow.settings import Settings
from ti_workflow.storage import repository as repo

CLI = [sys.executable, "-m", "ti_workflow.cli"]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A real process: the way an operator or cron runs it."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=180, env=env or dict(os.environ)
    )


def quick(*args: str, env: dict[str, str] | None = None) -> Result:
    """The same command in this process (same code path, no interpreter start-up)."""
    return CliRunner().invoke(app, list(args), env=env)


def test_init_creates_the_scheduler_and_outbox_tables(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
        columns = {c["name"] for c in inspect(conn).get_columns("timers")}
    engine.dispose()
    assert {"timers", "outbox", "scheduler_locks"} <= names
    assert {"due_at", "late_policy", "status", "fired_at", "outcome", "claimed_by"} <= columns


def _worker(url: str, barrier: Any, results: Any, name: str) -> None:
    engine = open_engine(Settings(db_url=url), SimulatedClock(paris("2023-07-05T12:00")))
    barrier.wait(timeout=60)
    report = sweep(engine, worker=name)
    results.put((name, [t["id"] for t in report.timers]))
    engine.db.dispose()


def test_two_scheduler_processes_on_postgresql_fire_every_timer_exactly_once(
    pg_url: str, make_engine: Any
) -> None:
    engine = make_engine(pg_url)
    n = 80
    case_ids = []
    for i in range(n):
        data = candidacy(territory_name=f"T{i}")
        case = engine.create_case("candidacy", "ti-2023-2027", data, CANDIDATE)
        engine.fire(case.id, "submit", CANDIDATE)
        case_ids.append(case.id)
    with engine.db.begin() as conn:
        for i, case_id in enumerate(case_ids):
            insert_timer(
                conn,
                key=f"test:{case_id}",
                campaign_id="ti-2023-2027",
                case_id=case_id,
                name="review_start",
                due_at=paris("2023-07-04T00:00") + timedelta(seconds=i),
                action={
                    "kind": "case",
                    "workflow": "candidacy",
                    "fire": "start_regional_review",
                    "notify": None,
                    "while_in": ["submitted"],
                },
                late_policy="fire",
                created_at=paris("2023-07-03T00:00"),
            )
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(pg_url, barrier, results, f"w{i}")) for i in (1, 2)]
    for p in procs:
        p.start()
    ran = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    every = ran["w1"] + ran["w2"]
    assert len(every) == len(set(every)) == n + 1  # the case timers and `window_opened`
    with engine.db.connect() as conn:
        rows = conn.execute(select(timers).where(timers.c.key.like("test:%"))).all()
        starts = conn.execute(
            select(repo.events.c.case_id, func.count())
            .where(repo.events.c.trigger == "start_regional_review")
            .group_by(repo.events.c.case_id)
        ).all()
    assert {(r.status, r.attempts) for r in rows} == {("done", 1)}
    assert sorted(starts) == [(cid, 1) for cid in case_ids]
    print(f"w1 ran {len(ran['w1'])}, w2 ran {len(ran['w2'])}")


def test_sqlite_allows_one_scheduler_with_a_clear_message(sqlite_url: str) -> None:
    db = create_engine(sqlite_url)
    lock.acquire(db, "other-host:4242", timedelta(minutes=5))
    result = quick("scheduler", "tick", "--no-send", "--db", sqlite_url)
    assert result.exit_code == 1
    assert "another scheduler (other-host:4242)" in result.stderr
    assert "one scheduler at a time" in result.stderr and "Traceback" not in result.stderr
    lock.release(db, "other-host:4242")
    ok = cli(
        "scheduler", "tick", "--no-send", "--until", "2023-07-01", "--json", "--db", sqlite_url
    )
    assert ok.returncode == 0, ok.stderr
    body = json.loads(ok.stdout)
    assert [(t["name"], t["status"]) for t in body["timers"]] == [("window_opened", "skipped")]
    db.dispose()


def test_tick_refuses_a_future_horizon_and_bad_dates(sqlite_url: str) -> None:
    future = quick("scheduler", "tick", "--until", "2999-01-01", "--db", sqlite_url)
    assert future.exit_code == 2 and "never runs a timer before it is due" in future.stderr
    bad = quick("timers", "list", "--status", "done-ish", "--db", sqlite_url)
    assert bad.exit_code == 2 and "expected one of" in bad.stderr
    bad_date = quick("scheduler", "tick", "--until", "22/09/2023", "--db", sqlite_url)
    assert bad_date.exit_code == 2 and "ISO 8601" in bad_date.stderr
    retry = quick("notifications", "retry", "7", "--db", sqlite_url)
    assert retry.exit_code == 1 and "unknown message 7" in retry.stderr
    for listing in (("timers", "list"), ("notifications", "list")):
        unknown = quick(*listing, "--case", "999", "--db", sqlite_url)
        assert unknown.exit_code == 1 and "unknown case 999" in unknown.stderr, listing
    with create_engine(sqlite_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(timers)).scalar() == 0


def test_scheduler_run_catches_up_at_once_and_sends(sqlite_url: str, tmp_path: Path) -> None:
    """A scheduler started today (the real clock) over the 2023 campaign: every deadline is
    past; late policies decide, the window closes once, mail goes to the SMTP server."""
    clock = SimulatedClock(paris("2023-07-03T10:00"))
    engine = open_engine(Settings(db_url=sqlite_url), clock)
    draft = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE).id
    bretagne = Actor("candidate", email="bretagne@example.org")
    data = candidacy(territory_name="Bretagne Sud", contact_email=bretagne.email)
    data["perimeter"]["members"] = ["200027027", "200038990"]  # region 53
    labelled = engine.create_case("candidacy", "ti-2023-2027", data, bretagne).id
    engine.fire(labelled, "submit", bretagne)
    clock.set(paris("2023-09-25T10:00"))
    engine.fire(labelled, "start_regional_review", COMMITTEE)
    give_all_opinions(engine, labelled)
    clock.set(paris("2023-10-31T15:00"))
    engine.fire(labelled, "label", COMMITTEE)
    with engine.db.begin() as conn:  # what the events queued is not this test's subject
        conn.execute(outbox.update().values(status="sent"))
    engine.db.dispose()
    with smtp_sink() as sink:
        env = {
            **os.environ,
            "TI_WORKFLOW_SMTP_HOST": "127.0.0.1",
            "TI_WORKFLOW_SMTP_PORT": str(sink.port),
        }
        listed = quick("timers", "list", "--json", "--db", sqlite_url, env=env)
        assert [t["name"] for t in json.loads(listed.stdout)][:2] == [
            "window_opened",
            "closing_reminder.J-14",
        ]
        run = cli(
            "scheduler",
            "run",
            "--exit-after",
            "4",
            "--interval",
            "1",
            "--json",
            "--db",
            sqlite_url,
            env=env,
        )
        assert run.returncode == 0, run.stderr
        # The draft lapses at the closing (fire), the decision is announced late (fire),
        # the invitation to the general assembly is escalated (escalate, FAQ 1.3).
        assert sorted(str(m.message["X-TI-Notification"]) for m in sink.received) == [
            "candidacy_lapsed",
            "labelled",
            "timer_escalated",
        ]
        [escalated] = sink.of("timer_escalated")
        assert "Bretagne Sud" in escalated.part("plain")
        # label_fr of the state, agreeing with "candidature"; not `labelled`
        assert fr("« Bretagne Sud » (Labellisée)") in escalated.part("plain")
        assert fr("« Bretagne Sud » (Labellisée)") in escalated.part("html")
        assert escalated.rcpt_tos == ["comite-pilotage@territoires-industrie.example.gouv.fr"]
        # the timer's label_fr, not its name (general_assembly_invitation.J+1)
        assert "invitation des territoires labellisés à l'assemblée générale" in escalated.subject
        assert "general_assembly" not in escalated.subject + escalated.part("plain")
        assert "15 novembre 2023 à 10 h 00" in escalated.part("plain")
        assert " jours " in escalated.part("plain").split(fr("retard : "))[1].split(")")[0]
    db = create_engine(sqlite_url)
    with db.connect() as conn:
        state = conn.execute(select(repo.cases.c.state).where(repo.cases.c.id == draft)).scalar()
        done = dict(conn.execute(select(timers.c.name, timers.c.status)).all())
    db.dispose()
    assert state == "lapsed"
    assert done["window_closing"] == "done" and done["closing_reminder.J-1"] == "skipped"
    assert done["general_assembly_invitation.J+1"] == "escalated"
    shown = quick("notifications", "list", "--json", "--db", sqlite_url)
    assert {m["status"] for m in json.loads(shown.stdout)} == {"sent"}


def test_case_notifications_shows_what_was_sent_to_whom_within_scope(sqlite_url: str) -> None:
    engine = open_engine(Settings(db_url=sqlite_url), SimulatedClock(paris("2023-07-03T10:00")))
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    engine.fire(case.id, "submit", CANDIDATE)
    engine.db.dispose()
    mine = quick(
        "case", "notifications", str(case.id), "--as", CANDIDATE.label, "--json", "--db", sqlite_url
    )
    assert mine.exit_code == 0, mine.stderr
    [row] = json.loads(mine.stdout)
    assert row["notification"] == "submission_acknowledged" and row["event_seq"] == 2
    assert row["to"] == ["candidate <ti@arve.example.org>"] and row["status"] == "pending"
    other = quick(
        "case", "notifications", str(case.id), "--as", "candidate:x@example.org", "--db", sqlite_url
    )
    assert other.exit_code == 1 and "unknown case" in other.stderr
    shown = quick("notifications", "show", str(row["id"]), "--db", sqlite_url)
    subject = fr("Subject: Accusé de réception de votre candidature « Vallée de l'Arve »")
    assert subject in shown.stdout
    assert "Message-ID: " + row["message_id"] in shown.stdout
    assert "--- text/html ---" in shown.stdout and "<p>" in shown.stdout.split("text/html")[1]
    not_failed = quick("notifications", "retry", str(row["id"]), "--db", sqlite_url)
    assert not_failed.exit_code == 1 and "only failed or partial messages" in not_failed.stderr
    assert f"message {row['id']} is pending" in not_failed.stderr


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("TI_WORKFLOW_MAIL_FROM", "no-reply@example.org\r\nBcc: x@example.org", "no line break"),
        ("TI_WORKFLOW_MAIL_FROM", "a@example.org, b@example.org", "not one sender address"),
        ("TI_WORKFLOW_MAIL_FROM", "not an address", "not one sender address"),
        ("TI_WORKFLOW_SMTP_PORT", "70000", "must be at most 65535"),
        ("TI_WORKFLOW_SMTP_TLS", "ssl", "is not one of none, starttls, tls"),
    ],
)
def test_bad_mail_settings_are_refused_before_anything_is_sent(
    sqlite_url: str, variable: str, value: str, problem: str
) -> None:
    result = quick("notifications", "send", "--db", sqlite_url, env={variable: value})
    assert result.exit_code == 2, result.output
    assert variable in result.stderr and problem in result.stderr
    assert "Traceback" not in result.stderr


def test_a_good_sender_with_a_display_name_is_accepted(sqlite_url: str) -> None:
    sender = '"Territoires d\'industrie, ANCT" <no-reply@anct.example.gouv.fr>'
    ok = quick("notifications", "list", "--db", sqlite_url, env={"TI_WORKFLOW_MAIL_FROM": sender})
    assert ok.exit_code == 0, ok.stderr


def test_a_late_escalate_timer_with_no_case_to_act_on_alerts_nobody(db_url: str) -> None:
    """The general assembly invitation (late: escalate) runs after a campaign that
    labelled nobody: it is recorded as skipped, with why, and nothing is mailed."""
    clock = SimulatedClock(paris("2023-07-03T10:00"))
    engine = open_engine(Settings(db_url=db_url), clock)
    engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    clock.set(paris("2023-12-01T10:00"))
    report = sweep(engine)
    with engine.db.connect() as conn:
        queued = [r.notification for r in conn.execute(select(outbox.c.notification)).all()]
    engine.db.dispose()
    [invitation] = [t for t in report.timers if t["name"] == "general_assembly_invitation.J+1"]
    assert invitation["status"] == "skipped"
    assert invitation["outcome"]["reason"] == (
        "no case in the states it acts on: nothing to escalate"
    )
    assert "timer_escalated" not in queued and "candidacy_lapsed" in queued


def test_the_sqlite_lock_of_a_dead_local_scheduler_is_taken_at_once(sqlite_url: str) -> None:
    dead = subprocess.Popen(["true"])  # a process of this host, now gone
    dead.wait()
    db = create_engine(sqlite_url)
    lock.acquire(db, f"{socket.gethostname()}:{dead.pid}", timedelta(minutes=5))
    result = quick("scheduler", "tick", "--no-send", "--until", "2023-07-01", "--db", sqlite_url)
    assert result.exit_code == 0, result.output
    alive = f"{socket.gethostname()}:{os.getppid()}"  # the test runner's parent lives on
    lock.acquire(db, alive, timedelta(minutes=5))
    busy = quick("scheduler", "tick", "--no-send", "--db", sqlite_url)
    assert busy.exit_code == 1 and f"another scheduler ({alive})" in busy.stderr
    db.dispose()


def test_each_reader_sees_the_mail_addressed_to_it(sqlite_url: str) -> None:
    engine = open_engine(Settings(db_url=sqlite_url), SimulatedClock(paris("2023-07-03T10:00")))
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    engine.fire(case.id, "submit", CANDIDATE)
    engine.fire(case.id, "start_regional_review", COMMITTEE)
    engine.db.dispose()

    def seen(reader: str) -> list[str]:
        result = quick(
            "case", "notifications", str(case.id), "--as", reader, "--json", "--db", sqlite_url
        )
        assert result.exit_code == 0, result.stderr
        return sorted(m["notification"] for m in json.loads(result.stdout))

    everything = ["opinion_requested", "submission_acknowledged", "window_closed"]
    assert seen("auditor") == seen("national_committee") == everything
    assert seen(CANDIDATE.label) == ["submission_acknowledged", "window_closed"]
    assert seen("regional_council:84") == seen("state_services:84") == ["opinion_requested"]


def test_notifications_send_limit_is_a_number_of_messages(sqlite_url: str) -> None:
    engine = open_engine(Settings(db_url=sqlite_url), SimulatedClock(paris("2023-07-03T10:00")))
    for i in range(5):
        who = Actor("candidate", email=f"l{i}@example.org")
        case = engine.create_case(
            "candidacy", "ti-2023-2027", candidacy(contact_email=who.email), who
        )
        engine.fire(case.id, "submit", who)
    engine.db.dispose()
    with smtp_sink() as sink:
        env = {"TI_WORKFLOW_SMTP_HOST": "127.0.0.1", "TI_WORKFLOW_SMTP_PORT": str(sink.port)}
        one = quick("notifications", "send", "--limit", "1", "--json", "--db", sqlite_url, env=env)
        assert one.exit_code == 0, one.stderr
        assert json.loads(one.stdout)["sent"] == 1 and len(sink.received) == 1
        rest = quick("notifications", "send", "--json", "--db", sqlite_url, env=env)
        assert json.loads(rest.stdout)["sent"] == 4 and len(sink.received) == 5


def test_lists_say_when_they_are_cut_and_timers_say_what_they_did(sqlite_url: str) -> None:
    engine = open_engine(Settings(db_url=sqlite_url), SimulatedClock(paris("2023-12-01T10:00")))
    sweep(engine)  # every 2023 campaign timer is past: run them all (late policies)
    engine.db.dispose()
    cut = quick("timers", "list", "--all", "--limit", "3", "--db", sqlite_url)
    assert cut.exit_code == 0, cut.stderr
    assert "3 of 9 shown (--limit N to see more)" in cut.stdout
    every = quick("timers", "list", "--all", "--db", sqlite_url)
    assert "shown" not in every.stdout
    assert "01/12/2023 10:00 +0100; lapse 0 (skipped" in every.stdout  # when, what it did
    assert "late by" in every.stdout
    both = quick("notifications", "retry", "1", "--all-failed", "--db", sqlite_url)
    assert both.exit_code == 2 and "not both" in both.stderr


def test_a_read_on_a_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    result = quick("timers", "list", "--db", f"sqlite:///{missing}")
    assert result.exit_code == 1 and "no database file" in result.stderr
    assert not missing.exists()
