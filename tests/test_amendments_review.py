"""Who files an amendment, the 2.2 check, the opinions' due date (issue 11, items 5 and 6).

FAQ 2.3 (line 140): "Il restera possible d'amender à la marge les périmètres et la
gouvernance [...] le Territoire d'industrie devra impérativement recevoir un avis favorable
du conseil régional et des services de l'Etat en région." The territory files: only an
account attached to it (its contact, or a member of its governance with an e-mail).
FAQ 2.2 (line 136): a single intercommunality only with a justification of its critical size.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import AUDITOR, COMMITTEE, EngineFactory, paris
from sched_support import Driver, free_port, settings_for, smtp_sink
from territories_helpers import (
    ARDECHE,
    ARVE,
    CAP_EXCELLENCE,
    FAUCIGNY,
    TARENTAISE,
    TERRITORY_OWNER,
    amendment,
    decide_favourably,
    file_amendment,
    import_shipped,
    opinion,
)
from test_api_fixtures import Api, serve_api
from ti_workflow.audit.verify import verify
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.errors import CreateRefused, GuardRefused, InvalidDefinition
from ti_workflow.scheduling.install import campaign_timer_errors
from ti_workflow.settings import Settings
from ti_workflow.territories import writes


@pytest.fixture
def engine(make_engine: EngineFactory, db_url: str, clock: SimulatedClock) -> Engine:
    clock.set(paris("2024-03-01T10:00:00"))
    e = make_engine(db_url)
    import_shipped(e)
    return e


def codes(exc: pytest.ExceptionInfo[GuardRefused]) -> set[str]:
    return {r.code for r in exc.value.rules}


# --- who files (FAQ 2.3, line 140) -----------------------------------------------------


def test_a_governance_member_with_an_email_files_and_nobody_else(engine: Engine) -> None:
    """FAQ 2.3 line 140: the territory amends its perimeter; its governance members with an
    e-mail are attached to it, other accounts are not."""
    member = Actor("candidate", email="mme.elue@arve.example.org")
    stranger = Actor("candidate", email="inconnu@example.org")
    governance = amendment(
        ARVE,
        add_members=[
            {"name": "Mme Élue", "role": "elected", "email": "Mme.Elue@arve.example.org"},
            {"name": "M. Industriel", "role": "industrial"},
        ],
    )
    assert decide_favourably(engine, file_amendment(engine, governance, "governance_amendment"))
    with pytest.raises(CreateRefused) as exc:
        engine.create_case("perimeter_amendment", "ti-2023-2027", amendment(ARVE), stranger)
    assert codes(exc) == {"filer_not_attached"}
    rule = exc.value.rules[0]
    assert "inconnu@example.org n'est pas rattaché au territoire ti-8422" in rule.message_fr
    assert "is not attached to territory ti-8422" in rule.message_en and rule.faq == "2.3"
    data = amendment(ARVE, new_name="Arve industrielle", effective_on="2024-04-01")
    case_id = file_amendment(engine, data, owner=member)
    assert engine.get(case_id, AUDITOR).state == "regional_review"
    # the accounts the rule read are in the chained events: the audit re-reads them
    submit = engine.history(case_id, AUDITOR)[1]
    assert submit.annotations["context"]["territory"]["filers"]["governance"] == [
        "mme.elue@arve.example.org"
    ]
    report = verify(engine)
    assert report.ok, [str(f) for f in report.findings]


def test_an_imported_territory_without_contact_cannot_file_until_one_is_set(
    make_engine: EngineFactory, db_url: str, clock: SimulatedClock
) -> None:
    """FAQ 2.3 line 140: for an imported territory the Délégation sets the contact."""
    clock.set(paris("2024-03-01T10:00:00"))
    engine = make_engine(db_url)
    import_shipped(engine, contact=None)
    with pytest.raises(CreateRefused) as exc:
        engine.create_case(
            "perimeter_amendment", "ti-2023-2027", amendment(ARDECHE), TERRITORY_OWNER
        )
    assert codes(exc) == {"filer_no_contact"}
    assert engine.list_cases(AUDITOR, workflow="perimeter_amendment")[1] == 0
    with engine.db.begin() as conn:
        writes.set_contact(conn, ARDECHE, TERRITORY_OWNER.email, by="national_committee",
                           now=clock.now())  # fmt: skip
    case = engine.create_case(
        "perimeter_amendment", "ti-2023-2027", amendment(ARDECHE, add=[TARENTAISE]),
        TERRITORY_OWNER,
    )  # fmt: skip
    # the contact changes before filing: the former contact's draft can no longer be filed
    with engine.db.begin() as conn:
        writes.set_contact(conn, ARDECHE, "nouveau@ardeche.example.org", by="national_committee",
                           now=clock.now())  # fmt: skip
    with pytest.raises(GuardRefused) as refused:
        engine.fire(case.id, "submit", TERRITORY_OWNER)
    assert codes(refused) == {"filer_not_attached"}
    submit = [
        o for o in engine.available_triggers(case.id, TERRITORY_OWNER) if o.trigger == "submit"
    ]
    assert not submit[0].allowed


@pytest.fixture
def api(make_engine: EngineFactory, db_url: str, clock: SimulatedClock) -> Iterator[Api]:
    clock.set(paris("2024-03-01T10:00:00"))
    yield from serve_api(make_engine, db_url)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_only_an_attached_account_files_over_http(api: Api) -> None:
    """FAQ 2.3 line 140, through the API: the engine refuses filing by an account no longer
    attached, with the rule in both languages; the attached account files, the opinions
    are necessary and the Délégation decides (a refusal needs a reason).
    (The API's POST /v1/cases takes candidacy files only: drafts are created with the CLI.)"""
    import_shipped(api.engine, contact=None)
    engine, former = api.engine, Actor("candidate", email="ti@arve.example.org")
    with engine.db.begin() as conn:  # the contact is the API's candidate account
        writes.set_contact(conn, ARDECHE, former.email or "", by="national_committee",
                           now=engine.clock.now())  # fmt: skip
    draft = engine.create_case(
        "perimeter_amendment", "ti-2023-2027", amendment(ARDECHE, add=[TARENTAISE]), former
    )
    cid = draft.id
    cand, committee = api.as_("candidate"), api.as_("committee")
    with engine.db.begin() as conn:  # the Délégation attaches another account meanwhile
        writes.set_contact(conn, ARDECHE, "autre@ardeche.example.org", by="national_committee",
                           now=engine.clock.now())  # fmt: skip
    refused = cand.post(f"/v1/cases/{cid}/triggers/submit")
    problem = ok(refused, 422)
    assert [r["code"] for r in problem["rules"]] == ["filer_not_attached"]
    assert "n'est pas rattaché" in str(problem["rules"]) and "not attached" in str(problem)
    with engine.db.begin() as conn:
        writes.set_contact(conn, ARDECHE, former.email or "", by="national_committee",
                           now=engine.clock.now())  # fmt: skip
    ok(cand.post(f"/v1/cases/{cid}/triggers/submit"))
    ok(committee.post(f"/v1/cases/{cid}/triggers/start_regional_review"))
    early = committee.post(f"/v1/cases/{cid}/triggers/approve")
    assert early.status_code == 409  # still in regional review: the opinions come first
    for who in ("regional_council", "state_services"):
        favourable = {"opinion": "favourable", "reasons": "vu"}
        engine.fire(cid, "give_opinion", Actor(who, region="84"), favourable)
    assert cand.post(f"/v1/cases/{cid}/triggers/approve").status_code == 403
    no_reason = committee.post(f"/v1/cases/{cid}/triggers/reject", json={"payload": {}})
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    approved = ok(committee.post(f"/v1/cases/{cid}/triggers/approve"))
    assert approved["case"]["state"] == "approved"


# --- FAQ 2.2 (line 136) -------------------------------------------------------------------


def test_an_amendment_cannot_leave_one_intercommunality_without_justification(
    engine: Engine,
) -> None:
    """FAQ 2.2 line 136: "devra dans ce cas justifier de la taille critique de ce périmètre"."""
    data = amendment(ARVE, remove=[FAUCIGNY], metropole_justification=None)
    case = engine.create_case("perimeter_amendment", "ti-2023-2027", data, TERRITORY_OWNER)
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case.id, "submit", TERRITORY_OWNER)
    assert codes(exc) == {"amendment_single_member_unjustified"}
    rule = exc.value.rules[0]
    assert rule.faq == "2.2" and "taille critique" in rule.message_fr
    assert "single intercommunality" in rule.message_en
    justified = {**data, "single_member_justification": "Bassin du décolletage"}
    engine.update_data(case.id, justified, TERRITORY_OWNER)
    assert engine.fire(case.id, "submit", TERRITORY_OWNER).case.state == "submitted"


