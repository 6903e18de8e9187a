"""Candidacy rules read line by line against the FAQ of 23 June 2023 (issue 11, items 1-4, 8).

Each test names the FAQ section and the line(s) of
``reference/faq-territoires-industrie-2023-06-23.txt`` it enforces.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import (
    ARA_1,
    ARA_2,
    AUDITOR,
    CANDIDATE,
    COMMITTEE,
    SYSTEM,
    EngineFactory,
    candidacy,
    give_all_opinions,
    paris,
)
from sched_support import Driver, Sink, open_with, settings_for, smtp_sink
from test_api_fixtures import Api, serve_api
from ti_workflow.audit.verify import verify
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.errors import GuardRefused, InvalidData, Rule
from ti_workflow.scheduling.timers import STATUSES, list_timers
from ti_workflow.storage.database import read
from ti_workflow.territories.errors import TerritoryRefused
from ti_workflow.territories.hooks import territory_id_for_case

NBSP = "\u00a0"
REGION_52 = "200000438"  # CC du Pays de Pontchâteau St-Gildas-des-Bois (Pays de la Loire)
ELUE = {"name": "Mme Élue", "role": "elected", "organisation": "CC Faucigny-Glières"}
INDUSTRIEL = {"name": "M. Industriel", "role": "industrial", "organisation": "Décolletage SA"}
PER_EPCI = {
    "mode": "per_intercommunality",
    "members": [
        {**ELUE, "represents": ARA_1},
        {**INDUSTRIEL, "represents": ARA_1},
        {"name": "M. Maire", "role": "elected", "organisation": "CC Cluses", "represents": ARA_2},
        {"name": "Mme Usine", "role": "industrial", "organisation": "Arve SA", "represents": ARA_2},
    ],
}
CODE_NAME = re.compile(r"\b[a-z]+_[a-z_]+\b|\b\d{2,3}/[a-z]")


def file(engine: Engine, data: dict[str, Any]) -> int:
    return engine.create_case("candidacy", "ti-2023-2027", data, CANDIDATE).id


def refused(engine: Engine, data: dict[str, Any]) -> list[Rule]:
    case_id = file(engine, data)
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case_id, "submit", CANDIDATE)
    assert engine.get(case_id, AUDITOR).version == 1, "a refusal writes nothing"
    return list(exc.value.rules)


def codes(rules: list[Rule]) -> set[str]:
    return {r.code for r in rules}


def assert_french(rules: list[Rule]) -> None:
    """No code identifier in French text; a non-breaking space before ':' (issue 11)."""
    for r in rules:
        assert not CODE_NAME.search(r.message_fr), r.message_fr
        assert " :" not in r.message_fr and "n° " not in r.message_fr, r.message_fr


def to_national_review(engine: Engine, data: dict[str, Any], opinions: bool = True) -> int:
    case_id = file(engine, data)
    engine.fire(case_id, "submit", CANDIDATE)
    engine.fire(case_id, "start_regional_review", SYSTEM)
    if opinions:
        give_all_opinions(engine, case_id)
    else:
        engine.fire(case_id, "close_regional_review", SYSTEM)
    assert engine.get(case_id, AUDITOR).state == "national_review"
    return case_id


# --- item 1: FAQ 4.1 (lines 198-204), the binôme does not block; FAQ 4.4 (line 220) -----------


def test_faq_4_1_line_200_one_binome_per_intercommunality_is_accepted(engine: Engine) -> None:
    """FAQ 4.1 line 200: "un binôme peut être identifié dans un premier temps au niveau de
    chaque intercommunalité"; the mode is recorded for the console and the audit."""
    case_id = file(engine, candidacy(governance=PER_EPCI))
    result = engine.fire(case_id, "submit", CANDIDATE)
    assert result.case.state == "submitted"
    assert result.case.facts["governance_mode"] == "per_intercommunality"
    assert result.events[0].annotations["governance_mode"] == "per_intercommunality"


