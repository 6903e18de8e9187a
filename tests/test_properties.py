"""Property: whatever sequence of triggers, actors and instants, a case only ever reaches states
its definition allows, by transitions it declares, and its hash chain verifies."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import AUDITOR, CANDIDATE, candidacy, paris
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.domain.events import GENESIS
from ti_workflow.engine import Engine
from ti_workflow.errors import TiWorkflowError

ACTORS = [
    CANDIDATE,
    Actor("candidate", email="intruder@example.org"),
    Actor("regional_council", region="84"),
    Actor("state_services", region="84"),
    Actor("regional_council", region="52"),
    Actor("national_committee"),
    Actor("system"),
    AUDITOR,
]
PAYLOADS = [
    {},
    {"reason": "motif"},
    {"opinion": "favourable", "reasons": "ok"},
    {"opinion": "unfavourable", "reasons": "non"},
    {"opinion": "peut-être"},
]
TRIGGERS = [
    "submit",
    "return_for_completion",
    "withdraw",
    "start_regional_review",
    "give_opinion",
    "complete_regional_review",
    "close_regional_review",
    "label",
    "reject",
    "lapse",
    "fly",
]

steps = st.lists(
    st.tuples(
        st.sampled_from(TRIGGERS),
        st.sampled_from(ACTORS),
        st.sampled_from(PAYLOADS),
        st.integers(min_value=0, max_value=200),  # days after 1 June 2023
    ),
    max_size=14,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=steps)
def test_random_sequences_stay_inside_the_definition(
    engine: Engine, clock: SimulatedClock, sequence: list[tuple[str, Actor, dict[str, str], int]]
) -> None:
    clock.set(paris("2023-06-01T08:00:00"))
    case_id = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE).id
    definition = engine.catalog.definition(engine.get(case_id, AUDITOR).definition_version)
    declared = {(s, t.trigger, t.dest) for t in definition.transitions for s in t.sources}
    for trigger, actor, payload, day in sequence:
        clock.set(paris("2023-06-01T08:00:00") + timedelta(days=day))
        before = engine.get(case_id, AUDITOR)
        try:
            engine.fire(case_id, trigger, actor, payload)
        except TiWorkflowError:
            after = engine.get(case_id, AUDITOR)
            assert (after.state, after.version, after.head_hash) == (
                before.state,
                before.version,
                before.head_hash,
            )
        assert engine.get(case_id, AUDITOR).state in definition.state_names

    history = engine.history(case_id, AUDITOR)
    prev = GENESIS
    for seq, event in enumerate(history, start=1):
        assert event.seq == seq and event.prev_hash == prev and event.compute_hash() == event.hash
        prev = event.hash
        if event.trigger != "create":
            assert (event.source, event.trigger, event.dest) in declared
    submits = [e for e in history if e.trigger == "submit"]
    campaign = engine.catalog.campaign("ti-2023-2027")
    assert all(campaign.window_contains(e.at) for e in submits), "no submission outside the window"