def test_every_failure_is_listed_with_the_2_2_and_2_4_checks(engine: Engine) -> None:
    """FAQ 2.2 line 136 and 2.4 line 144: a single-member territory swapping its groupement
    for a métropole needs both justifications; both are listed at once."""
    lyon = "200046977"  # Métropole de Lyon, in no territory
    data = amendment(CAP_EXCELLENCE, add=[lyon], remove=["200018653"], justification="")
    case = engine.create_case("perimeter_amendment", "ti-2023-2027", data, TERRITORY_OWNER)
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case.id, "submit", TERRITORY_OWNER)
    assert codes(exc) == {
        "amendment_unjustified",
        "amendment_single_member_unjustified",
        "amendment_metropole_unjustified",
    }
    # what the territory reads: no field code, French typography (issue 11, wording)
    for r in exc.value.rules:
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", r.message_fr), r.message_fr
        assert " :" not in r.message_fr, r.message_fr
    # a rename of a territory that already has a single member changes no perimeter
    rename = amendment(CAP_EXCELLENCE, new_name="Cap Excellence industrie")
    renamed = engine.create_case("perimeter_amendment", "ti-2023-2027", rename, TERRITORY_OWNER)
    assert engine.fire(renamed.id, "submit", TERRITORY_OWNER).case.state == "submitted"


