"""The closing sweep fires its cases in batches: each batch one transaction, each case a
savepoint. What every case gets must be exactly what one ``Engine.fire`` per case gives
(events and their chain, the case row, outbox messages, timers), a refused case must not
disturb the others, and a sweep killed in the middle of a batch must leave nothing of that
batch behind and be finished by the next sweep without firing or queueing anything twice.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, func, select, text

from conftest import ARA_1, CANDIDATE, COMMITTEE, SYSTEM, candidacy, paris
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Change, Engine
from ti_workflow.errors import Forbidden, NotFound, TransitionNotAllowed
from ti_workflow.mail.outbox import outbox
from ti_workflow.scheduling import sweep as sweep_module
from ti_workflow.scheduling.sweep import MOVED_ON, sweep
from ti_workflow.scheduling.timers import timers
from ti_workflow.settings import Settings
from ti_workflow.storage import repository as repo

BEFORE_CLOSING = paris("2023-09-22T23:00:00")
CLOSED = paris("2023-09-23T00:00:01")
REVIEW_DEADLINE = paris("2023-10-14T00:00:00")
BRETAGNE_1 = "200027027"  # CC Arc Sud Bretagne (53)
CLOSING = {"lapse": ["draft"], "start_regional_review": ["submitted"]}
DEADLINE = {"close_regional_review": ["regional_review"]}


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Each call: an empty initialised database of the backend (the same ids every time)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")

        def sqlite() -> str:
            path = tmp_path / f"ti{len(list(tmp_path.glob('ti*.db')))}.db"
            shutil.copy(template, path)
            return f"sqlite:///{path}"

        return sqlite
    url: str = request.getfixturevalue("pg_url")

    def postgresql() -> str:
        db = create_engine(url)
        with db.begin() as conn:
            conn.execute(text("TRUNCATE events, case_regions, cases RESTART IDENTITY CASCADE"))
            conn.execute(text("TRUNCATE outbox, timers RESTART IDENTITY"))
        db.dispose()
        return url

    return postgresql


def _candidate(i: int) -> Actor:
    return Actor("candidate", email=f"t{i}@example.org")


def seed(engine: Engine, clock: SimulatedClock) -> dict[str, list[int]]:
    """Drafts, submitted cases (one in two regions), a draft returned for completion a week
    before the closing (its completion timer still pending), a withdrawn case."""
    clock.set(paris("2023-07-03T10:00"))
    ids: dict[str, list[int]] = {"draft": [], "submitted": [], "other": []}
    owners = {}
    for i in range(13):
        data = candidacy(territory_name=f"Territoire {i}", contact_email=f"t{i}@example.org")
        if i == 4:
            data["perimeter"]["members"] = [ARA_1, BRETAGNE_1]
        case = engine.create_case("candidacy", "ti-2023-2027", data, _candidate(i))
        owners[case.id] = _candidate(i)
        if i % 3 == 0:
            ids["draft"].append(case.id)
            continue
        engine.fire(case.id, "submit", _candidate(i))
        ids["submitted"].append(case.id)
    clock.set(paris("2023-09-15T10:00"))
    returned = ids["submitted"].pop()
    engine.fire(returned, "return_for_completion", COMMITTEE, {"reason": "Lettre manquante"})
    withdrawn = ids["submitted"].pop()
    engine.fire(withdrawn, "withdraw", owners[withdrawn])
    ids["draft"].append(returned)
    ids["other"].append(withdrawn)
    clock.set(BEFORE_CLOSING)
    sweep(engine)  # the closing reminders, due before the closing: the same in both runs
    return ids


def one_fire_per_case(engine: Engine, actions: dict[str, list[str]]) -> None:
    """What the sweep did before batches: ``Engine.fire`` per case, in id order."""
    for trigger, states in actions.items():
        with engine.db.connect() as conn:
            ids = conn.execute(
                select(repo.cases.c.id)
                .where(repo.cases.c.state.in_(states))
                .order_by(repo.cases.c.id)
            ).scalars()
        for case_id in list(ids):
            with contextlib.suppress(MOVED_ON):
                engine.fire(case_id, trigger, SYSTEM)


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row the fires wrote, without the generated ids and Message-IDs."""

    def rows(conn: Connection, table: Any, skip: set[str], *where: Any) -> list[dict[str, Any]]:
        cols = [c for c in table.c if c.name not in skip]
        found = conn.execute(select(*cols).where(*where)).all()
        return sorted((dict(r._mapping) for r in found), key=repr)

    with engine.db.connect() as conn:
        return {
            "cases": rows(conn, repo.cases, set()),
            "events": rows(conn, repo.events, {"id"}),
            "outbox": rows(conn, outbox, {"id", "message_id"}, outbox.c.case_id.is_not(None)),
            "case timers": rows(conn, timers, {"id"}, timers.c.case_id.is_not(None)),
        }


