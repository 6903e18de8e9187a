"""Issue 12, items 8-11: what a scheduler or a sender leaves after a crash, and what it
tells cron. Real CLI processes, killed with SIGKILL or cut off from PostgreSQL by
``pg_terminate_backend``, a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from runtime_support import (
    Seeded,
    count_events,
    env_for,
    fill_outbox,
    kill9,
    outbox_statuses,
    run,
    start,
    wait_for,
)
from sched_support import free_port
from ti_workflow.mail.sink import RecordingHandler, start_sink
from ti_workflow.scheduling.timers import timers
from ti_workflow.storage import repository as repo

DRAFTS = 1100  # three batches of the closing sweep (500, 500, 100)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def closing_seed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    if request.param == "postgresql":
        request.getfixturevalue("pg_database")  # skips (or fails under CI) without a server
    made = Seeded(request.param, DRAFTS, tmp_path_factory.mktemp("closing"))
    yield made
    made.drop()


def _closing(url: str) -> Any:
    db = create_engine(url)
    with db.connect() as conn:
        row = conn.execute(select(timers).where(timers.c.name == "window_closing")).one()
        lapsed_twice = conn.execute(
            select(func.count()).select_from(
                select(repo.events.c.case_id)
                .where(repo.events.c.trigger == "lapse")
                .group_by(repo.events.c.case_id)
                .having(func.count() > 1)
                .subquery()
            )
        ).scalar_one()
        query = select(repo.cases.c.state, func.count()).group_by(repo.cases.c.state)
        states = {str(state): int(n) for state, n in conn.execute(query).all()}
    db.dispose()
    return row, lapsed_twice, states


def _lapse_count(row: Any) -> int:
    [lapse] = [a for a in row.outcome["actions"] if a["name"] == "lapse"]
    return int(lapse["fired"])


def test_a_timer_killed_in_its_closing_sweep_counts_every_attempt(closing_seed: Seeded) -> None:
    """kill -9 of `scheduler tick` after its first batch of lapses: the restart finishes,
    and the timer's outcome says what it did in both runs (it said `lapse 600` while
    1,100 drafts had lapsed)."""
    url = closing_seed.copy()
    env = env_for(url)
    tick = start("scheduler", "tick", "--no-send", env=env)
    wait_for(lambda: count_events(url, "lapse") > 0, 240, "the first batch of lapses")
    kill9(tick)
    before = count_events(url, "lapse")
    assert 0 < before < DRAFTS, before
    again = run("scheduler", "tick", "--no-send", "--json", env=env)
    assert again.returncode == 0, again.stderr
    row, lapsed_twice, states = _closing(url)
    assert row.status == "done" and row.attempts == 2
    assert _lapse_count(row) == count_events(url, "lapse") == DRAFTS
    assert lapsed_twice == 0 and states == {"lapsed": DRAFTS}
    listed = json.loads(run("timers", "list", "--all", "--json", env=env).stdout)
    [closing] = [t for t in listed if t["name"] == "window_closing"]
    assert closing["outcome"]["actions"][0] == {
        "kind": "fire",
        "name": "lapse",
        "fired": DRAFTS,
        "skipped": 0,
    }
    print(f"killed after {before} lapses; the restart did {DRAFTS - before}")


@pytest.mark.parametrize("closing_seed", ["postgresql"], indirect=True)  # pg_terminate_backend
def test_a_connection_lost_mid_sweep_is_one_line_and_the_restart_finishes(
    closing_seed: Seeded,
) -> None:
    url = closing_seed.copy()
    name = f"ti-tick-{time.monotonic_ns()}"
    env = env_for(url, PGAPPNAME=name)
    tick = start("scheduler", "tick", "--no-send", env=env)
    wait_for(lambda: count_events(url, "lapse") > 0, 240, "the first batch of lapses")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        while tick.poll() is None:  # each new connection of the tick is cut off too
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": name},
            )
            time.sleep(0.05)
    admin.dispose()
    out, err = tick.communicate(timeout=60)
    assert tick.returncode == 1, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "database_unavailable" in lines[0]
    assert "run the command again to finish" in lines[0]
    before = count_events(url, "lapse")
    assert before < DRAFTS
    again = run("scheduler", "tick", "--no-send", env=env_for(url))
    assert again.returncode == 0, again.stderr
    row, lapsed_twice, states = _closing(url)
    assert row.status == "done" and lapsed_twice == 0 and states == {"lapsed": DRAFTS}
    assert _lapse_count(row) == DRAFTS  # it said `lapse 0` after a lost connection
    print(f"cut off after {before} lapses: {lines[0]}")


class SlowHandler(RecordingHandler):
    """An SMTP server that takes its time per message, so a kill lands mid-batch."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.02)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_mail_claimed_by_a_killed_sender_is_taken_back_at_once(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url"))
    if backend == "postgresql":
        db = create_engine(url)
        with db.begin() as conn:
            conn.execute(text("TRUNCATE outbox RESTART IDENTITY"))
        db.dispose()
    n = 300
    ids = fill_outbox(url, n)
    handler = SlowHandler()
    port = free_port()
    controller = start_sink("127.0.0.1", port, handler)
    env = env_for(url, TI_WORKFLOW_SMTP_HOST="127.0.0.1", TI_WORKFLOW_SMTP_PORT=str(port))
    try:
        sender = start("notifications", "send", env=env)
        wait_for(lambda: len(handler.received) >= 80, 120, "80 messages received")
        kill9(sender)
        claimed = outbox_statuses(url).get("sending", 0)
        assert claimed > 0  # the batch it was sending, held by a process that is gone
        listed = run("notifications", "list", "--status", "sending", "--json", env=env)
        rows = json.loads(listed.stdout)
        assert {r["claimed_by"].rsplit(":", 1)[1] for r in rows} == {str(sender.pid)}
        shown = run("notifications", "list", "--status", "sending", "--limit", "1", env=env)
        assert f":{sender.pid}" in shown.stdout and "that process is gone" in shown.stdout
        again = run("notifications", "send", "--json", env=env)
        assert again.returncode == 0, again.stderr
        body = json.loads(again.stdout)
        assert body["retrying"] == 0 and body["sent"] >= claimed
    finally:
        controller.stop()
    assert outbox_statuses(url) == {"sent": n}
    got = Counter(str(m.message["Message-ID"]) for m in handler.received)
    assert set(got) == set(ids)  # every message arrived
    duplicates = sum(c - 1 for c in got.values())
    assert duplicates <= 50 + 1  # FLUSH_EVERY not yet recorded, and the one in flight
    print(f"{claimed} taken back at once, {duplicates} sent twice (same Message-ID)")