# --- opinions' due date and reminders (campaign parameters) ---------------------------------


def test_opinions_have_a_reminder_and_a_due_date(sqlite_url: str) -> None:
    """FAQ 2.3 line 140: the opinions are required; the campaign sets when they are due
    (amendment_opinion_due_after) and when the silent bodies are reminded."""
    port = free_port()
    settings = settings_for(sqlite_url, port)
    clock = SimulatedClock(paris("2024-03-04T10:00:00"))
    engine = open_engine(settings, clock)
    try:
        import_shipped(engine)
        case_id = file_amendment(engine, amendment(ARDECHE, add=[TARENTAISE]))
        opinion(engine, case_id, "regional_council", "84", "favourable")
        with smtp_sink(port) as sink:
            driver = Driver(engine, clock, settings, [])
            driver.run_until(paris("2024-03-26T12:00:00"))
            assert engine.get(case_id, AUDITOR).state == "regional_review"
            assert not sink.of("amendment_opinion_reminder")
            driver.run_until(paris("2024-03-27T12:00:00"))  # 23 days after the request
            reminders = sink.of("amendment_opinion_reminder")
            assert len(reminders) == 1  # the State services only: the council answered
            text = reminders[0].message.get_body(("plain",)).get_content()
            assert "services de l'État" in text and "conseil régional :" not in text
            driver.run_until(paris("2024-04-04T12:00:00"))  # 30 days: the due date
            case = engine.get(case_id, AUDITOR)
            assert case.state == "national_review"
            assert case.facts["missing_opinions"] == ["84/state_services"]
            assert len(sink.of("amendment_opinions_overdue")) == 1
            with pytest.raises(GuardRefused):  # approval still needs every opinion
                engine.fire(case_id, "approve", COMMITTEE)
    finally:
        engine.db.dispose()


def test_the_opinion_delays_are_checked_and_never_silently_missing(
    engine: Engine, db_url: str, clock: SimulatedClock, tmp_path: Path
) -> None:
    """The due date is a campaign parameter: a value that is no duration is refused by
    validate/init naming the file; a campaign without it cannot open an amendment's review
    (a clear refusal, nothing written), never a review without a due date."""
    catalog = engine.catalog
    workflows_dir = Settings().workflows_dir
    current = {name: catalog.current_definition(name) for name in catalog.current}
    campaign = catalog.campaign("ti-2023-2027")
    params = {**campaign.parameters, "amendment_opinion_due_after": "trente jours"}
    broken = dataclasses.replace(campaign, parameters=params, source="campagne.yaml", timers=())
    errors = campaign_timer_errors(current, [broken])
    assert sorted(e for e in errors if "amendment_opinion_due_after" in e) == [
        f"campagne.yaml: parameters.amendment_opinion_due_after (delay of timer "
        f"'amendment_opinion_deadline' of {workflows_dir / name}): an ISO 8601 duration such "
        f"as P14D, P2W or PT48H is required, got 'trente jours'"
        for name in ("governance_amendment.yaml", "perimeter_amendment.yaml")
    ]
    assert campaign_timer_errors(current, [campaign]) == []

    workflows = tmp_path / "workflows"
    shutil.copytree(Settings().workflows_dir, workflows)
    path = workflows / "campaigns" / "ti-2023-2027.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  amendment_opinion_due_after: P30D\n", ""), encoding="utf-8")
    without = open_engine(Settings(db_url=db_url, workflows_dir=workflows), clock)
    try:
        data = amendment(ARDECHE, add=[TARENTAISE])
        case = without.create_case("perimeter_amendment", "ti-2023-2027", data, TERRITORY_OWNER)
        without.fire(case.id, "submit", TERRITORY_OWNER)
        with pytest.raises(InvalidDefinition) as exc:
            without.fire(case.id, "start_regional_review", COMMITTEE)
        assert "parameters.amendment_opinion_due_after is not set" in str(exc.value)
        assert without.get(case.id, AUDITOR).state == "submitted"
    finally:
        without.db.dispose()