def test_faq_4_1_line_200_each_binome_names_a_member_intercommunality(engine: Engine) -> None:
    """Every member says which EPCI of the perimeter it represents; every EPCI is covered."""
    governance = {
        "mode": "per_intercommunality",
        "members": [
            {**ELUE, "represents": ARA_1},
            {**INDUSTRIEL, "represents": ARA_1},
            {"name": "M. Maire", "role": "elected", "represents": ARA_2},
            {"name": "Mme Ailleurs", "role": "industrial", "represents": REGION_52},
            {"name": "M. Sans", "role": "industrial"},
        ],
    }
    rules = refused(engine, candidacy(governance=governance))
    assert codes(rules) == {
        "governance_intercommunality_without_binome",
        "governance_represents_outside_perimeter",
        "governance_member_without_intercommunality",
    }
    assert all(r.faq == "4.1" for r in rules)
    lacking = next(r for r in rules if r.code == "governance_intercommunality_without_binome")
    assert "Cluses" in lacking.message_fr and "il manque un industriel" in lacking.message_fr
    outside = next(r for r in rules if r.code == "governance_represents_outside_perimeter")
    assert REGION_52 in outside.message_fr and "membre n°\u00a04" in outside.message_fr
    assert_french(rules)


def test_faq_4_1_line_200_no_binome_yet_with_how_it_will_be_found(engine: Engine) -> None:
    """FAQ 4.1 line 200: "ne doit pas devenir un point bloquant": no binôme yet is accepted
    with a justification of how it will be found; without it, refused."""
    letters = [
        {"signatory": "Maire de Cluses", "organisation": "Ville", "signatory_role": "elected"},
        {"signatory": "Président", "organisation": "UIMM", "signatory_role": "industrial"},
    ]
    pending: dict[str, Any] = {"mode": "pending", "members": []}
    rules = refused(engine, candidacy(governance=pending, letters_of_intent=letters))
    assert codes(rules) == {"governance_binome_search_plan_missing"}
    assert_french(rules)
    planned = {**pending, "binome_search_plan": "Appel aux industriels du bassin en octobre."}
    case_id = file(engine, candidacy(governance=planned, letters_of_intent=letters))
    result = engine.fire(case_id, "submit", CANDIDATE)
    assert result.case.facts["governance_mode"] == "pending"


@pytest.mark.parametrize(
    ("governance", "extra"),
    [
        ({"members": [ELUE, INDUSTRIEL, {"name": "C", "role": "elected"}]}, {}),
        (
            {
                "mode": "pending",
                "binome_search_plan": "En cours",
                "members": [
                    ELUE,
                    {"name": "B", "role": "elected"},
                    {"name": "C", "role": "elected"},
                ],
            },
            {
                "letters_of_intent": [
                    {"signatory": "Mme Élue"},
                    {"signatory": "Président", "signatory_role": "industrial"},
                ]
            },
        ),
        (
            {
                **PER_EPCI,
                "members": [
                    *PER_EPCI["members"],
                    {"name": "C", "role": "elected", "represents": ARA_2},
                ],
            },
            {},
        ),
    ],
    ids=["territory", "pending", "per_intercommunality"],
)
def test_faq_4_4_line_220_a_polynome_still_needs_its_justification(
    engine: Engine, governance: dict[str, Any], extra: dict[str, Any]
) -> None:
    data = candidacy(governance=governance, **extra)
    rules = refused(engine, data)
    assert "governance_extended_unjustified" in codes(rules)
    assert {r.faq for r in rules if r.code == "governance_extended_unjustified"} == {"4.4"}
    justified = {**governance, "extended_governance_justification": "Territoire de 12 EPCI"}
    case_id = file(engine, candidacy(governance=justified, **extra))
    assert engine.fire(case_id, "submit", CANDIDATE).case.state == "submitted"


# --- item 2: FAQ 4.5 (lines 224-226), letters of the binôme and of other actors --------------


def test_faq_4_5_line_224_letters_from_an_elected_and_an_industrial_member(
    engine: Engine,
) -> None:
    """A letter matches a governance member by signatory or organisation, regardless of case
    and accents; the others (chambers, federations) are accepted and listed."""
    letters = [
        {"signatory": "La présidente", "organisation": "cc faucigny-glieres"},
        {"signatory": "M. INDUSTRIEL", "organisation": ""},
        {"signatory": "Président", "organisation": "CCI Haute-Savoie"},
    ]
    case_id = file(engine, candidacy(letters_of_intent=letters))
    result = engine.fire(case_id, "submit", CANDIDATE)
    assert result.case.facts["letters_of_intent"] == {
        "elected": ["La présidente (cc faucigny-glieres)"],
        "industrial": ["M. INDUSTRIEL"],
        "other": ["Président (CCI Haute-Savoie)"],
    }


