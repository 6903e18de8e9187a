"""Who may do what, from which state: every role restriction of the candidacy workflow."""

from __future__ import annotations

import pytest

from conftest import (
    AUDITOR,
    CANDIDATE,
    COMMITTEE,
    SYSTEM,
    candidacy,
    drive_to_regional_review,
    give_all_opinions,
    paris,
)
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.errors import (
    Forbidden,
    GuardRefused,
    InvalidData,
    NotFound,
    TransitionNotAllowed,
    UnknownTrigger,
)

RC84 = Actor("regional_council", region="84")
SS84 = Actor("state_services", region="84")
RC52 = Actor("regional_council", region="52")
STRANGER = Actor("candidate", email="someone@else.example.org")

# trigger -> (a state it is possible from, the roles allowed)
MATRIX = {
    "submit": ("draft", {"candidate"}),
    "return_for_completion": ("submitted", {"national_committee"}),
    "withdraw": ("draft", {"candidate"}),
    "start_regional_review": ("submitted", {"system", "national_committee"}),
    "give_opinion": ("regional_review", {"regional_council", "state_services"}),
    "close_regional_review": ("regional_review", {"system", "national_committee"}),
    "label": ("national_review", {"national_committee"}),
    "reject": ("national_review", {"national_committee"}),
    "lapse": ("draft", {"system"}),
}
ACTORS = [CANDIDATE, RC84, SS84, COMMITTEE, SYSTEM]
PAYLOADS = {
    "give_opinion": {"opinion": "favourable", "reasons": "ok"},
    "return_for_completion": {"reason": "incomplet"},
    "reject": {"reason": "non retenu"},
}


def case_in(engine: Engine, state: str) -> int:
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    if state == "draft":
        return case.id
    engine.fire(case.id, "submit", CANDIDATE)
    if state == "submitted":
        return case.id
    engine.fire(case.id, "start_regional_review", SYSTEM)
    if state == "regional_review":
        return case.id
    give_all_opinions(engine, case.id)
    return case.id


@pytest.mark.parametrize("trigger", sorted(MATRIX))
@pytest.mark.parametrize("actor", ACTORS, ids=lambda a: a.role)
def test_role_matrix(engine: Engine, trigger: str, actor: Actor) -> None:
    state, allowed = MATRIX[trigger]
    case_id = case_in(engine, state)
    before = engine.get(case_id, AUDITOR).version
    if actor.role in allowed:
        engine.fire(case_id, trigger, actor, PAYLOADS.get(trigger, {}))
        assert engine.get(case_id, AUDITOR).version == before + 1
    else:
        with pytest.raises(Forbidden) as refused:
            engine.fire(case_id, trigger, actor, PAYLOADS.get(trigger, {}))
        assert "only" in refused.value.reason
        assert engine.get(case_id, AUDITOR).version == before


def test_auditor_reads_everything_and_changes_nothing(engine: Engine) -> None:
    case_id = case_in(engine, "draft")
    assert engine.get(case_id, AUDITOR).id == case_id
    with pytest.raises(Forbidden, match="auditors read and never write"):
        engine.fire(case_id, "withdraw", AUDITOR)
    with pytest.raises(Forbidden):
        engine.update_data(case_id, candidacy(), AUDITOR)
    with pytest.raises(Forbidden):
        engine.create_case("candidacy", "ti-2023-2027", candidacy(), AUDITOR)


def test_candidate_acts_only_on_its_own_case(engine: Engine) -> None:
    case_id = case_in(engine, "draft")
    with pytest.raises(NotFound):
        engine.fire(case_id, "submit", STRANGER)
    with pytest.raises(NotFound):
        engine.update_data(case_id, candidacy(), STRANGER)
    with pytest.raises(NotFound):
        engine.get(case_id, STRANGER)