def test_notifications_send_exits_1_when_nothing_could_be_sent(sqlite_url: str) -> None:
    fill_outbox(sqlite_url, 3)
    down = env_for(sqlite_url, TI_WORKFLOW_SMTP_HOST="127.0.0.1", TI_WORKFLOW_SMTP_PORT="9")
    result = run("notifications", "send", env=down)
    assert result.returncode == 1, result.stdout
    assert "0 sent, 3 to retry" in result.stdout
    assert "none of the 3 message(s) due could be sent; 3 will be tried again later" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    nothing_due = run("notifications", "send", env=down)  # the three wait for their retry
    assert nothing_due.returncode == 0 and "0 sent, 0 to retry" in nothing_due.stdout


def test_send_exits_0_when_the_server_answers(tmp_path: Path, sqlite_url: str) -> None:
    fill_outbox(sqlite_url, 2)
    handler = RecordingHandler()
    port = free_port()
    controller = start_sink("127.0.0.1", port, handler)
    try:
        env = env_for(
            sqlite_url, TI_WORKFLOW_SMTP_HOST="127.0.0.1", TI_WORKFLOW_SMTP_PORT=str(port)
        )
        result = run("notifications", "send", env=env)
    finally:
        controller.stop()
    assert result.returncode == 0 and "2 sent" in result.stdout and len(handler.received) == 2


def test_a_case_timer_that_fired_before_its_process_died_says_done(
    db_url: str, make_engine: Any
) -> None:
    """A case timer whose process fired the case, then died before recording it: the
    resumed run says `done`, not `skipped: case is now regional_review`."""
    from datetime import UTC, timedelta

    from sqlalchemy import update

    from conftest import CANDIDATE, SYSTEM, candidacy, paris
    from ti_workflow.scheduling.sweep import sweep
    from ti_workflow.scheduling.timers import insert_timer

    engine = make_engine(db_url)
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    engine.fire(case.id, "submit", CANDIDATE)
    due = paris("2023-07-03T09:00").astimezone(UTC)
    with engine.db.begin() as conn:
        insert_timer(
            conn,
            key=f"resumed:{case.id}",
            campaign_id="ti-2023-2027",
            case_id=case.id,
            name="review_start",
            due_at=due,
            action={
                "kind": "case",
                "workflow": "candidacy",
                "fire": "start_regional_review",
                "notify": None,
                "while_in": ["submitted"],
            },
            late_policy="fire",
            created_at=due,
        )
    engine.fire(case.id, "start_regional_review", SYSTEM)  # what the dead process did
    with engine.db.begin() as conn:
        conn.execute(
            update(timers)
            .where(timers.c.key == f"resumed:{case.id}")
            .values(
                status="claimed",
                attempts=1,
                claimed_by="elsewhere:1",
                lease_until=engine.clock.now() - timedelta(seconds=1),
            )
        )
    report = sweep(engine)
    [resumed] = [t for t in report.timers if t["name"] == "review_start"]
    assert (resumed["status"], resumed["outcome"]) == ("done", {"fired": "start_regional_review"})