def test_faq_4_5_line_224_one_letter_from_anyone_is_not_enough(engine: Engine) -> None:
    chambers = [
        {"signatory": "Président", "organisation": "CCI Haute-Savoie"},
        {"signatory": "Présidente", "organisation": "Chambre de métiers"},
    ]
    rules = refused(engine, candidacy(letters_of_intent=chambers))
    assert codes(rules) == {"letter_of_intent_no_elected", "letter_of_intent_no_industrial"}
    assert all(r.faq == "4.5" for r in rules)
    assert_french(rules)
    only_elected = refused(engine, candidacy(letters_of_intent=[{"signatory": "mme elue"}]))
    assert codes(only_elected) == {"letter_of_intent_no_industrial"}
    assert codes(refused(engine, candidacy(letters_of_intent=[]))) == {"letter_of_intent_missing"}


def test_faq_4_5_line_224_no_binome_yet_letters_declare_their_signatory(engine: Engine) -> None:
    """Governance ``pending``: no member to match, so a letter counts for the role its
    signatory declares; undeclared letters are other supports."""
    pending = {"mode": "pending", "members": [], "binome_search_plan": "Appel à candidatures"}
    undeclared = [{"signatory": "Maire"}, {"signatory": "Chef d'entreprise"}]
    rules = refused(engine, candidacy(governance=pending, letters_of_intent=undeclared))
    assert codes(rules) == {"letter_of_intent_no_elected", "letter_of_intent_no_industrial"}
    assert "qualité du signataire" in rules[0].message_fr


# --- item 3: FAQ 3.1 (lines 156-165), the action plan --------------------------------------


def action(title: str, **more: Any) -> dict[str, Any]:
    return {"title": title, "priority": "skills", "summary": f"{title} : détails", **more}


def test_faq_3_1_line_156_several_actions_each_described(engine: Engine) -> None:
    """Line 156: "plusieurs actions"; line 165: titles and "quelques éléments descriptifs"."""
    one = refused(engine, candidacy(action_plan=[action("Campus")]))
    assert codes(one) == {"action_plan_too_short"} and one[0].faq == "3.1"
    bare = [action("Campus"), {"title": "Foncier", "priority": "land", "summary": "  "}]
    rules = refused(engine, candidacy(action_plan=bare))
    assert codes(rules) == {"action_without_summary"}
    assert "action n°\u00a02" in rules[0].message_fr
    assert_french(rules)


def test_faq_1_5_priorities_are_named_in_french(engine: Engine) -> None:
    plan = [action("Campus"), {"title": "X", "summary": "Y"}]
    [rule] = refused(engine, candidacy(action_plan=plan))
    assert rule.code == "action_without_priority"
    assert "transition écologique et énergétique" in rule.message_fr
    assert "ecological_transition" in rule.message_en
    assert_french([rule])


def test_faq_3_1_line_160_beyond_four_years_without_phases_warns(engine: Engine) -> None:
    """Line 160: "en visant une réalisation en quatre ans maximum, en subdivisant le projet en
    phases pour les cas les plus complexes": advice, so a warning, never a refusal."""
    plan = [
        action("Campus", owner="CC Faucigny-Glières", duration_months=60),
        action("Friches", owner="EPF 74", duration_months=72, phases=["Études", "Travaux"]),
        action("Hydrogène", duration_months=48),
    ]
    case_id = file(engine, candidacy(action_plan=plan))
    [option] = [o for o in engine.available_triggers(case_id, CANDIDATE) if o.trigger == "submit"]
    assert option.allowed and [w.code for w in option.warnings] == ["action_long_without_phases"]
    result = engine.fire(case_id, "submit", CANDIDATE)
    assert result.case.state == "submitted"
    [warning] = result.warnings
    assert (warning["code"], warning["faq"], warning["severity"]) == (
        "action_long_without_phases",
        "3.1",
        "warning",
    )
    assert warning["message_fr"].startswith("l'action n°\u00a01 est prévue sur 60\u00a0mois")
    assert result.events[0].annotations["warnings"] == [warning]
    assert verify(engine).ok, "the audit replays a step that carried a warning"


@pytest.fixture
def api(make_engine: EngineFactory, sqlite_url: str) -> Iterator[Api]:
    yield from serve_api(make_engine, sqlite_url)


