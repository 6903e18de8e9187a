"""Perimeter amendments of labelled territories (FAQ 2.3), on SQLite and PostgreSQL.

FAQ 2.3: after labelling, a territory may amend its perimeter at the margin with a
favourable opinion from the regional council AND from the State services in the region.
Here the opinions are binding, and every region concerned (the territory's and those of
the groupements added or removed, FAQ 2.5) gives both.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import update

from conftest import AUDITOR, COMMITTEE, SYSTEM, EngineFactory, paris
from territories_helpers import (
    ANNEMASSE,
    ARDECHE,
    ARVE,
    CAP_EXCELLENCE,
    FAUCIGNY,
    PLAINE_DIJONNAISE,
    TARENTAISE,
    TERRITORY_OWNER,
    all_favourable,
    amendment,
    decide,
    decide_favourably,
    file_amendment,
    import_shipped,
    members_on,
    opinion,
    territory_of,
)
from ti_workflow.audit.snapshot import snapshot
from ti_workflow.audit.verify import verify
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.errors import Forbidden, GuardRefused, InvalidData, NotFound, TransitionNotAllowed
from ti_workflow.storage import repository
from ti_workflow.territories.errors import TerritoryRefused


@pytest.fixture
def engine(make_engine: EngineFactory, db_url: str, clock: SimulatedClock) -> Engine:
    clock.set(paris("2024-03-01T10:00:00"))
    e = make_engine(db_url)
    import_shipped(e)
    return e


def codes(exc: pytest.ExceptionInfo[GuardRefused]) -> set[str]:
    return {r.code for r in exc.value.rules}


def test_full_lifecycle_applies_the_change_from_its_effective_date(engine: Engine) -> None:
    case_id = file_amendment(
        engine, amendment(ARDECHE, add=[TARENTAISE], effective_on="2024-06-01")
    )
    assert engine.get(case_id, AUDITOR).regions == ("84",)
    assert opinion(engine, case_id, "regional_council", "84", "favourable") == "regional_review"
    assert opinion(engine, case_id, "state_services", "84", "favourable") == "national_review"
    # FAQ 2.3 line 140: the favourable opinions are necessary, not sufficient.
    assert decide(engine, case_id) == "approved"

    case = engine.get(case_id, AUDITOR)
    assert case.facts["decision"]["decision"] == "approved"
    assert case.facts["decision"]["effective_on"] == "2024-06-01"
    assert [e.trigger for e in engine.history(case_id, AUDITOR)][-1] == "approve"
    # FAQ 2.3: the perimeter changes from the effective date, not before.
    assert TARENTAISE not in members_on(engine, ARDECHE, "2024-05-31")
    assert len(members_on(engine, ARDECHE, "2024-05-31")) == 8
    assert TARENTAISE in members_on(engine, ARDECHE, "2024-06-01")
    assert len(members_on(engine, ARDECHE, "2024-06-01")) == 9
    assert territory_of(engine, TARENTAISE, "2024-05-31") is None
    assert territory_of(engine, TARENTAISE, "2024-06-01") == ARDECHE


def test_one_unfavourable_opinion_refuses_and_changes_nothing(engine: Engine) -> None:
    case_id = file_amendment(
        engine, amendment(ARDECHE, add=[TARENTAISE], effective_on="2024-06-01")
    )
    assert opinion(engine, case_id, "regional_council", "84", "favourable") == "regional_review"
    assert opinion(engine, case_id, "state_services", "84", "unfavourable") == "refused"
    case = engine.get(case_id, AUDITOR)
    assert case.facts["decision"] == {
        "decision": "refused",
        "at": case.facts["decision"]["at"],
        "by": "system",
        "effective_on": None,
        "unfavourable": ["84/state_services"],
        "reasons": {"84/state_services": "vu"},
    }
    assert territory_of(engine, TARENTAISE, "2024-06-01") is None


def test_the_first_unfavourable_opinion_ends_the_review(engine: Engine) -> None:
    case_id = file_amendment(
        engine, amendment(ARDECHE, add=[TARENTAISE], effective_on="2024-06-01")
    )
    assert opinion(engine, case_id, "regional_council", "84", "unfavourable") == "refused"
    with pytest.raises(TransitionNotAllowed):
        opinion(engine, case_id, "state_services", "84", "favourable")


def test_a_groupement_from_another_region_needs_that_regions_opinions(engine: Engine) -> None:
    data = amendment(ARDECHE, add=[PLAINE_DIJONNAISE], effective_on="2024-06-01")
    case_id = file_amendment(engine, data)
    assert engine.get(case_id, AUDITOR).regions == ("27", "84")
    assert opinion(engine, case_id, "regional_council", "84", "favourable") == "regional_review"
    assert opinion(engine, case_id, "state_services", "84", "favourable") == "regional_review"
    assert opinion(engine, case_id, "regional_council", "27", "favourable") == "regional_review"
    # Bourgogne-Franche-Comté's reviewers see the case; a region not concerned does not.
    with pytest.raises(NotFound):
        engine.get(case_id, Actor("state_services", region="11"))
    assert opinion(engine, case_id, "state_services", "27", "favourable") == "national_review"
    assert decide(engine, case_id) == "approved"
    assert territory_of(engine, PLAINE_DIJONNAISE, "2024-06-01") == ARDECHE


def test_an_unfavourable_opinion_of_the_added_region_refuses(engine: Engine) -> None:
    case_id = file_amendment(
        engine, amendment(ARDECHE, add=[PLAINE_DIJONNAISE], effective_on="2024-06-01")
    )
    opinion(engine, case_id, "regional_council", "84", "favourable")
    opinion(engine, case_id, "state_services", "84", "favourable")
    assert opinion(engine, case_id, "regional_council", "27", "unfavourable") == "refused"


def test_a_groupement_in_another_territory_cannot_be_added(engine: Engine) -> None:
    case = engine.create_case(
        "perimeter_amendment", "ti-2023-2027", amendment(ARDECHE, add=[FAUCIGNY]), TERRITORY_OWNER
    )
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case.id, "submit", TERRITORY_OWNER)
    assert codes(exc) == {"amendment_double_membership"}
    assert "ti-8422" in str(exc.value) and "Vallée de l'Arve" in str(exc.value)
    assert engine.get(case.id, AUDITOR).state == "draft"


def test_a_groupement_may_move_once_it_has_left_its_territory(engine: Engine) -> None:
    # Vallée de l'Arve lets CC Faucigny-Glières go from 1 June (half its members: a change
    # beyond the margin the Délégation approves with a reason)...
    leave = file_amendment(
        engine,
        amendment(
            ARVE,
            remove=[FAUCIGNY],
            effective_on="2024-06-01",
            single_member_justification="Vallée industrielle de taille critique",  # FAQ 2.2
        ),
    )
    assert decide_favourably(engine, leave) == "approved"
    assert territory_of(engine, FAUCIGNY, "2024-05-31") == ARVE
    assert territory_of(engine, FAUCIGNY, "2024-06-01") is None
    # ... so Ardèche Drôme Nord cannot take it on 1 May, but can on 1 June.
    early = engine.create_case(
        "perimeter_amendment",
        "ti-2023-2027",
        amendment(ARDECHE, add=[FAUCIGNY], effective_on="2024-05-01"),
        TERRITORY_OWNER,
    )
    with pytest.raises(GuardRefused) as exc:
        engine.fire(early.id, "submit", TERRITORY_OWNER)
    assert codes(exc) == {"amendment_double_membership"}
    join = file_amendment(engine, amendment(ARDECHE, add=[FAUCIGNY], effective_on="2024-06-01"))
    assert decide_favourably(engine, join) == "approved"
    assert territory_of(engine, FAUCIGNY, "2024-05-31") == ARVE
    assert territory_of(engine, FAUCIGNY, "2024-06-01") == ARDECHE


def test_a_major_change_is_flagged_and_never_passes_by_acknowledgement(engine: Engine) -> None:
    """FAQ 2.3 line 140 ("à la marge"; the threshold is a campaign parameter, not the FAQ's):
    a change beyond it is flagged for the Délégation, approved only with its reason."""
    # 1 groupement added to 2: 50 % of the members, above the campaign's 34 %.
    case_id = file_amendment(engine, amendment(ARVE, add=[ANNEMASSE], effective_on="2024-06-01"))
    scope = engine.get(case_id, AUDITOR).facts["scope"]
    assert scope["major_change"] is True and scope["share_changed"] == 0.5
    assert all_favourable(engine, case_id) == "national_review"
    options = {o.trigger: o for o in engine.available_triggers(case_id, COMMITTEE)}
    assert "acknowledge_major_change" not in options
    assert not options["approve"].allowed
    assert [r.code for r in options["approve"].failed_rules] == ["major_change_needs_reason"]
    with pytest.raises(GuardRefused) as exc:
        decide(engine, case_id)
    assert codes(exc) == {"major_change_needs_reason"}
    assert (
        "50\u00a0%" in exc.value.rules[0].message_fr
        and "34\u00a0%" in exc.value.rules[0].message_fr
    )
    assert decide(engine, case_id, "bassin d'emploi commun") == "approved"
    approval = engine.history(case_id, AUDITOR)[-1]
    assert approval.role == "national_committee" and approval.payload["reason"]
    assert territory_of(engine, ANNEMASSE, "2024-06-01") == ARVE


def test_the_delegation_may_refuse_a_change_as_not_marginal(engine: Engine) -> None:
    """FAQ 2.3 line 140: amendments only "à la marge"; refusing needs a reason."""
    case_id = file_amendment(engine, amendment(ARVE, add=[ANNEMASSE], effective_on="2024-06-01"))
    assert all_favourable(engine, case_id) == "national_review"
    with pytest.raises(InvalidData) as bad:
        engine.fire(case_id, "reject", COMMITTEE, {"not_marginal": True})
    assert [e.location for e in bad.value.errors] == ["reason"]
    result = engine.fire(
        case_id, "reject", COMMITTEE, {"not_marginal": True, "reason": "modification trop large"}
    )
    assert result.case.state == "refused"
    decision = result.case.facts["decision"]
    assert decision["not_marginal"] is True and decision["reason"] == "modification trop large"
    assert territory_of(engine, ANNEMASSE, "2024-06-01") is None


def test_removing_the_last_member_is_refused(engine: Engine) -> None:
    case = engine.create_case(
        "perimeter_amendment",
        "ti-2023-2027",
        amendment(CAP_EXCELLENCE, remove=["200018653"]),
        TERRITORY_OWNER,
    )
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case.id, "submit", TERRITORY_OWNER)
    assert codes(exc) == {"amendment_removes_last_member"}


def test_every_problem_is_listed_at_once(engine: Engine) -> None:
    data = amendment(
        ARDECHE,
        add=["123456789", "100000009", TARENTAISE, TARENTAISE],
        remove=[ANNEMASSE],
        justification="",
        effective_on="2023-11-14",
    )
    case = engine.create_case("perimeter_amendment", "ti-2023-2027", data, TERRITORY_OWNER)
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case.id, "submit", TERRITORY_OWNER)
    assert codes(exc) == {
        "amendment_not_after_last_change",
        "amendment_unjustified",
        "amendment_invalid_siren",
        "amendment_unknown_groupement",
        "amendment_duplicate",
        "amendment_remove_not_member",
    }


def test_an_unknown_territory_is_refused(engine: Engine) -> None:
    case = engine.create_case(
        "perimeter_amendment", "ti-2023-2027", amendment("ti-9999", add=[TARENTAISE]),
        TERRITORY_OWNER,
    )  # fmt: skip
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case.id, "submit", TERRITORY_OWNER)
    assert "territory_unknown" in codes(exc)


def test_the_candidate_may_withdraw_during_the_review(engine: Engine) -> None:
    case_id = file_amendment(engine, amendment(ARDECHE, add=[TARENTAISE]))
    assert engine.fire(case_id, "withdraw", TERRITORY_OWNER).case.state == "withdrawn"
    assert territory_of(engine, TARENTAISE, "2030-01-01") is None


def test_a_change_without_date_takes_effect_on_the_day_of_approval(
    engine: Engine, clock: SimulatedClock
) -> None:
    case_id = file_amendment(engine, amendment(ARDECHE, add=[TARENTAISE]))
    clock.set(paris("2024-04-15T16:00:00"))
    assert decide_favourably(engine, case_id) == "approved"
    assert territory_of(engine, TARENTAISE, "2024-04-14") is None
    assert territory_of(engine, TARENTAISE, "2024-04-15") == ARDECHE


def test_no_approval_without_every_favourable_opinion(engine: Engine) -> None:
    """FAQ 2.3 line 140: "devra impérativement recevoir un avis favorable du conseil régional
    et des services de l'Etat": the Délégation cannot approve before, even past the due date."""
    case_id = file_amendment(engine, amendment(ARDECHE, add=[PLAINE_DIJONNAISE]))
    with pytest.raises(TransitionNotAllowed):
        decide(engine, case_id)  # still in regional review
    with pytest.raises(Forbidden, match="system only"):
        engine.fire(case_id, "complete_regional_review", COMMITTEE)
    opinion(engine, case_id, "regional_council", "84", "favourable")
    opinion(engine, case_id, "state_services", "84", "favourable")
    opinion(engine, case_id, "regional_council", "27", "favourable")
    engine.fire(case_id, "close_regional_review", COMMITTEE)  # the due date passed
    with pytest.raises(GuardRefused) as exc:
        decide(engine, case_id)
    assert codes(exc) == {"favourable_opinions_missing"}
    assert "27/state_services" in exc.value.rules[0].message_en
    # a late opinion is still taken; then the Délégation decides
    assert opinion(engine, case_id, "state_services", "27", "favourable") == "national_review"
    assert decide(engine, case_id) == "approved"
    assert engine.get(case_id, SYSTEM).facts["decision"]["by"] == "national_committee"


def test_two_territories_racing_for_one_groupement_never_both_get_it(engine: Engine) -> None:
    """FAQ 2.1: no groupement in two territories, even when both approvals land at once."""
    cases = [
        file_amendment(engine, amendment(tid, add=[TARENTAISE], effective_on="2024-06-01"))
        for tid in (ARDECHE, ARVE)
    ]
    for case_id in cases:
        assert all_favourable(engine, case_id) == "national_review"
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def last_opinion(case_id: int) -> None:
        barrier.wait()
        try:
            reason = {"reason": "bassin commun"}  # 1 added to 2 members: beyond the margin
            outcomes.append(engine.fire(case_id, "approve", COMMITTEE, reason).case.state)
        except (TerritoryRefused, GuardRefused) as exc:
            outcomes.append(exc.kind)

    threads = [threading.Thread(target=last_opinion, args=(c,)) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes)[0] == "approved" and outcomes.count("approved") == 1
    assert sorted(outcomes)[1] in ("guard_refused", "territory_refused")
    assert territory_of(engine, TARENTAISE, "2024-06-01") in (ARDECHE, ARVE)


def test_a_malformed_amendment_file_names_each_field(engine: Engine) -> None:
    data = {
        "territory_id": ARDECHE,
        "add": ["2000001"],
        "add_communes": ["7404"],
        "effective_on": "2024-13-01",
        "colour": "bleu",
    }
    with pytest.raises(InvalidData) as exc:
        engine.create_case("perimeter_amendment", "ti-2023-2027", data, TERRITORY_OWNER)
    problems = {e.location: e.message for e in exc.value.errors}
    assert set(problems) == {"add[0]", "add_communes[0]", "effective_on", "colour"}
    assert "9 digits" in problems["add[0]"] and "INSEE" in problems["add_communes[0]"]
    assert "allowed: territory_id" in problems["colour"]
    assert engine.list_cases(AUDITOR, workflow="perimeter_amendment")[1] == 0


def test_a_metropole_joins_only_with_a_justification(engine: Engine) -> None:
    """FAQ 2.4: métropoles take part by exception, with a justification."""
    lyon = "200046977"  # Métropole de Lyon, in no territory
    case = engine.create_case(
        "perimeter_amendment", "ti-2023-2027", amendment(ARDECHE, add=[lyon]), TERRITORY_OWNER
    )
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case.id, "submit", TERRITORY_OWNER)
    assert codes(exc) == {"amendment_metropole_unjustified"}
    justified = amendment(ARDECHE, add=[lyon], metropole_justification="Vallée de la chimie")
    engine.update_data(case.id, justified, TERRITORY_OWNER)
    assert engine.fire(case.id, "submit", TERRITORY_OWNER).case.state == "submitted"