def test_regional_bodies_only_for_a_region_the_case_concerns(engine: Engine) -> None:
    case_id = case_in(engine, "regional_review")
    with pytest.raises(NotFound):
        engine.fire(case_id, "give_opinion", RC52, PAYLOADS["give_opinion"])
    assert engine.list_cases(RC52)[1] == 0
    assert engine.list_cases(RC84)[1] == 1


def test_opinion_replaced_until_review_closes_each_version_kept(engine: Engine) -> None:
    """FAQ 1.3: an opinion per body; a body may revise its own while the review is open."""
    case_id = case_in(engine, "regional_review")
    engine.fire(
        case_id, "give_opinion", RC84, {"opinion": "unfavourable", "reasons": "premier avis"}
    )
    result = engine.fire(
        case_id, "give_opinion", RC84, {"opinion": "favourable", "reasons": "revu"}
    )
    assert result.events[0].annotations == {
        "region": "84",
        "body": "regional_council",
        "replaces": "unfavourable",
    }
    case = engine.get(case_id, AUDITOR)
    assert case.state == "regional_review"
    assert case.facts["opinions"]["84"]["regional_council"]["opinion"] == "favourable"
    opinions = [e.payload for e in engine.history(case_id, AUDITOR) if e.trigger == "give_opinion"]
    assert [o["opinion"] for o in opinions] == ["unfavourable", "favourable"]
    engine.fire(case_id, "give_opinion", SS84, {"opinion": "favourable", "reasons": "ok"})
    assert engine.get(case_id, AUDITOR).state == "national_review"
    with pytest.raises(TransitionNotAllowed):
        engine.fire(
            case_id, "give_opinion", RC84, {"opinion": "unfavourable", "reasons": "trop tard"}
        )


def test_close_regional_review_records_missing_opinions(engine: Engine) -> None:
    case_id = case_in(engine, "regional_review")
    engine.fire(case_id, "give_opinion", RC84, PAYLOADS["give_opinion"])
    result = engine.fire(case_id, "close_regional_review", SYSTEM)
    assert result.events[0].annotations == {"missing_opinions": ["84/state_services"]}
    assert result.case.state == "national_review"


def test_complete_regional_review_is_automatic_only(engine: Engine) -> None:
    case_id = case_in(engine, "regional_review")
    with pytest.raises(Forbidden):
        engine.fire(case_id, "complete_regional_review", COMMITTEE)
    with pytest.raises(GuardRefused) as refused:
        engine.fire(case_id, "complete_regional_review", SYSTEM)
    rule = refused.value.rules[0]
    assert "84/regional_council" in rule.message_en
    # French text names the bodies, never a code (issue 11, wording)
    assert rule.message_fr == (
        "avis d'opportunité manquants\u00a0: Auvergne-Rhône-Alpes (conseil régional, "
        "services de l'État en région)"
    )


def test_interregional_review_needs_both_bodies_of_every_region(engine: Engine) -> None:
    data = candidacy(perimeter={"members": ["200000172", "200000438"]})
    case_id = drive_to_regional_review(engine, data)
    for actor in (RC84, SS84, Actor("regional_council", region="52")):
        engine.fire(case_id, "give_opinion", actor, PAYLOADS["give_opinion"])
        assert engine.get(case_id, AUDITOR).state == "regional_review"
    engine.fire(
        case_id, "give_opinion", Actor("state_services", region="52"), PAYLOADS["give_opinion"]
    )
    assert engine.get(case_id, AUDITOR).state == "national_review"


def test_reason_required_where_declared(engine: Engine) -> None:
    case_id = case_in(engine, "submitted")
    with pytest.raises(InvalidData) as invalid:
        engine.fire(case_id, "return_for_completion", COMMITTEE)
    assert str(invalid.value.errors[0]) == "reason: a reason is required"
    result = engine.fire(
        case_id, "return_for_completion", COMMITTEE, {"reason": "Pièces manquantes"}
    )
    assert result.case.state == "draft" and result.events[0].payload == {
        "reason": "Pièces manquantes"
    }