def test_faq_3_1_line_160_the_api_returns_the_warning(api: Api) -> None:
    cand = api.as_("candidate")
    plan = [action("Campus", duration_months=60), action("Friches")]
    created = cand.post(
        "/v1/cases", json={"campaign": "ti-2023-2027", "data": candidacy(action_plan=plan)}
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    options = {o["trigger"]: o for o in cand.get(f"/v1/cases/{cid}/triggers").json()}
    assert options["submit"]["allowed"]
    assert [w["code"] for w in options["submit"]["warnings"]] == ["action_long_without_phases"]
    fired = cand.post(f"/v1/cases/{cid}/triggers/submit")
    assert fired.status_code == 200, fired.text
    body = fired.json()
    assert body["case"]["state"] == "submitted"
    assert [w["code"] for w in body["warnings"]] == ["action_long_without_phases"]


# --- item 4: FAQ 1.3 (line 91), a decision without any regional opinion -----------------------


def test_faq_1_3_line_91_labelling_without_any_opinion_needs_a_reason(engine: Engine) -> None:
    """The selection is made "sur la base d'un avis d'opportunité": the review may close with
    opinions missing, but labelling a case that received none is motivated."""
    case_id = to_national_review(engine, candidacy(), opinions=False)
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case_id, "label", COMMITTEE)
    [rule] = exc.value.rules
    assert (rule.code, rule.faq) == ("label_without_any_opinion_unjustified", "1.3")
    assert_french([rule])
    assert engine.get(case_id, AUDITOR).state == "national_review"
    result = engine.fire(case_id, "label", COMMITTEE, {"reason": "Dossier prioritaire (FAQ 1.4)"})
    event = result.events[0]
    assert event.payload["reason"] == "Dossier prioritaire (FAQ 1.4)"
    assert event.annotations["missing_opinions"] == ["84/regional_council", "84/state_services"]
    assert event.annotations["without_any_opinion"] is True
    decision = result.case.facts["decision"]
    assert decision["missing_opinions"] == ["84/regional_council", "84/state_services"]
    assert decision["without_any_opinion"] is True


def test_faq_1_3_line_91_one_opinion_is_enough_to_label_without_reason(engine: Engine) -> None:
    case_id = file(engine, candidacy())
    engine.fire(case_id, "submit", CANDIDATE)
    engine.fire(case_id, "start_regional_review", SYSTEM)
    engine.fire(
        case_id,
        "give_opinion",
        Actor("regional_council", region="84"),
        {"opinion": "favourable", "reasons": "SRDEII"},
    )
    engine.fire(case_id, "close_regional_review", SYSTEM)
    event = engine.fire(case_id, "label", COMMITTEE).events[0]
    assert event.annotations["missing_opinions"] == ["84/state_services"]
    assert event.annotations["without_any_opinion"] is False


def test_faq_1_3_a_decision_with_every_opinion_records_none_missing(engine: Engine) -> None:
    case_id = to_national_review(engine, candidacy())
    event = engine.fire(case_id, "label", COMMITTEE).events[0]
    assert event.annotations == {"decision": "labelled"}


# --- item 8: one territory per groupement, a programme rule (not FAQ 2.1) ---------------------


def test_programme_rule_groupement_in_another_open_candidacy_warns_at_submit(
    engine: Engine,
) -> None:
    """Not in the FAQ (2.1 does not say it; the published list holds no such case): a
    warning at ``submit``, citing the programme rule and no FAQ section."""
    first = file(engine, candidacy(territory_name="Arve amont"))
    engine.fire(first, "submit", CANDIDATE)
    second = file(
        engine, candidacy(territory_name="Arve aval", perimeter={"members": [ARA_1, REGION_52]})
    )
    result = engine.fire(second, "submit", CANDIDATE)
    assert result.case.state == "submitted"
    [warning] = result.warnings
    assert warning["code"] == "groupement_held_elsewhere" and warning["faq"] is None
    assert "règle du programme" in warning["message_fr"] and "FAQ" not in warning["message_fr"]
    assert f"«{NBSP}Arve amont{NBSP}»" in warning["message_fr"]
    assert f"dossier n°{NBSP}{first}, déposée" in warning["message_fr"]
    assert ARA_1 in warning["message_fr"] and ARA_2 not in warning["message_fr"]
    assert (
        result.events[0].annotations["context"]["groupements_elsewhere"][ARA_1][0]["case_id"]
        == first
    )
    assert verify(engine).ok


