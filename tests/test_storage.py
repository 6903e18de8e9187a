"""Storage contract, on SQLite and PostgreSQL: one transaction per fire, optimistic concurrency,
hash chains, rollback on failure."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from conftest import AUDITOR, CANDIDATE, COMMITTEE, SYSTEM, candidacy, drive_to_regional_review
from ti_workflow.domain.actors import Actor
from ti_workflow.domain.events import GENESIS
from ti_workflow.engine import Engine
from ti_workflow.errors import Conflict, GuardRefused
from ti_workflow.mail.outbox import outbox
from ti_workflow.scheduling.timers import PENDING_OF_CASE, timers
from ti_workflow.storage import repository as repo
from ti_workflow.storage.repository import cases, events


def chain_ok(engine: Engine, case_id: int) -> bool:
    history = engine.history(case_id, AUDITOR)
    prev = GENESIS
    for i, e in enumerate(history, start=1):
        if e.seq != i or e.prev_hash != prev or e.compute_hash() != e.hash:
            return False
        prev = e.hash
    return engine.get(case_id, AUDITOR).head_hash == prev


def test_full_lifecycle_persists_and_chains(make_engine: Any, db_url: str) -> None:
    engine = make_engine(db_url)
    case_id = drive_to_regional_review(engine)
    engine.fire(
        case_id,
        "give_opinion",
        Actor("regional_council", region="84"),
        {"opinion": "favourable", "reasons": "ok"},
    )
    result = engine.fire(
        case_id,
        "give_opinion",
        Actor("state_services", region="84"),
        {"opinion": "unfavourable", "reasons": "à revoir"},
    )
    assert [e.trigger for e in result.events] == ["give_opinion", "complete_regional_review"]
    assert result.case.state == "national_review"
    engine.fire(case_id, "label", COMMITTEE)
    # A second engine (another process, in effect) reads the same truth.
    other = make_engine(db_url)
    case = other.get(case_id, AUDITOR)
    assert case.state == "labelled"
    assert case.version == 6 and case.last_seq == 7  # 6 commands, 7 events (one automatic)
    assert case.facts["opinions"]["84"]["state_services"]["opinion"] == "unfavourable"
    assert chain_ok(other, case_id)
    triggers = [e.trigger for e in other.history(case_id, AUDITOR)]
    assert triggers == [
        "create",
        "submit",
        "start_regional_review",
        "give_opinion",
        "give_opinion",
        "complete_regional_review",
        "label",
    ]


def test_stale_version_conflicts_and_writes_nothing(make_engine: Any, db_url: str) -> None:
    engine = make_engine(db_url)
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    engine.update_data(case.id, candidacy(territory_name="Arve"), CANDIDATE, expected_version=1)
    with pytest.raises(Conflict) as conflict:
        engine.fire(case.id, "submit", CANDIDATE, expected_version=1)
    assert conflict.value.actual == 2
    assert engine.get(case.id, AUDITOR).state == "draft"
    assert len(engine.history(case.id, AUDITOR)) == 2


def test_two_operators_on_the_same_version_exactly_one_wins(make_engine: Any, db_url: str) -> None:
    """Real concurrent connections: two threads, two engines, one barrier."""
    setup = make_engine(db_url)
    case_id = drive_to_regional_review(setup)
    version = setup.get(case_id, AUDITOR).version
    engines = [make_engine(db_url), make_engine(db_url)]
    actors = [Actor("regional_council", region="84"), Actor("state_services", region="84")]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def operator(i: int) -> None:
        barrier.wait()
        try:
            engines[i].fire(
                case_id,
                "give_opinion",
                actors[i],
                {"opinion": "favourable", "reasons": "ok"},
                expected_version=version,
            )
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=operator, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    after = setup.get(case_id, AUDITOR)
    assert after.version == version + 1
    assert len(after.facts["opinions"]["84"]) == 1
    assert chain_ok(setup, case_id)


def test_concurrent_fires_without_versions_keep_one_chain(make_engine: Any, db_url: str) -> None:
    """Many writers on one case: each either applies on the latest state or conflicts;
    the chain never forks and no event is lost or duplicated."""
    setup = make_engine(db_url)
    case_id = drive_to_regional_review(
        setup, candidacy(perimeter={"members": ["200000172", "200000438"]})
    )
    bodies = [
        Actor(b, region=r) for r in ("52", "84") for b in ("regional_council", "state_services")
    ]
    engines = [make_engine(db_url) for _ in bodies]
    barrier = threading.Barrier(len(bodies))
    results: list[str] = []

    def operator(i: int) -> None:
        barrier.wait()
        for _attempt in range(20):
            try:
                engines[i].fire(
                    case_id, "give_opinion", bodies[i], {"opinion": "favourable", "reasons": "ok"}
                )
                results.append("ok")
                return
            except Conflict:
                continue

    threads = [threading.Thread(target=operator, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["ok"] * 4
    case = setup.get(case_id, AUDITOR)
    assert case.state == "national_review"
    assert chain_ok(setup, case_id)
    assert [e.trigger for e in setup.history(case_id, AUDITOR)][-1] == "complete_regional_review"


def test_failure_after_the_case_update_rolls_everything_back(make_engine: Any, db_url: str) -> None:
    """The event insert fails after the case row was updated: nothing of the fire remains."""
    engine = make_engine(db_url)
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    with engine.db.begin() as conn:  # a stray row holding the next sequence number
        conn.execute(
            insert(events),
            {
                "case_id": case.id,
                "seq": 2,
                "trigger": "x",
                "source": "draft",
                "dest": "draft",
                "actor": "system",
                "role": "system",
                "at": case.created_at,
                "payload": {},
                "annotations": {},
                "definition_version": case.definition_version,
                "prev_hash": case.head_hash,
                "hash": "f" * 64,
            },
        )
    with pytest.raises(Conflict):
        engine.fire(case.id, "submit", CANDIDATE)
    after = engine.get(case.id, AUDITOR)
    assert (after.state, after.version, after.last_seq) == ("draft", 1, 1)


def test_guard_refusal_writes_nothing(make_engine: Any, db_url: str) -> None:
    engine = make_engine(db_url)
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(action_plan=[]), CANDIDATE)
    with pytest.raises(GuardRefused):
        engine.fire(case.id, "submit", CANDIDATE)
    with engine.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 1
        assert conn.execute(select(cases.c.version).where(cases.c.id == case.id)).scalar_one() == 1


def test_listing_scopes_and_filters(make_engine: Any, db_url: str) -> None:
    engine = make_engine(db_url)
    mine = engine.create_case(
        "candidacy", "ti-2023-2027", candidacy(territory_name="Arve Industrie"), CANDIDATE
    )
    other = Actor("candidate", email="other@example.org")
    theirs = engine.create_case(
        "candidacy",
        "ti-2023-2027",
        candidacy(territory_name="Estuaire", perimeter={"members": ["200000438"]}),
        other,
    )
    engine.fire(mine.id, "submit", CANDIDATE)
    assert [c.id for c in engine.list_cases(CANDIDATE)[0]] == [mine.id]
    rc52 = Actor("regional_council", region="52")
    assert [c.id for c in engine.list_cases(rc52)[0]] == [theirs.id]
    assert [c.id for c in engine.list_cases(AUDITOR, region="84")[0]] == [mine.id]
    assert [c.id for c in engine.list_cases(SYSTEM, state="submitted")[0]] == [mine.id]
    assert [c.id for c in engine.list_cases(COMMITTEE, text="estuaire")[0]] == [theirs.id]
    page, total = engine.list_cases(AUDITOR, limit=1, offset=1)
    assert total == 2 and [c.id for c in page] == [theirs.id]


def test_a_failing_hook_rolls_the_whole_command_back(make_engine: Any, db_url: str) -> None:
    """Hooks (outbox, timers, territories) write in the command's transaction: all or nothing."""
    engine = make_engine(db_url)
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    seen: list[tuple[str, int]] = []

    def failing_hook(conn: Any, change: Any) -> None:
        seen.append((change.case.state, change.case.version))
        raise RuntimeError("outbox unavailable")

    engine.hooks.append(failing_hook)
    with pytest.raises(RuntimeError):
        engine.fire(case.id, "submit", CANDIDATE)
    assert seen == [("submitted", 2)]
    engine.hooks.clear()
    after = engine.get(case.id, AUDITOR)
    assert (after.state, after.version, after.last_seq) == ("draft", 1, 1)


