"""The submit guards: one test per rule of the FAQ (23 June 2023), each citing its section."""

from __future__ import annotations

from typing import Any

import pytest
from freezegun import freeze_time

from conftest import ARA_1, ARA_2, AUDITOR, CANDIDATE, candidacy, paris
from ti_workflow.clock import SimulatedClock, SystemClock
from ti_workflow.engine import Engine
from ti_workflow.errors import GuardRefused

METROPOLE_LYON = "200046977"  # Métropole de Lyon, nature MET69
METROPOLE_GRENOBLE = "200040715"  # Grenoble-Alpes-Métropole, nature METRO
REGION_52 = "200000438"  # CC du Pays de Pontchâteau St-Gildas-des-Bois, Pays de la Loire
GRAND_PARIS_EPT = "200057867"  # Plaine Commune (EPT)


def refused_codes(engine: Engine, data: dict[str, Any]) -> set[str]:
    case = engine.create_case("candidacy", "ti-2023-2027", data, CANDIDATE)
    with pytest.raises(GuardRefused) as refused:
        engine.fire(case.id, "submit", CANDIDATE)
    after = engine.get(case.id, AUDITOR)
    assert after.state == "draft" and after.version == 1, "a refusal writes nothing"
    return {r.code for r in refused.value.rules}


def submits(engine: Engine, data: dict[str, Any]) -> str:
    case = engine.create_case("candidacy", "ti-2023-2027", data, CANDIDATE)
    return engine.fire(case.id, "submit", CANDIDATE).case.state


# --- FAQ 1.2: the window, 23 June - 22 September 2023 inclusive, Europe/Paris -----------


@pytest.mark.parametrize(
    ("instant", "accepted"),
    [
        ("2023-06-22T23:59:59.999999", False),
        ("2023-06-23T00:00:00", True),
        ("2023-09-22T23:59:59", True),
        ("2023-09-22T23:59:59.999999", True),
        ("2023-09-23T00:00:00", False),
        ("2023-09-23T00:00:01", False),
    ],
)
def test_faq_1_2_window_boundaries_in_paris_time(
    engine: Engine, clock: SimulatedClock, instant: str, accepted: bool
) -> None:
    clock.set(paris("2023-06-01T12:00:00"))
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    clock.set(paris(instant))
    if accepted:
        assert engine.fire(case.id, "submit", CANDIDATE).case.state == "submitted"
    else:
        with pytest.raises(GuardRefused) as refused:
            engine.fire(case.id, "submit", CANDIDATE)
        codes = {r.code for r in refused.value.rules}
        assert codes <= {"window_not_open", "window_closed"} and codes
        assert all(r.faq == "1.2" for r in refused.value.rules)


def test_faq_1_2_closing_second_is_summer_time(engine: Engine) -> None:
    """22/09/2023 23:59:59 Paris is 21:59:59 UTC (UTC+2): 22:00:00 UTC is already late."""
    campaign = engine.catalog.campaign("ti-2023-2027")
    assert campaign.closes_at.isoformat() == "2023-09-22T21:59:59.999999+00:00"
    assert campaign.opens_at.isoformat() == "2023-06-22T22:00:00+00:00"


def test_faq_1_2_system_clock_refuses_after_the_close(make_engine: Any, sqlite_url: str) -> None:
    """The CLI's real clock path: frozen wall clock, no simulated clock."""
    engine = make_engine(sqlite_url)
    engine.clock = SystemClock()
    with freeze_time("2023-09-22T21:59:59+00:00"):
        case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    with freeze_time("2023-09-22T22:00:00+00:00"), pytest.raises(GuardRefused) as refused:
        engine.fire(case.id, "submit", CANDIDATE)
    assert [r.code for r in refused.value.rules] == ["window_closed"]
    assert "22/09/2023 inclus" in refused.value.rules[0].message_fr


# --- FAQ 2.1 / 2.2: a perimeter groups intercommunalities; one only with a justification ---


def test_faq_2_1_empty_perimeter_refused(engine: Engine) -> None:
    data = candidacy(perimeter={"members": []})
    assert "perimeter_empty" in refused_codes(engine, data)


def test_faq_2_2_single_epci_needs_justification(engine: Engine) -> None:
    assert "perimeter_single_member_unjustified" in refused_codes(
        engine, candidacy(perimeter={"members": [ARA_1]})
    )
    justified = candidacy(
        perimeter={
            "members": [ARA_1],
            "single_member_justification": "Taille critique: 28 000 hab.",
        }
    )
    assert submits(engine, justified) == "submitted"


def test_faq_2_1_siren_checksum_and_reference(engine: Engine) -> None:
    bad_checksum = "200000173"
    valid_but_not_epci = "130005481"  # a valid SIREN (ANCT), not an EPCI
    codes = refused_codes(
        engine, candidacy(perimeter={"members": [ARA_1, bad_checksum, valid_but_not_epci]})
    )
    assert {"perimeter_invalid_siren", "perimeter_unknown_groupement"} <= codes


def test_faq_2_1_duplicates_refused(engine: Engine) -> None:
    assert "perimeter_duplicate" in refused_codes(
        engine, candidacy(perimeter={"members": [ARA_1, ARA_1]})
    )


