"""Co-financing of a project manager post (FAQ 5.2-5.4, issue 15), SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from conftest import AUDITOR, EngineFactory, paris
from postlabel_helpers import ALENCON, ARDECHE, CAMPAIGN, governance, manager
from sched_support import Driver, Sink, open_with, settings_for, smtp_sink
from territories_helpers import import_shipped
from test_action_sheet import with_parameters
from ti_workflow.audit.verify import verify
from ti_workflow.clock import PARIS, SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.errors import Forbidden, GuardRefused, NotFound

STATE_84 = Actor("state_services", region="84")
CONTACT = "chef-de-projet@ardeche-drome.example.org"
TABLE = {"1": {"rate": 0.8, "max_eur": 45000}, "2": {"rate": 0.5, "max_eur": 30000}}
ARDECHE_MEMBERS = [
    "200016905", "200040491", "200041366", "200041465",
    "200072015", "200073096", "240700716", "200071413",
]  # fmt: skip


@pytest.fixture
def engine(make_engine: EngineFactory, db_url: str, clock: SimulatedClock) -> Engine:
    clock.set(paris("2024-01-15T10:00:00"))
    e = make_engine(db_url)
    import_shipped(e)
    with_parameters(
        e,
        project_manager_subsidy=TABLE,
        territory_fragility_class={ARDECHE: "1"},
        default_fragility_class="2",
    )
    return e


def request(tid: str, **overrides: Any) -> dict[str, Any]:
    data = {
        "territory_id": tid,
        "employer_kind": "intercommunality",
        "employer_name": "Communauté d'agglomération porteuse",
        "profile": "Développeur économique, cinq ans d'expérience industrielle.",
        "annual_cost": 70000,
        "other_programme": "none",
        "contact_email": CONTACT,
    }
    return {**data, **overrides}


def file_request(engine: Engine, tid: str, **overrides: Any) -> int:
    case = engine.create_case("project_manager", CAMPAIGN, request(tid, **overrides), manager(tid))
    engine.fire(case.id, "submit", manager(tid))
    return case.id


def all_opinions(engine: Engine, case_id: int, tid: str, members: list[str]) -> str:
    state = ""
    for siren in members:
        result = engine.fire(
            case_id,
            "give_member_opinion",
            governance(tid),
            {"siren": siren, "opinion": "favourable"},
        )
        state = result.case.state
    return state


def test_every_member_intercommunality_gives_its_opinion(engine: Engine) -> None:
    """FAQ 5.3 (line 246): the opinion of the intercommunalities concerned is sought."""
    case_id = file_request(engine, ARDECHE)
    assert all_opinions(engine, case_id, ARDECHE, ARDECHE_MEMBERS[:-1]) == "member_opinions"
    with pytest.raises(GuardRefused) as exc:  # not a member of Ardèche Drôme Nord
        engine.fire(
            case_id,
            "give_member_opinion",
            governance(ARDECHE),
            {"siren": "200000172", "opinion": "favourable"},
        )
    assert "CC Faucigny-Glières n'est pas une intercommunalité membre" in str(exc.value)
    assert all_opinions(engine, case_id, ARDECHE, ARDECHE_MEMBERS[-1:]) == "instruction"


def test_the_subsidy_follows_the_class_of_the_territory(engine: Engine) -> None:
    """FAQ 5.4 (line 250): maximum and rate modulated by the territory's fragility."""
    case_id = file_request(engine, ARDECHE)
    all_opinions(engine, case_id, ARDECHE, ARDECHE_MEMBERS)
    granted = engine.fire(case_id, "grant", STATE_84).case
    assert granted.facts["subsidy"] == {
        "fragility_class": "1",
        "rate": 0.8,
        "max_eur": 45000.0,
        "annual_eur": 45000.0,  # 80 % of 70,000 capped at 45,000
    }


def test_a_class_missing_from_the_table_is_refused(engine: Engine) -> None:
    with_parameters(engine, default_fragility_class="3")
    case_id = file_request(engine, ALENCON)
    members = engine.get(case_id, AUDITOR)
    assert members.regions == ("28", "52")
    ctx_members = engine.history(case_id, AUDITOR)[-1].annotations["context"]["territory"]
    all_opinions(engine, case_id, ALENCON, ctx_members["members"])
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case_id, "grant", Actor("state_services", region="52"))
    assert "classe de fragilité « 3 »" in exc.value.rules[0].message_fr


def test_a_second_request_while_a_post_is_funded_is_refused(engine: Engine) -> None:
    """FAQ 5.2 (line 238): one project manager in each territory."""
    first = file_request(engine, ARDECHE)
    all_opinions(engine, first, ARDECHE, ARDECHE_MEMBERS)
    engine.fire(first, "grant", STATE_84)
    second = engine.create_case("project_manager", CAMPAIGN, request(ARDECHE), manager(ARDECHE))
    with pytest.raises(GuardRefused) as exc:
        engine.fire(second.id, "submit", manager(ARDECHE))
    assert {r.code for r in exc.value.rules} == {"post_already_funded"}
    assert f"dossier n\u00a0°\u00a0{first}" in exc.value.rules[0].message_fr