def test_programme_rule_withdrawn_candidacies_do_not_count(engine: Engine) -> None:
    first = file(engine, candidacy())
    engine.fire(first, "submit", CANDIDATE)
    engine.fire(first, "withdraw", CANDIDATE)
    second = file(engine, candidacy())
    assert engine.fire(second, "submit", CANDIDATE).warnings == []


def test_programme_rule_labelled_territory_warns_then_label_is_refused(engine: Engine) -> None:
    """The refusal when labelling is kept (the FAQ does not contradict it), cited as the
    programme's rule."""
    first = to_national_review(engine, candidacy(territory_name="Arve amont"))
    engine.fire(first, "label", COMMITTEE)
    second = file(engine, candidacy(territory_name="Arve aval"))
    result = engine.fire(second, "submit", CANDIDATE)
    assert [w["code"] for w in result.warnings] == ["groupement_held_elsewhere"] * 2
    assert "Territoire d'industrie labellisé" in result.warnings[0]["message_fr"]
    engine.fire(second, "start_regional_review", SYSTEM)
    give_all_opinions(engine, second)
    with pytest.raises(TerritoryRefused) as exc:
        engine.fire(second, "label", COMMITTEE)
    assert {(r.code, r.faq) for r in exc.value.rules} == {("double_membership", None)}
    assert all("règle du programme" in r.message_fr for r in exc.value.rules)
    assert engine.get(second, AUDITOR).state == "national_review"


# --- item 1 (follow-up): FAQ 4.1 line 200, consolidate one binôme after labelling -------------

NATIONAL = "comite-pilotage@territoires-industrie.example.gouv.fr"
PER_EPCI_OWNER = Actor("candidate", email="binomes@arve.example.org")
TERRITORY_OWNER = Actor("candidate", email="binome@bretagne.example.org")
BRETAGNE = ["200027027", "200038990"]
PER_EPCI_FILE = candidacy(contact_email=PER_EPCI_OWNER.email, governance=PER_EPCI)


@pytest.fixture
def sink() -> Iterator[Sink]:
    with smtp_sink() as s:
        yield s


@pytest.fixture
def world(sqlite_url: str, sink: Sink) -> Iterator[Driver]:
    clock = SimulatedClock(paris("2023-07-03T10:00:00"))
    settings = settings_for(sqlite_url, sink.port)
    engine = open_with(settings, clock)
    yield Driver(engine, clock, settings, [])
    engine.db.dispose()


def labelled(driver: Driver, owner: Actor, data: dict[str, Any]) -> int:
    engine = driver.engine
    case_id = engine.create_case("candidacy", "ti-2023-2027", data, owner).id
    engine.fire(case_id, "submit", owner)
    engine.fire(case_id, "start_regional_review", SYSTEM)
    give_all_opinions(engine, case_id)
    engine.fire(case_id, "label", COMMITTEE)
    return case_id


def timer_outcomes(driver: Driver, case_id: int) -> dict[str, str]:
    with read(driver.engine.db) as conn:
        rows = list_timers(conn, case_id=case_id, statuses=STATUSES)
    return {t["name"]: t["status"] for t in rows}


def test_faq_4_1_line_200_follow_up_reminds_then_tells_the_delegation(
    world: Driver, sink: Sink
) -> None:
    """Labelled with one binôme per intercommunality: a reminder to the territory after the
    campaign's ``binome_reminder_after`` (P90D), then the Délégation after
    ``binome_escalation_after`` (P180D), both recorded on the case; a territory labelled
    with its binôme gets neither."""
    per_epci = labelled(
        world, PER_EPCI_OWNER, candidacy(contact_email=PER_EPCI_OWNER.email, governance=PER_EPCI)
    )
    binome = labelled(
        world,
        TERRITORY_OWNER,
        candidacy(
            contact_email=TERRITORY_OWNER.email,
            territory_name="Bretagne sud",
            perimeter={"members": BRETAGNE},
        ),
    )
    world.run_until(paris("2023-11-01T12:00:00"))  # labelled 3 July 2023: P90D is 1 October
    assert [m.rcpt_tos for m in sink.of("binome_reminder")] == [[PER_EPCI_OWNER.email]]
    assert sink.of("binome_escalation") == []
    world.run_until(paris("2024-06-01T12:00:00"))
    [escalated] = sink.of("binome_escalation")
    assert escalated.rcpt_tos == [NATIONAL]
    reminder = sink.of("binome_reminder")[0]
    assert "modification de la gouvernance" in reminder.part("plain")
    assert f"«{NBSP}Vallée de l'Arve{NBSP}»" in reminder.part("plain")
    assert "Vallée de l'Arve" in reminder.subject
    steps = [e.trigger for e in world.engine.history(per_epci, AUDITOR)]
    assert steps[-2:] == ["remind_binome", "escalate_binome"]
    assert world.engine.get(per_epci, AUDITOR).state == "labelled"
    assert timer_outcomes(world, binome) == {
        "binome_reminder": "skipped",
        "binome_escalation": "skipped",
    }
    assert [e.trigger for e in world.engine.history(binome, AUDITOR)][-1] == "label"
    assert verify(world.engine).ok


