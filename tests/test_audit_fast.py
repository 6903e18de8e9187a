"""The fast paths of ``audit verify`` and ``audit snapshot`` against what they replace.

Varied candidacies (``varied_scenario.py``: perimeters drawn from the reference data,
returns for completion, missing opinions, withdrawals, decisions...) are driven through
the engine on SQLite and PostgreSQL. Then: the snapshot at many instants equals a plain
replay of each case's events up to that instant; verifying in two processes reports
exactly what one process reports, tampering in either range included; the events' JSON
is stored as the canonical text its hash covers, and rows in the earlier ``json.dumps``
spelling still verify while an edit in either spelling is caught.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from conftest import AUDITOR, EngineFactory, paris
from ti_workflow.audit.fast import hashed_events
from ti_workflow.audit.replay import Replayer, _fast_context
from ti_workflow.audit.snapshot import snapshot, states_at
from ti_workflow.audit.store import stream_events
from ti_workflow.audit.verify import verify
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.domain.events import canonical_body, canonical_json, iso_utc, load_json
from ti_workflow.domain.rules import EFFECTS, FACTS_KEPT, Context
from ti_workflow.engine import Engine
from ti_workflow.storage.database import read
from varied_scenario import START, groupement_pool, story

CASES = 40
INSTANTS = (
    "2023-06-30T12:00:00",
    "2023-08-15T00:00:00",
    "2023-09-22T23:59:59.999999",
    "2023-09-23T00:00:05",
    "2023-09-23T00:30:00",
    "2023-10-01T00:00:00",
    "2023-10-13T23:59:00",
    "2023-10-20T00:00:00",
    "2023-11-14T10:00:00",
    "2023-12-31T00:00:00",
)


def varied(make_engine: EngineFactory, url: str, cases: int = CASES) -> Engine:
    """``cases`` varied candidacies on the workflow core (no area hooks: a groupement may
    then be in several candidacies, as in the bench)."""
    clock = SimulatedClock(START)
    engine = make_engine(url, clock)
    for name in ("hooks", "context_providers", "region_providers"):
        getattr(engine, name).clear()
    pool = groupement_pool(engine.catalog.reference)
    for n in range(cases):
        story(engine, clock, n, pool)
    return engine


@pytest.fixture
def varied_engine(make_engine: EngineFactory, db_url: str) -> Engine:
    return varied(make_engine, db_url)


def plain_replay(engine: Engine, case_id: int, campaign: str, at: Any) -> dict[str, Any] | None:
    """The reference: every event up to ``at`` through the replayer, as ``state_at`` does."""
    with read(engine.db) as conn:
        events = list(stream_events(conn, case_id, until=at))
    if not events:
        return None
    r = Replayer(engine.catalog, case_id, campaign, check=False)
    case = r.apply_all(events)
    return {**case.as_dict(), "head_hash": case.head_hash, "last_event_at": events[-1].at}


def test_the_scenario_is_varied_and_verifies(varied_engine: Engine) -> None:
    with read(varied_engine.db) as conn:
        triggers = {r[0] for r in conn.execute(text("SELECT DISTINCT trigger FROM events"))}
        states = {r[0] for r in conn.execute(text("SELECT DISTINCT state FROM cases"))}
        query = text("SELECT DISTINCT CAST(regions AS TEXT) FROM cases")
        regions = {r[0] for r in conn.execute(query)}
    assert {"update", "return_for_completion", "close_regional_review", "withdraw"} <= triggers
    assert {"complete_regional_review", "label", "reject", "lapse"} <= triggers
    assert {"labelled", "not_selected", "withdrawn", "lapsed"} <= states
    assert len(regions) >= 10
    report = verify(varied_engine)
    assert report.ok, report.findings
    assert report.cases == CASES


def test_snapshot_equals_a_plain_replay_at_every_instant(varied_engine: Engine) -> None:
    with read(varied_engine.db) as conn:
        campaigns = dict(conn.execute(text("SELECT id, campaign_id FROM cases")).all())
    compared = 0
    for instant in INSTANTS:
        at = paris(instant)
        for delta in (timedelta(0), timedelta(microseconds=1)):
            seen = {c.case.case_id: c for c in snapshot(varied_engine, at + delta) if c.case}
            for case_id, campaign in campaigns.items():
                want = plain_replay(varied_engine, case_id, campaign, at + delta)
                got = seen.get(case_id)
                if want is None:
                    assert got is None, (instant, case_id)
                    continue
                assert got is not None and got.case is not None, (instant, case_id)
                have = {**got.case.as_dict(), "head_hash": got.case.head_hash}
                assert {**have, "last_event_at": got.last_event_at} == want, (instant, case_id)
                compared += 1
            by_sql = {i: state for i, state, _ in states_at(varied_engine, at + delta)}
            assert by_sql == {i: c.case.state for i, c in seen.items() if c.case}
    assert compared > CASES * 10
    final = {c.case.case_id: c.case for c in snapshot(varied_engine, paris("2024-06-01")) if c.case}
    live, _ = varied_engine.list_cases(AUDITOR, limit=1000)
    assert len(live) == CASES == len(final)
    for row in live:  # the system as it stands: an oracle independent of the replay
        c = final[row.id]
        assert (c.state, c.data, c.facts, c.regions, c.title, c.last_seq, c.head_hash) == (
            row.state,
            row.data,
            row.facts,
            row.regions,
            row.title,
            row.last_seq,
            row.head_hash,
        ), row.id
    labelled = [c for c in snapshot(varied_engine, paris("2023-12-31"), "labelled") if c.case]
    assert labelled and all(c.case and c.case.facts["decision"] for c in labelled)


def _tamper(engine: Engine, case_id: int, seq: int) -> None:
    """Edit one event's payload in place, writing canonical text as the engine does."""
    with engine.db.begin() as conn:
        raw = conn.execute(
            text("SELECT CAST(payload AS TEXT) FROM events WHERE case_id = :c AND seq = :s"),
            {"c": case_id, "s": seq},
        ).scalar_one()
        payload = json.loads(raw)
        payload["forged"] = True
        conn.execute(
            text("UPDATE events SET payload = :p WHERE case_id = :c AND seq = :s"),
            {"p": canonical_json(payload), "c": case_id, "s": seq},
        )