def test_an_overlap_with_another_programme_is_flagged_not_refused(engine: Engine) -> None:
    """FAQ 5.2 (line 238), 5.4 (line 250): synergies with other ANCT project managers."""
    case = engine.create_case(
        "project_manager", CAMPAIGN, request(ARDECHE, other_programme="crte"), manager(ARDECHE)
    )
    result = engine.fire(case.id, "submit", manager(ARDECHE))
    assert result.case.state == "member_opinions"
    [warning] = result.warnings
    assert warning["code"] == "programme_overlap"
    assert "Contrat de relance et de transition écologique" in warning["message_fr"]


def test_roles_and_scope(engine: Engine) -> None:
    case_id = file_request(engine, ARDECHE)
    with pytest.raises(NotFound):
        engine.fire(case_id, "withdraw", manager(ALENCON), {"reason": "x"})
    with pytest.raises(Forbidden):  # members' opinions are recorded by the governance
        engine.fire(
            case_id,
            "give_member_opinion",
            manager(ARDECHE),
            {"siren": ARDECHE_MEMBERS[0], "opinion": "favourable"},
        )
    all_opinions(engine, case_id, ARDECHE, ARDECHE_MEMBERS)
    for actor in (manager(ARDECHE), governance(ARDECHE), Actor("regional_council", region="84")):
        with pytest.raises(Forbidden):
            engine.fire(case_id, "grant", actor)
    with pytest.raises(NotFound):
        engine.fire(case_id, "grant", Actor("state_services", region="28"))


def test_agreement_post_and_yearly_justifications_then_end(
    engine: Engine, clock: SimulatedClock
) -> None:
    case_id = file_request(engine, ARDECHE)
    all_opinions(engine, case_id, ARDECHE, ARDECHE_MEMBERS)
    engine.fire(case_id, "grant", STATE_84)
    clock.set(paris("2024-03-01T10:00:00"))
    engine.fire(case_id, "sign_agreement", STATE_84, {"signed_on": "2024-03-01"})
    clock.set(paris("2024-05-02T10:00:00"))
    engine.fire(
        case_id,
        "fill_post",
        manager(ARDECHE),
        {"recruited_on": "2024-05-02", "person": "Camille Martin"},
    )
    for year in (2024, 2025, 2026):
        clock.set(paris(f"{year + 1}-01-20T10:00:00"))
        engine.fire(
            case_id, "justify_spending", manager(ARDECHE), {"year": year, "spent_eur": 68000}
        )
    clock.set(paris("2027-12-31T12:00:00"))
    done = engine.fire(case_id, "end", STATE_84, {"reason": "Fin du programme"}).case
    assert done.state == "ended"
    assert [j["year"] for j in done.facts["justifications"]] == [2024, 2025, 2026]
    report = verify(engine)
    assert report.ok, report.findings


# --- yearly justification: timers, reminders, escalation ------------------------------------


@pytest.fixture
def sink() -> Iterator[Sink]:
    with smtp_sink() as s:
        yield s


def test_yearly_justification_reminds_then_escalates(sqlite_url: str, sink: Sink) -> None:
    """The campaign's ``justification_reminder_after`` (P365D) after the post is filled or
    the last justification, a reminder to the territory; ``justification_escalation_after``
    (P395D), the State services of the region and the Délégation are told."""
    clock = SimulatedClock(paris("2024-01-15T10:00:00"))
    settings = settings_for(sqlite_url, sink.port)
    engine = open_with(settings, clock)
    world = Driver(engine, clock, settings, [])
    import_shipped(engine)
    case_id = file_request(engine, ARDECHE)
    all_opinions(engine, case_id, ARDECHE, ARDECHE_MEMBERS)
    engine.fire(case_id, "grant", STATE_84)
    engine.fire(case_id, "sign_agreement", STATE_84, {"signed_on": "2024-01-15"})
    clock.set(paris("2024-05-02T10:00:00"))
    filled = {"recruited_on": "2024-05-02", "person": "Camille Martin"}
    engine.fire(case_id, "fill_post", manager(ARDECHE), filled)

    def justify() -> None:
        spent = {"year": 2024, "spent_eur": 45000}
        engine.fire(case_id, "justify_spending", manager(ARDECHE), spent)

    world.run_until(paris("2026-07-01T12:00:00"), actions=[(paris("2025-05-20T10:00:00"), justify)])
    reminders = sink.of("justification_reminder")
    assert [m.rcpt_tos for m in reminders] == [[CONTACT], [CONTACT]]
    [escalated] = sink.of("justification_escalation")
    assert sorted(escalated.rcpt_tos) == [
        "comite-pilotage@territoires-industrie.example.gouv.fr",
        "dreets-ara-ti@dreets.example.gouv.fr",  # FAQ 1.3: copied on what the SGAR receives
        "sgar-ti@auvergne-rhone-alpes.example.gouv.fr",
        "territoires-industrie@auvergnerhonealpes.example.fr",
    ]
    assert "La justification annuelle des" in reminders[0].part("plain")
    assert f"(dossier n° {case_id})" in " ".join(reminders[0].subject.split())
    steps = [(e.trigger, paris_day(e.at)) for e in engine.history(case_id, AUDITOR)]
    assert steps[-4:] == [
        ("remind_justification", "2025-05-02"),
        ("justify_spending", "2025-05-20"),
        ("remind_justification", "2026-05-20"),
        ("escalate_justification", "2026-06-19"),
    ]
    assert verify(engine).ok
    engine.db.dispose()


def paris_day(instant: datetime) -> str:
    return instant.astimezone(PARIS).date().isoformat()