def test_payload_checked_field_by_field(engine: Engine) -> None:
    case_id = case_in(engine, "regional_review")
    with pytest.raises(InvalidData) as invalid:
        engine.fire(case_id, "give_opinion", RC84, {"opinion": "maybe", "color": "blue"})
    text = str(invalid.value)
    assert "opinion: 'maybe' is not allowed (allowed: favourable, unfavourable)" in text
    assert "color: unknown field" in text
    assert "reasons: required field is missing" in text


def test_unknown_trigger_and_wrong_state(engine: Engine) -> None:
    case_id = case_in(engine, "draft")
    with pytest.raises(UnknownTrigger, match="known triggers"):
        engine.fire(case_id, "approve", COMMITTEE)
    with pytest.raises(TransitionNotAllowed, match="only from: national_review"):
        engine.fire(case_id, "label", COMMITTEE)


def test_withdraw_from_every_open_state(engine: Engine) -> None:
    for state in ("draft", "submitted", "regional_review", "national_review"):
        case_id = case_in(engine, state)
        assert engine.fire(case_id, "withdraw", CANDIDATE).case.state == "withdrawn"


def test_update_only_in_draft_and_malformed_data_names_the_field(engine: Engine) -> None:
    case_id = case_in(engine, "draft")
    with pytest.raises(InvalidData) as invalid:
        engine.update_data(
            case_id, candidacy(perimeter={"members": ["12345"]}, colour=1), CANDIDATE
        )
    text = str(invalid.value)
    assert "perimeter.members[0]: a SIREN is exactly 9 digits (got '12345')" in text
    assert "colour: unknown field" in text
    bad_priority = candidacy(action_plan=[{"title": "x", "priority": "tourism"}])
    with pytest.raises(InvalidData, match=r"action_plan\[0\]\.priority"):
        engine.update_data(case_id, bad_priority, CANDIDATE)
    engine.fire(case_id, "submit", CANDIDATE)
    with pytest.raises(TransitionNotAllowed):
        engine.update_data(case_id, candidacy(), CANDIDATE)


def test_available_triggers_explain_what_would_fail(engine: Engine, clock: SimulatedClock) -> None:
    case_id = case_in(engine, "draft")
    options = {o.trigger: o for o in engine.available_triggers(case_id, CANDIDATE)}
    assert options["submit"].allowed and options["withdraw"].allowed
    assert not options["lapse"].allowed and "system" in (options["lapse"].refusal or "")
    clock.set(paris("2023-10-01T10:00:00"))
    options = {o.trigger: o for o in engine.available_triggers(case_id, CANDIDATE)}
    assert not options["submit"].allowed
    assert [r.code for r in options["submit"].failed_rules] == ["window_closed"]


@pytest.mark.parametrize(
    ("at", "allowed"),
    [
        ("2023-05-02T09:00:00", True),  # before the opening: a prospective candidate registers
        ("2023-09-22T23:59:59.999999", True),  # the last instant of the window
        ("2023-09-23T00:00:00", False),  # the closing timer has lapsed every draft already
        ("2024-03-01T12:00:00", False),
    ],
)
def test_no_new_candidacy_once_filing_has_closed(
    engine: Engine, clock: SimulatedClock, at: str, allowed: bool
) -> None:
    """FAQ 1.2: candidacies are filed inside the window; a draft opened after it closes
    could never be filed, so it is refused, and nothing is stored."""
    clock.set(paris(at))
    if allowed:
        assert engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE).state == (
            "draft"
        )
        return
    with pytest.raises(GuardRefused) as refused:
        engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    assert [(r.code, r.faq) for r in refused.value.rules] == [("window_closed", "1.2")]
    assert str(refused.value).startswith("a new 'candidacy' case is refused")
    assert engine.list_cases(AUDITOR) == ([], 0)