def test_faq_2_1_grand_paris_ept_accepted(engine: Engine) -> None:
    data = candidacy(
        perimeter={"members": [GRAND_PARIS_EPT, "200058790"]}
    )  # Plaine Commune + Paris Terres d'Envol
    case = engine.create_case("candidacy", "ti-2023-2027", data, CANDIDATE)
    assert case.regions == ("11",)
    assert engine.fire(case.id, "submit", CANDIDATE).case.state == "submitted"


# --- FAQ 2.4: a métropole only by exception, with a justification --------------------------


@pytest.mark.parametrize("metropole", [METROPOLE_LYON, METROPOLE_GRENOBLE])
def test_faq_2_4_metropole_needs_justification(engine: Engine, metropole: str) -> None:
    codes = refused_codes(engine, candidacy(perimeter={"members": [ARA_1, metropole]}))
    assert codes == {"perimeter_metropole_unjustified"}
    justified = candidacy(
        perimeter={"members": [ARA_1, metropole], "metropole_justification": "Rayonnement"}
    )
    assert submits(engine, justified) == "submitted"


# --- FAQ 2.5: several departments and regions are allowed; every region is concerned -------


def test_faq_2_5_interregional_perimeter_derives_every_region(engine: Engine) -> None:
    case = engine.create_case(
        "candidacy", "ti-2023-2027", candidacy(perimeter={"members": [ARA_1, REGION_52]}), CANDIDATE
    )
    assert case.regions == ("52", "84")
    fired = engine.fire(case.id, "submit", CANDIDATE)
    assert fired.case.state == "submitted"
    assert fired.events[0].annotations["regions"] == ["52", "84"]


# --- FAQ 4.1 / 4.4: binôme élu-industriel; a polynôme with a justification -----------------


def test_faq_4_1_governance_needs_elected_and_industrial(engine: Engine) -> None:
    """FAQ 4.1 line 198: a binôme for the territory (the default governance mode); the
    letter of the missing member cannot be matched either (4.5)."""
    only_elected = candidacy(governance={"members": [{"name": "Mme Élue", "role": "elected"}]})
    assert refused_codes(engine, only_elected) == {
        "governance_no_industrial",
        "letter_of_intent_no_industrial",
    }
    nobody = candidacy(governance={"members": []})
    assert refused_codes(engine, nobody) == {
        "governance_no_elected",
        "governance_no_industrial",
        "letter_of_intent_no_elected",
        "letter_of_intent_no_industrial",
    }


def test_faq_4_4_polynome_needs_justification(engine: Engine) -> None:
    three = [
        {"name": "Mme Élue", "role": "elected"},
        {"name": "M. Industriel", "role": "industrial"},
        {"name": "C", "role": "industrial"},
    ]
    assert refused_codes(engine, candidacy(governance={"members": three})) == {
        "governance_extended_unjustified"
    }
    ok = candidacy(governance={"members": three, "extended_governance_justification": "34 EPCI"})
    assert submits(engine, ok) == "submitted"


# --- FAQ 4.5: letters of intent ----------------------------------------------------------


def test_faq_4_5_letter_of_intent_required(engine: Engine) -> None:
    assert refused_codes(engine, candidacy(letters_of_intent=[])) == {"letter_of_intent_missing"}


# --- FAQ 1.5 / 3.1: an action plan, each action under one of the four priorities -----------


def test_faq_3_1_action_plan_required(engine: Engine) -> None:
    assert refused_codes(engine, candidacy(action_plan=[])) == {"action_plan_empty"}


def test_faq_1_5_each_action_titled_under_a_priority(engine: Engine) -> None:
    plan = [
        {"title": "", "priority": None, "summary": "Une action."},
        {"title": "Foncier", "priority": "land", "summary": "Deux friches."},
    ]
    assert refused_codes(engine, candidacy(action_plan=plan)) == {
        "action_untitled",
        "action_without_priority",
    }


def test_every_failed_rule_is_listed_at_once(engine: Engine, clock: SimulatedClock) -> None:
    """A refusal lists every rule that fails, with its FAQ section, not just the first."""
    clock.set(paris("2023-06-01T09:00:00"))
    data = candidacy(
        perimeter={"members": [METROPOLE_LYON]},
        governance={"members": []},
        letters_of_intent=[],
        action_plan=[],
    )
    case = engine.create_case("candidacy", "ti-2023-2027", data, CANDIDATE)
    with pytest.raises(GuardRefused) as refused:
        engine.fire(case.id, "submit", CANDIDATE)
    sections = {(r.code, r.faq) for r in refused.value.rules}
    assert sections == {
        ("window_not_open", "1.2"),
        ("perimeter_single_member_unjustified", "2.2"),
        ("perimeter_metropole_unjustified", "2.4"),
        ("governance_no_elected", "4.1"),
        ("governance_no_industrial", "4.1"),
        ("letter_of_intent_missing", "4.5"),
        ("action_plan_empty", "3.1"),
    }
    message = str(refused.value)
    assert "FAQ 2.4" in message and "Métropole de Lyon" in message


def test_unchanged_members_keep_state_after_data_update(engine: Engine) -> None:
    """The regions follow the perimeter while the candidate edits the draft."""
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    updated = engine.update_data(
        case.id, candidacy(perimeter={"members": [ARA_2, REGION_52]}), CANDIDATE
    )
    assert updated.regions == ("52", "84") and updated.version == 2 and updated.state == "draft"