def test_a_batched_sweep_writes_exactly_the_rows_of_one_fire_per_case(
    fresh_db: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep_module, "CHUNK", 3)  # several batches over these 12 cases
    runs = []
    for batched in (False, True):
        clock = SimulatedClock(paris("2023-07-03T10:00"))
        engine = open_engine(Settings(db_url=fresh_db()), clock)
        ids = seed(engine, clock)
        for instant, actions in ((CLOSED, CLOSING), (REVIEW_DEADLINE, DEADLINE)):
            clock.set(instant)
            if batched:
                sweep(engine)
            else:
                one_fire_per_case(engine, actions)
        runs.append(snapshot(engine))
        engine.db.dispose()
    reference, batched_rows = runs
    for table, expected in reference.items():
        assert batched_rows[table] == expected, table
    # and the fires did happen: every draft lapsed, every submitted case went to regional
    # then national review, the returned draft's completion timer was cancelled
    events = Counter((e["case_id"], e["trigger"]) for e in reference["events"])
    assert all(events[(c, "lapse")] == 1 for c in ids["draft"])
    assert all(events[(c, "start_regional_review")] == 1 for c in ids["submitted"])
    assert all(events[(c, "close_regional_review")] == 1 for c in ids["submitted"])
    notes = Counter(m["notification"] for m in reference["outbox"])
    assert notes["candidacy_lapsed"] == len(ids["draft"]) == 6
    assert notes["window_closed"] == notes["opinion_requested"] == len(ids["submitted"]) == 6
    # two regions: council and SGAR of each, each SGAR's DREETS copied (FAQ 1.3)
    [two_regions] = [m for m in reference["outbox"] if len(m["recipients"]) == 6]
    assert two_regions["notification"] == "opinion_requested"
    [completion] = reference["case timers"]
    assert (completion["status"], completion["outcome"]) == (
        "cancelled",
        {"reason": "case is now lapsed"},
    )


def _lapsed(engine: Engine, case_id: int) -> tuple[str, int, int]:
    """(state, lapse events, lapse notifications) of a case."""
    with engine.db.connect() as conn:
        case = repo.load_case(conn, case_id)
        lapses = conn.execute(
            select(func.count()).where(
                repo.events.c.case_id == case_id, repo.events.c.trigger == "lapse"
            )
        ).scalar_one()
        mails = conn.execute(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.case_id == case_id, outbox.c.notification == "candidacy_lapsed")
        ).scalar_one()
    return case.state, lapses, mails


def test_fire_many_refuses_a_case_without_touching_the_others(db_url: str) -> None:
    clock = SimulatedClock(paris("2023-07-03T10:00"))
    engine = open_engine(Settings(db_url=db_url), clock)
    a, b, c, d = (
        engine.create_case("candidacy", "ti-2023-2027", candidacy(territory_name=n), CANDIDATE)
        for n in "ABCD"
    )
    engine.fire(b.id, "submit", CANDIDATE)
    clock.set(CLOSED)

    def refuse_d(conn: Connection, change: Change) -> None:  # after d's rows are written
        if change.case.id == d.id:
            raise Forbidden("system", f"lapse case {d.id}", "a rule of a later hook")

    engine.hooks.append(refuse_d)
    outcomes = engine.fire_many([a.id, b.id, c.id, 999_999, d.id, a.id], "lapse", SYSTEM)
    assert [o.case_id for o in outcomes] == [a.id, b.id, c.id, 999_999, d.id, a.id]
    assert [type(o.refusal) for o in outcomes] == [
        type(None),
        TransitionNotAllowed,  # b was submitted
        type(None),
        NotFound,
        Forbidden,
        TransitionNotAllowed,  # a lapsed a moment ago, as a second fire would say
    ]
    first = outcomes[0].result
    assert first is not None and first.case.state == "lapsed" and first.case.version == 2
    assert _lapsed(engine, a.id) == _lapsed(engine, c.id) == ("lapsed", 1, 1)
    assert _lapsed(engine, d.id) == ("draft", 0, 0)  # its event and message undone
    with engine.db.connect() as conn:
        untouched = repo.load_case(conn, b.id)
        b_events = [e.trigger for e in repo.load_events(conn, b.id)]
    assert (untouched.state, untouched.version, b_events) == ("submitted", 2, ["create", "submit"])
    audit = engine.fire_many([c.id], "lapse", Actor("auditor"))
    assert isinstance(audit[0].refusal, Forbidden)
    if engine.db.dialect.name == "sqlite":  # the batch's in-memory journal was its own
        with engine.db.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 0
    engine.db.dispose()