def test_amendments_verify_and_replay_on_the_facts_their_rules_read(engine: Engine) -> None:
    """FAQ 2.3 rules read the territory from the database (its members, the share changed).
    Each step records those facts in its chained event, so an audit re-evaluates the rules
    on what they saw then, whatever the territory became since."""
    marginal = file_amendment(
        engine, amendment(ARDECHE, add=[TARENTAISE], effective_on="2024-06-01")
    )
    assert decide_favourably(engine, marginal) == "approved"
    major = file_amendment(engine, amendment(ARVE, add=[ANNEMASSE], effective_on="2024-06-01"))
    assert decide_favourably(engine, major) == "approved"
    # The territories changed since: the rules must not be re-read against today's state.
    submit = next(e for e in engine.history(marginal, AUDITOR) if e.trigger == "submit")
    assert len(submit.annotations["context"]["territory"]["members"]) == 8
    report = verify(engine)
    assert report.ok, report.findings
    at = engine.clock.now()
    replayed = {s.case.case_id: s.case for s in snapshot(engine, at) if s.case}
    for case_id in (marginal, major):
        live = engine.get(case_id, AUDITOR)
        got = replayed[case_id]
        assert (got.state, got.facts, got.regions) == (live.state, live.facts, live.regions)
    # Rewriting what a rule read is caught like any other edit.
    events_t = repository.events
    where = (events_t.c.case_id == marginal) & (events_t.c.seq == submit.seq)
    notes = dict(submit.annotations)
    notes["context"] = {**notes["context"], "territory": {"found": False, "id": ARDECHE}}
    with engine.db.begin() as conn:
        conn.execute(update(events_t).where(where).values(annotations=notes))
    findings = verify(engine).findings
    assert findings and {(f.case_id, f.seq) for f in findings} >= {(marginal, submit.seq)}
