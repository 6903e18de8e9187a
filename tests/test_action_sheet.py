"""Fiches-actions of labelled territories (FAQ 3.1-3.3, issue 15), SQLite and PostgreSQL.

Each rule test cites the FAQ line it enforces; the role matrix checks every trigger
against every role and scope; the scenario drives 2024-2027 with the simulated clock for
three real labelled territories, one interregional, and ends with ``audit verify``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from conftest import AUDITOR, COMMITTEE, EngineFactory, paris
from postlabel_helpers import (
    ALENCON,
    ARDECHE,
    CAMPAIGN,
    CAP_EXCELLENCE,
    file_sheet,
    governance,
    manager,
    owner,
    progress,
    sheet,
    validate_sheet,
)
from territories_helpers import import_shipped
from ti_workflow.audit.snapshot import snapshot
from ti_workflow.audit.verify import verify
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor, parse_actor
from ti_workflow.domain.postlabel import action_sheet_rules
from ti_workflow.domain.rules import Context
from ti_workflow.engine import Engine
from ti_workflow.errors import CreateRefused, Forbidden, GuardRefused, InvalidData, NotFound

STATE_84 = Actor("state_services", region="84")
COUNCIL_84 = Actor("regional_council", region="84")


@pytest.fixture
def engine(make_engine: EngineFactory, db_url: str, clock: SimulatedClock) -> Engine:
    clock.set(paris("2024-01-15T10:00:00"))
    e = make_engine(db_url)
    import_shipped(e)
    return e


def with_parameters(engine: Engine, **parameters: object) -> None:
    campaign = engine.catalog.campaign(CAMPAIGN)
    changed = dataclasses.replace(campaign, parameters={**campaign.parameters, **parameters})
    engine.catalog = dataclasses.replace(
        engine.catalog, campaigns={**engine.catalog.campaigns, CAMPAIGN: changed}, machines={}
    )


def codes(exc: pytest.ExceptionInfo[GuardRefused]) -> set[str]:
    return {r.code for r in exc.value.rules}


# --- rules ------------------------------------------------------------------------------


def test_only_a_labelled_territory_opens_a_fiche(engine: Engine) -> None:
    """FAQ 3.2 (line 178): fiches-actions follow the map of labelled territories."""
    with pytest.raises(CreateRefused) as exc:
        engine.create_case(
            "action_sheet",
            CAMPAIGN,
            sheet("ti-9999"),
            Actor("project_manager", territory="ti-9999"),
        )
    assert "aucun Territoire d'industrie labellisé ne porte l'identifiant ti-9999" in str(exc.value)


def test_an_action_over_four_years_must_be_split_into_phases(engine: Engine) -> None:
    """FAQ 3.1 (line 160): at most four years, complex projects split into phases."""
    long = {"starts_on": "2024-01-01", "ends_on": "2028-06-30"}
    case_id = file_sheet(engine, ARDECHE, **long)
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case_id, "submit", manager(ARDECHE))
    assert codes(exc) == {"long_action_without_phases"}
    assert "subdivisée en phases" in exc.value.rules[0].message_fr
    phases = [
        {"title": "Études", "starts_on": "2024-01-01", "ends_on": "2025-12-31"},
        {"title": "Travaux", "starts_on": "2026-01-01", "ends_on": "2028-09-30"},
    ]
    engine.update_data(case_id, sheet(ARDECHE, **long, phases=phases), manager(ARDECHE))
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case_id, "submit", manager(ARDECHE))
    assert codes(exc) == {"phase_outside_calendar"}
    phases[1]["ends_on"] = "2028-06-30"
    engine.update_data(case_id, sheet(ARDECHE, **long, phases=phases), manager(ARDECHE))
    assert engine.fire(case_id, "submit", manager(ARDECHE)).case.state == "submitted_locally"


def test_the_financing_plan_covers_the_cost(engine: Engine) -> None:
    """FAQ 3.2 (line 176): financing and financing needs; here they add up to the cost."""
    case_id = file_sheet(engine, ARDECHE, estimated_cost=600000)
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case_id, "submit", manager(ARDECHE))
    assert codes(exc) == {"financing_plan_unbalanced"}
    message = exc.value.rules[0].message_fr
    assert "500\u00a0000\u00a0€" in message and "600\u00a0000\u00a0€" in message


def test_a_fiche_details_a_plan_action_or_declares_a_new_one(engine: Engine) -> None:
    """FAQ 3.2 (line 180): new fiches may be added later; a plan fiche names its action."""
    case_id = file_sheet(engine, ARDECHE, origin="plan")
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case_id, "submit", manager(ARDECHE))
    assert codes(exc) == {"plan_action_missing"}
    # An imported territory's plan is not on file: any title is accepted.
    engine.update_data(
        case_id, sheet(ARDECHE, origin="plan", plan_action_title="Usine école"), manager(ARDECHE)
    )
    engine.fire(case_id, "submit", manager(ARDECHE))


def test_a_plan_fiche_must_name_an_action_of_the_plan_on_file(engine: Engine) -> None:
    """FAQ 3.2 (line 180), for a territory labelled through its candidacy here."""
    base = Context(
        case_id=1,
        state="draft",
        data=sheet(ARDECHE, origin="plan", plan_action_title="Usine  école"),
        facts={},
        regions=("84",),
        actor=manager(ARDECHE),
        now=engine.clock.now(),
        campaign=engine.catalog.campaign(CAMPAIGN),
        reference=engine.catalog.reference,
        extra={"territory": {"found": True, "plan_actions": ["Usine école", "Foncier"]}},
    )
    assert action_sheet_rules(base) == []
    other = dataclasses.replace(base, data=sheet(ARDECHE, origin="plan", plan_action_title="X"))
    [rule] = action_sheet_rules(other)
    assert rule.code == "plan_action_unknown"
    assert "« Usine école » ; « Foncier »" in rule.message_fr


def test_regional_review_and_its_reviewers_are_campaign_parameters(engine: Engine) -> None:
    """FAQ 3.2 (line 182): the validation process "sera précisé": campaign parameters."""
    with_parameters(engine, action_sheet_reviewers=["state_services"])
    case_id = file_sheet(engine, ARDECHE)
    engine.fire(case_id, "submit", manager(ARDECHE))
    result = engine.fire(case_id, "validate_locally", governance(ARDECHE))
    assert result.case.state == "regional_review"
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case_id, "validate_regionally", COUNCIL_84)
    assert "revient à les services de l'État" in exc.value.rules[0].message_fr
    engine.fire(case_id, "validate_regionally", STATE_84)

    with_parameters(engine, action_sheet_regional_review=False)
    other = file_sheet(engine, ARDECHE)
    engine.fire(other, "submit", owner(ARDECHE))
    result = engine.fire(other, "validate_locally", governance(ARDECHE))
    assert [e.trigger for e in result.events] == ["validate_locally", "skip_regional_review"]
    assert result.case.state == "validated"


def test_returned_fiches_go_back_to_draft_with_a_reason(engine: Engine) -> None:
    case_id = file_sheet(engine, ARDECHE)
    engine.fire(case_id, "submit", manager(ARDECHE))
    with pytest.raises(InvalidData):
        engine.fire(case_id, "return_locally", governance(ARDECHE))
    engine.fire(case_id, "return_locally", governance(ARDECHE), {"reason": "Chiffrer"})
    engine.fire(case_id, "submit", manager(ARDECHE))
    engine.fire(case_id, "validate_locally", governance(ARDECHE))
    result = engine.fire(case_id, "return_for_rework", STATE_84, {"reason": "Indicateurs"})
    assert result.case.state == "draft"


# --- roles x triggers x scope ------------------------------------------------------------

STEPS = [  # (state reached before, trigger, the actor allowed, payload)
    ("draft", "submit", manager(ARDECHE), {}),
    ("submitted_locally", "validate_locally", governance(ARDECHE), {}),
    ("regional_review", "validate_regionally", STATE_84, {}),
    ("validated", "start", owner(ARDECHE), {}),
    ("in_progress", "report_progress", owner(ARDECHE), {"spent_eur": 10}),
    ("in_progress", "complete", manager(ARDECHE), {}),
]
OUTSIDERS = [
    Actor("project_manager", territory=ALENCON),
    Actor("territory_governance", territory=CAP_EXCELLENCE),
    Actor("project_owner", territory=ALENCON),
    Actor("state_services", region="28"),
    Actor("candidate", email="ti@territoire.example.org"),  # not the owner: no such case
]
WRONG_ROLE = [
    governance(ARDECHE),
    manager(ARDECHE),
    owner(ARDECHE),
    STATE_84,
    COUNCIL_84,
    COMMITTEE,
]


def test_every_trigger_is_refused_to_other_roles_and_other_territories(engine: Engine) -> None:
    case_id = file_sheet(engine, ARDECHE)
    for state, trigger, allowed, payload in STEPS:
        assert engine.get(case_id, AUDITOR).state == state
        for actor in OUTSIDERS:  # outside its scope the case does not exist
            with pytest.raises(NotFound):
                engine.fire(case_id, trigger, actor, payload)
        for actor in WRONG_ROLE:
            if actor == allowed or (
                trigger != "validate_regionally" and actor.role == allowed.role
            ):
                continue
            if trigger in ("submit", "start", "report_progress", "complete") and actor.role in (
                "project_manager",
                "project_owner",
            ):
                continue
            if trigger == "validate_regionally" and actor.role == "regional_council":
                continue
            with pytest.raises(Forbidden):
                engine.fire(case_id, trigger, actor, payload)
        with pytest.raises(Forbidden):
            engine.fire(case_id, trigger, AUDITOR, payload)
        engine.fire(case_id, trigger, allowed, payload)
    assert engine.get(case_id, AUDITOR).state == "completed"


def test_territory_roles_see_and_edit_their_territory_only(engine: Engine) -> None:
    mine = file_sheet(engine, ARDECHE)
    theirs = file_sheet(engine, ALENCON)
    listed, total = engine.list_cases(governance(ARDECHE), workflow="action_sheet")
    assert ([c.id for c in listed], total) == ([mine], 1)
    with pytest.raises(NotFound):
        engine.get(theirs, manager(ARDECHE))
    with pytest.raises(Forbidden):  # a territory role files for its own territory only
        engine.create_case("action_sheet", CAMPAIGN, sheet(ALENCON), manager(ARDECHE))
    with pytest.raises(Forbidden):  # and cannot move a fiche to another territory
        engine.update_data(mine, sheet(ALENCON), manager(ARDECHE))
    with pytest.raises(Forbidden):  # governance validates, it does not write the fiche
        engine.update_data(mine, sheet(ARDECHE), governance(ARDECHE))
    assert {c.id for c in engine.list_cases(Actor("state_services", region="52"))[0]} == {theirs}
    assert parse_actor("project_owner:ti-8401") == owner(ARDECHE)


# --- four years, three territories --------------------------------------------------------


def at(clock: SimulatedClock, text: str) -> datetime:
    clock.set(paris(text))
    return clock.now()


def test_2024_2027_three_territories_one_interregional(
    engine: Engine, clock: SimulatedClock
) -> None:
    """Fiches filed in 2024, validated locally then regionally, updated every year with
    indicator values and spending, completed or abandoned; the audit replays it all."""
    plan = {"starts_on": "2024-03-01", "ends_on": "2027-06-30"}
    ids = {}
    at(clock, "2024-02-01T09:00:00")
    for tid, region in ((ARDECHE, "84"), (ALENCON, "52"), (CAP_EXCELLENCE, "01")):
        ids[tid] = file_sheet(engine, tid, **plan)
        validate_sheet(engine, ids[tid], tid, region)
        engine.fire(ids[tid], "start", owner(tid))
    assert engine.get(ids[ALENCON], AUDITOR).regions == ("28", "52")
    spring_2024 = at(clock, "2024-04-15T12:00:00")
    for year, value in ((2024, 90), (2025, 210), (2026, 330)):
        at(clock, f"{year}-12-15T10:00:00")
        for tid in (ARDECHE, ALENCON):
            progress(engine, ids[tid], tid, value, 100000)
    at(clock, "2025-09-01T10:00:00")
    engine.fire(ids[CAP_EXCELLENCE], "abandon", manager(CAP_EXCELLENCE), {"reason": "Porteur"})
    at(clock, "2027-06-30T17:00:00")
    for tid in (ARDECHE, ALENCON):
        engine.fire(ids[tid], "complete", manager(tid))
    done = engine.get(ids[ALENCON], AUDITOR)
    assert done.state == "completed"
    assert done.facts["spent_eur"] == 300000
    assert done.facts["indicator_values"] == {"Opérateurs formés": 330}
    assert [p["at"][:4] for p in done.facts["progress"]] == ["2024", "2025", "2026"]

    report = verify(engine)
    assert report.ok, report.findings
    states = {s.case.case_id: s.case.state for s in snapshot(engine, spring_2024) if s.case}
    assert states == {ids[t]: "in_progress" for t in ids}
    late_2025 = paris("2025-12-31T23:00:00")
    replayed = {s.case.case_id: s.case for s in snapshot(engine, late_2025) if s.case}
    assert replayed[ids[CAP_EXCELLENCE]].state == "abandoned"
    assert replayed[ids[ARDECHE]].facts["spent_eur"] == 200000