def test_fire_many_stops_at_an_unexpected_error_keeping_the_cases_before_it(
    db_url: str,
) -> None:
    clock = SimulatedClock(paris("2023-07-03T10:00"))
    engine = open_engine(Settings(db_url=db_url), clock)
    ids = [
        engine.create_case(
            "candidacy", "ti-2023-2027", candidacy(territory_name=f"T{i}"), CANDIDATE
        ).id
        for i in range(4)
    ]
    clock.set(CLOSED)

    def broken(conn: Connection, change: Change) -> None:
        if change.case.id == ids[2]:
            raise RuntimeError("disk on fire")

    engine.hooks.append(broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        engine.fire_many(ids, "lapse", SYSTEM)
    assert [_lapsed(engine, i) for i in ids] == [
        ("lapsed", 1, 1),
        ("lapsed", 1, 1),
        ("draft", 0, 0),
        ("draft", 0, 0),
    ]
    engine.db.dispose()


def _crashing_sweep(url: str, chunk: int, crash_at: int, worker: str | None = "doomed") -> None:
    """A scheduler process that dies (no clean-up at all) inside its second batch."""
    engine = open_engine(Settings(db_url=url), SimulatedClock(CLOSED))
    sweep_module.CHUNK = chunk
    seen = []

    def power_cut(conn: Connection, change: Change) -> None:
        seen.append(change.case.id)
        if len(seen) == crash_at:
            os._exit(3)

    engine.hooks.append(power_cut)
    sweep(engine, worker=worker)  # None: this process's own id, host:pid


@pytest.fixture
def seeded(db_url: str) -> Iterator[tuple[Engine, SimulatedClock, dict[str, list[int]]]]:
    clock = SimulatedClock(paris("2023-07-03T10:00"))
    engine = open_engine(Settings(db_url=db_url), clock)
    yield engine, clock, seed(engine, clock)
    engine.db.dispose()


def test_a_sweep_killed_inside_a_batch_leaves_nothing_of_it_and_the_next_finishes_once(
    db_url: str, seeded: tuple[Engine, SimulatedClock, dict[str, list[int]]]
) -> None:
    engine, clock, ids = seeded
    drafts = sorted(ids["draft"])  # the order the sweep takes them
    process = multiprocessing.get_context("spawn").Process(
        target=_crashing_sweep,
        args=(db_url, 2, 3),  # dies writing the 3rd draft (batch 2)
    )
    process.start()
    process.join(timeout=120)
    assert process.exitcode == 3
    assert [_lapsed(engine, c) for c in drafts] == [
        ("lapsed", 1, 1),
        ("lapsed", 1, 1),
        *[("draft", 0, 0)] * (len(drafts) - 2),
    ]
    with engine.db.connect() as conn:
        closing = conn.execute(select(timers).where(timers.c.name == "window_closing")).one()
    assert (closing.status, closing.claimed_by) == ("claimed", "doomed")

    clock.set(CLOSED + timedelta(minutes=16))  # the dead process's lease has expired
    report = sweep(engine, worker="next")
    [run] = [t for t in report.timers if t["name"] == "window_closing"]
    assert run["status"] == "done"
    assert run["outcome"]["actions"] == [
        # what the timer did across both attempts (issue 12 item 9), not the resumed part
        {"kind": "fire", "name": "lapse", "fired": len(drafts), "skipped": 0},
        {"kind": "fire", "name": "start_regional_review", "fired": 6, "skipped": 0},
    ]
    assert all(_lapsed(engine, c) == ("lapsed", 1, 1) for c in drafts)
    with engine.db.connect() as conn:
        per_case = Counter(conn.execute(select(outbox.c.case_id, outbox.c.notification)).all())
    assert all(per_case[(c, "window_closed")] == 1 for c in ids["submitted"])
    assert all(per_case[(c, "opinion_requested")] == 1 for c in ids["submitted"])
    assert max(per_case.values()) == 1  # no message of any kind queued twice for a case


def test_the_claim_of_a_dead_scheduler_of_this_host_is_taken_at_once(
    db_url: str, seeded: tuple[Engine, SimulatedClock, dict[str, list[int]]]
) -> None:
    """kill -9 of `scheduler run`: its host:pid is gone, so the next sweep resumes the
    closing now instead of after the 15-minute lease; still exactly once per case."""
    engine, clock, ids = seeded
    process = multiprocessing.get_context("spawn").Process(
        target=_crashing_sweep, args=(db_url, 2, 3, None)
    )
    process.start()
    process.join(timeout=120)
    assert process.exitcode == 3
    with engine.db.connect() as conn:
        closing = conn.execute(select(timers).where(timers.c.name == "window_closing")).one()
    assert (closing.status, closing.claimed_by.rpartition(":")[2]) == ("claimed", str(process.pid))
    clock.set(CLOSED + timedelta(minutes=1))  # its 15-minute lease has not expired
    report = sweep(engine, worker="next")
    [run] = [t for t in report.timers if t["name"] == "window_closing"]
    assert run["status"] == "done"
    assert all(_lapsed(engine, c) == ("lapsed", 1, 1) for c in ids["draft"])
    with engine.db.connect() as conn:
        per_case = Counter(conn.execute(select(outbox.c.case_id, outbox.c.notification)).all())
    assert max(per_case.values()) == 1