def test_two_processes_report_exactly_what_one_does(varied_engine: Engine) -> None:
    _tamper(varied_engine, 3, 1)  # first range
    _tamper(varied_engine, CASES - 2, 2)  # second range
    with varied_engine.db.begin() as conn:  # the last case loses its whole history
        conn.execute(text("DELETE FROM events WHERE case_id = :c"), {"c": CASES})
    total = verify(varied_engine).events
    for quick in (False, True):
        one = verify(varied_engine, quick=quick)
        seen: list[int] = []
        two = verify(varied_engine, quick=quick, workers=2, progress=seen.append)
        assert two.findings == one.findings, quick
        assert (two.cases, two.events) == (one.cases, one.events) == (CASES, total)
        assert sum(seen) == total
        located = [(f.case_id, f.seq, f.code) for f in two.findings]
        assert (3, 1, "hash_mismatch") in located
        assert (CASES - 2, 2, "hash_mismatch") in located
        assert located[-1] == (CASES, None, "case_without_events")
        assert [f.case_id for f in two.findings] == sorted(f.case_id for f in two.findings)


def test_events_store_the_canonical_text_their_hash_covers(
    make_engine: EngineFactory, sqlite_url: str
) -> None:
    engine = varied(make_engine, sqlite_url, cases=8)
    with read(engine.db) as conn:
        rows = conn.execute(text("SELECT payload, annotations FROM events")).all()
        pairs = list(hashed_events(conn))
    assert rows and all(canonical_json(json.loads(t)) == t for row in rows for t in row)
    assert any("é" in row[0] for row in rows), "UTF-8 text, not \\u escapes"
    assert all(e.hash == digest for e, digest in pairs)
    for e, _ in pairs:  # the body assembled field by field is the canonical JSON, byte for byte
        assert canonical_body(e, iso_utc(e.at)) == canonical_json(e.body())


def test_rows_in_the_earlier_spelling_still_verify_and_edits_are_caught(
    make_engine: EngineFactory, sqlite_url: str
) -> None:
    engine = varied(make_engine, sqlite_url, cases=8)
    with engine.db.begin() as conn:  # what the engine wrote before: json.dumps' defaults
        for rid, pay, ann in conn.execute(text("SELECT id, payload, annotations FROM events")):
            conn.execute(
                text("UPDATE events SET payload = :p, annotations = :a WHERE id = :i"),
                {"p": json.dumps(json.loads(pay)), "a": json.dumps(json.loads(ann)), "i": rid},
            )
    assert verify(engine).ok and verify(engine, quick=True).ok
    with engine.db.begin() as conn:
        raw = conn.execute(text("SELECT payload FROM events WHERE case_id = 2 AND seq = 1"))
        payload = json.loads(raw.scalar_one())
        payload["data"]["territory_name"] = "Forgé"
        conn.execute(
            text("UPDATE events SET payload = :p WHERE case_id = 2 AND seq = 1"),
            {"p": json.dumps(payload)},
        )
    for quick in (False, True):
        found = [(f.case_id, f.seq, f.code) for f in verify(engine, quick=quick).findings]
        assert (2, 1, "hash_mismatch") in found
    _tamper(engine, 5, 2)  # and in the canonical spelling
    found = [(f.case_id, f.seq, f.code) for f in verify(engine, quick=True).findings]
    assert (5, 2, "hash_mismatch") in found


def test_the_replay_context_has_every_field() -> None:
    names = {f for f in Context.__dataclass_fields__}
    ctx = _fast_context(dict.fromkeys(names))
    assert set(vars(ctx)) == names


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(alphabet=st.characters(exclude_categories=())),  # lone surrogates too
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES, st.sampled_from([canonical_json, json.dumps]))
def test_load_json_reads_what_json_loads_reads(value: Any, dump: Any) -> None:
    text = dump(value)
    assert repr(load_json(text)) == repr(json.loads(text))  # repr: nan == nan here


@pytest.mark.parametrize("text", ['"\\ud800"', '{"a":1,"a":2}', "[1,2", "{} x", " {} ", "1e400"])
def test_load_json_on_texts_the_fast_parser_refuses(text: str) -> None:
    try:
        expected: Any = repr(json.loads(text))
    except ValueError as exc:
        expected = type(exc)
    try:
        got: Any = repr(load_json(text))
    except ValueError as exc:
        got = type(exc)
    assert got == expected


@pytest.mark.parametrize("name", sorted(FACTS_KEPT))
def test_effects_said_to_keep_the_facts_keep_them(name: str, engine: Engine) -> None:
    facts = {"opinions": {"84": {"state_services": {"opinion": "favourable"}}}, "x": [1]}
    ctx = Context(
        case_id=1,
        state="draft",
        data={"perimeter": {"members": ["200000172"]}},
        facts=facts,
        regions=("84",),
        actor=Actor("candidate", email="ti@example.org"),
        now=paris("2023-09-01T12:00:00"),
        campaign=engine.catalog.campaign("ti-2023-2027"),
        reference=engine.catalog.reference,
        payload={},
        trigger="submit",
    )
    assert EFFECTS[name](ctx)[0] == facts
