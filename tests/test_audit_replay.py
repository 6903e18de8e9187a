"""Replay and the state at an instant, against what the live engine showed (SQLite and
PostgreSQL), over a campaign that follows the FAQ's timetable (1.2 window, 1.3 review)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from audit_scenario import CLOSING, INSTANTS, run_campaign
from conftest import AUDITOR, CANDIDATE, EngineFactory, candidacy, drive_to_regional_review, paris
from ti_workflow.audit.checkpoints import take_checkpoint
from ti_workflow.audit.fast import hashed_events
from ti_workflow.audit.history import replay_case
from ti_workflow.audit.snapshot import parse_at, snapshot, state_at, states_at
from ti_workflow.audit.verify import verify
from ti_workflow.clock import SimulatedClock
from ti_workflow.errors import Forbidden, InvalidData, NotFound


def test_init_creates_the_checkpoint_table(db_url: str, make_engine: EngineFactory) -> None:
    engine = make_engine(db_url)
    with engine.db.connect() as conn:
        assert inspect(conn).has_table("audit_checkpoints")
    assert take_checkpoint(engine).cases == 0


def test_replay_equals_live_state_across_a_whole_campaign(
    db_url: str, make_engine: EngineFactory, clock: SimulatedClock
) -> None:
    engine = make_engine(db_url)
    run = run_campaign(engine, clock)
    for name, case_id in run.ids.items():
        result = replay_case(engine, case_id)
        live = engine.get(case_id, AUDITOR)
        assert result.differences == [], name
        assert (result.case.state, result.case.data, result.case.facts) == (
            live.state,
            live.data,
            live.facts,
        )
    assert {n: replay_case(engine, i).case.state for n, i in run.ids.items()} == {
        "labelled": "labelled",
        "rejected": "not_selected",
        "draft": "lapsed",
        "withdrawn": "withdrawn",
        "interregional": "labelled",
    }
    steps = replay_case(engine, run.ids["interregional"]).steps
    close = next(s for s in steps if s["trigger"] == "close_regional_review")
    assert close["at_paris"] == "2023-10-14T00:00:00+02:00"
    assert close["annotations"] == {"missing_opinions": ["53/state_services"]}
    with engine.db.connect() as conn:  # the fast hash path agrees with the engine's hashes
        pairs = list(hashed_events(conn))
    assert len(pairs) == 28 and all(e.hash == digest for e, digest in pairs)
    report = verify(engine)
    assert report.ok, report.findings
    assert report.cases == 5 and report.events == sum(
        len(replay_case(engine, i).steps) for i in run.ids.values()
    )


def test_snapshot_equals_what_the_live_system_showed(
    db_url: str, make_engine: EngineFactory, clock: SimulatedClock
) -> None:
    engine = make_engine(db_url)
    run = run_campaign(engine, clock)
    for instant in INSTANTS:
        shown = run.live[instant]
        seen = {c.case.case_id: c.case for c in snapshot(engine, parse_at(instant)) if c.case}
        assert set(seen) == set(shown), instant
        by_sql = {i: st for i, st, _ in states_at(engine, parse_at(instant))}
        assert by_sql == {i: live["state"] for i, live in shown.items()}, instant
        for case_id, live in shown.items():
            c = seen[case_id]
            assert (c.state, c.data, c.facts, c.regions) == (
                live["state"],
                live["data"],
                live["facts"],
                live["regions"],
            ), (instant, case_id)


def test_who_was_labelled_on_1_december_and_who_was_a_draft_at_the_close(
    db_url: str, make_engine: EngineFactory, clock: SimulatedClock
) -> None:
    engine = make_engine(db_url)
    run = run_campaign(engine, clock)
    labelled = [
        c.case.case_id for c in snapshot(engine, parse_at("2023-12-01"), "labelled") if c.case
    ]
    assert labelled == [run.ids["labelled"], run.ids["interregional"]]
    drafts = [c.case.case_id for c in snapshot(engine, parse_at(CLOSING), "draft") if c.case]
    assert drafts == [run.ids["draft"]]
    # One microsecond later the window is closed but nobody has lapsed the draft yet.
    after = parse_at("2023-09-23T00:00:04")
    assert [c.case.case_id for c in snapshot(engine, after, "draft") if c.case] == drafts
    assert [
        c.case.case_id for c in snapshot(engine, parse_at("2023-09-23T00:00:05"), "draft") if c.case
    ] == []


def test_state_at_an_instant_with_and_without_offset(
    sqlite_url: str, make_engine: EngineFactory, clock: SimulatedClock
) -> None:
    engine = make_engine(sqlite_url)
    run = run_campaign(engine, clock)
    case_id = run.ids["labelled"]
    # The first title, before the update of 3 July 09:00 Paris (07:00 UTC).
    before = state_at(engine, case_id, parse_at("2023-07-03T08:59:59"))
    assert before.case is not None and before.case.title == "Territoire labelled"
    assert state_at(engine, case_id, parse_at("2023-07-03T07:00:00+00:00")).case.title == (  # type: ignore[union-attr]
        "Territoire labelled (v2)"
    )
    review = state_at(engine, case_id, parse_at("2023-10-02T14:00:00")).as_dict()
    assert review["state"] == "national_review"
    assert review["opinions"]["84"]["regional_council"]["opinion"] == "favourable"
    assert review["decision"] is None
    assert state_at(engine, case_id, parse_at("2023-06-01")).case is None
    with pytest.raises(NotFound):
        state_at(engine, 999, parse_at("2023-06-01"))
    with pytest.raises(InvalidData, match="--at"):
        parse_at("le 1er décembre")


def test_the_auditor_reads_everything_and_changes_nothing(
    sqlite_url: str, make_engine: EngineFactory, clock: SimulatedClock
) -> None:
    engine = make_engine(sqlite_url)
    case_id = drive_to_regional_review(engine)
    version = engine.get(case_id, AUDITOR).version
    with pytest.raises(Forbidden):
        engine.fire(case_id, "withdraw", AUDITOR)
    with pytest.raises(Forbidden):
        engine.update_data(case_id, candidacy(), AUDITOR)
    with pytest.raises(Forbidden):
        engine.create_case("candidacy", "ti-2023-2027", candidacy(), AUDITOR)
    assert engine.get(case_id, AUDITOR).version == version
    assert len(engine.history(case_id, AUDITOR)) == 3
    assert replay_case(engine, case_id).case.state == "regional_review"
    assert engine.get(case_id, CANDIDATE).state == "regional_review"
    clock.set(paris("2023-07-04T00:00:00"))