def test_prepared_inserts_and_reads_store_and_return_what_sqlalchemy_does(
    make_engine: Any, db_url: str
) -> None:
    """Hooks insert outbox and timer rows and read pending timers inside every fire, on
    SQLite straight on the driver: the stored values must be SQLAlchemy's to the byte."""
    engine = make_engine(db_url)
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    at = datetime(2023, 9, 22, 22, 0, 1, 123456, tzinfo=UTC)
    message = {  # status and attempts left to their column defaults
        "notification": "window_closed",
        "campaign_id": "ti-2023-2027",
        "case_id": case.id,
        "event_seq": 3,
        "timer_id": None,
        "recipients": [{"role": "candidate", "address": "élue@example.org"}],
        "remaining": ["élue@example.org"],
        "rejected": {},
        "subject": "Dépôt clos : « Vallée »",
        "body_text": "Bonjour,\n",
        "body_html": "<p>Bonjour</p>",
        "next_attempt_at": at,
        "created_at": at,
        "last_error": None,
    }
    timer = {  # status and attempts: defaults
        "campaign_id": "ti-2023-2027",
        "case_id": case.id,
        "name": "completion_reminder",
        "due_at": at,
        "action": {"kind": "case", "while_in": ["draft"], "fire": None, "après": "P14D"},
        "late_policy": "fire",
        "outcome": {},
        "created_at": at,
    }
    with engine.db.begin() as conn:
        fast = {**message, "message_id": "<fast@x>", "dedupe_key": "fast"}
        assert repo.insert_or_ignore(conn, outbox, fast)
        assert not repo.insert_or_ignore(conn, outbox, {**fast, "message_id": "<other@x>"})
        conn.execute(insert(outbox), {**message, "message_id": "<core@x>", "dedupe_key": "core"})
        assert repo.insert_or_ignore(conn, timers, {**timer, "key": "fast"}, conflict=("key",))
        assert not repo.insert_or_ignore(conn, timers, {**timer, "key": "fast"}, conflict=("key",))
        conn.execute(insert(timers), {**timer, "key": "core"})
        stored = {
            table: conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id").all()
            for table in ("outbox", "timers")
        }
        pending = repo.select_rows(conn, PENDING_OF_CASE, {"case_id": case.id})
        expected = [tuple(r) for r in conn.execute(PENDING_OF_CASE, {"case_id": case.id})]
    (fast_mail, core_mail), (fast_timer, core_timer) = stored["outbox"], stored["timers"]
    assert fast_mail[3:] == core_mail[3:]  # all but id, message_id, dedupe_key
    assert fast_mail[1:3] == ("<fast@x>", "fast") and "pending" in fast_mail
    assert fast_timer[2:] == core_timer[2:]  # all but id and key
    assert pending == expected and len(pending) == 2
    assert pending[0][1]["après"] == "P14D"


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 2),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5))]
        ),
    )
)
def test_the_fast_path_spells_instants_as_sqlalchemy_stores_them(instant: datetime) -> None:
    """The SQLite fast path writes DATETIME columns in SQLAlchemy's own spelling (UTC,
    microseconds always), or ordering and comparisons in SQL would break."""
    from ti_workflow.storage.sqlite_fast import sqlite_datetime

    assert sqlite_datetime(instant) == instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