def test_faq_4_1_line_200_follow_up_stops_once_an_amendment_gives_one_binome(
    world: Driver, sink: Sink
) -> None:
    engine = world.engine
    case_id = labelled(
        world, PER_EPCI_OWNER, candidacy(contact_email=PER_EPCI_OWNER.email, governance=PER_EPCI)
    )
    world.clock.set(paris("2023-11-20T10:00:00"))
    change = {
        "territory_id": territory_id_for_case(case_id),
        "contact_email": PER_EPCI_OWNER.email,
        "justification": "Binôme du territoire désigné en comité de pilotage (FAQ 4.1)",
        "remove_members": ["M. Maire", "Mme Usine"],
        "add_members": [
            {"name": "Mme Présidente", "role": "elected", "organisation": "CC Cluses"},
            {"name": "M. Directeur", "role": "industrial", "organisation": "Arve SA"},
        ],
    }
    amendment = engine.create_case("governance_amendment", "ti-2023-2027", change, PER_EPCI_OWNER)
    engine.fire(amendment.id, "submit", PER_EPCI_OWNER)
    engine.fire(amendment.id, "start_regional_review", SYSTEM)
    give_all_opinions(engine, amendment.id)
    assert engine.get(amendment.id, AUDITOR).state == "approved"
    world.run_until(paris("2024-06-01T12:00:00"))
    assert sink.of("binome_reminder") == [] and sink.of("binome_escalation") == []
    assert timer_outcomes(world, case_id) == {
        "binome_reminder": "skipped",
        "binome_escalation": "skipped",
    }


def test_every_candidacy_refusal_reads_as_french(engine: Engine, clock: SimulatedClock) -> None:
    """Issue 11 (wording): French refusals name priorities, roles, bodies and fields in
    French, with French typography; the English message keeps the codes."""
    clock.set(paris("2023-06-01T09:00:00"))  # before the window: FAQ 1.2 too
    metropole_lyon, unknown, bad_checksum = "200046977", "130005481", "200000173"
    files = [
        candidacy(
            perimeter={"members": [metropole_lyon]},
            governance={"members": [{"name": "", "role": "elected"}]},
            letters_of_intent=[{"signatory": "Président", "organisation": "CCI"}],
            action_plan=[{"title": "", "summary": ""}, {"title": "X", "priority": None}],
        ),
        candidacy(
            perimeter={"members": [ARA_1, ARA_1, unknown, bad_checksum]},
            governance={**PER_EPCI, "members": [{"name": "X", "role": "elected"}]},
            letters_of_intent=[],
            action_plan=[action("Seule")],
        ),
        candidacy(governance={"mode": "pending", "members": [ELUE, ELUE, ELUE]}),
    ]
    seen: set[str] = set()
    for data in files:
        rules = refused(engine, data)
        assert_french(rules)
        seen |= codes(rules)
    assert len(seen) >= 19, sorted(seen)
    clock.set(paris("2023-07-03T10:00:00"))
    case_id = file(engine, candidacy())
    engine.fire(case_id, "submit", CANDIDATE)
    engine.fire(case_id, "start_regional_review", SYSTEM)
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case_id, "complete_regional_review", SYSTEM)
    assert_french(list(exc.value.rules))


def test_faq_4_1_a_represented_intercommunality_is_a_siren(engine: Engine) -> None:
    bad = {"mode": "per_intercommunality", "members": [{**ELUE, "represents": "20000017"}]}
    with pytest.raises(InvalidData) as exc:
        file(engine, candidacy(governance=bad))
    [error] = exc.value.errors
    assert error.location == "governance.members[0].represents"
    assert "a SIREN is exactly 9 digits" in error.message
