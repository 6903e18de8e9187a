"""Declared forms (issue 15): a workflow file declares its case data under ``form:``.

The loader refuses a bad declaration with every error and its file and path; the engine
refuses a malformed save listing every failure at once (French and English) and changes
nothing; ``form_complete`` refuses a transition while required fields are empty.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import AUDITOR, EngineFactory, paris
from postlabel_helpers import ARDECHE, CAMPAIGN, file_sheet, manager, sheet
from territories_helpers import import_shipped
from test_api_fixtures import Api, serve_api
from ti_workflow.cli.app import app
from ti_workflow.clock import SimulatedClock
from ti_workflow.definitions.loader import load_definition, parse_definition, parse_yaml_text
from ti_workflow.domain.declared import form_description
from ti_workflow.engine import Engine
from ti_workflow.errors import GuardRefused, InvalidData, InvalidDefinition
from ti_workflow.storage import repository

ROOT = Path(__file__).resolve().parents[1]
ACTION_SHEET = ROOT / "workflows" / "action_sheet.yaml"

BASE = """
workflow: w
initial: a
create: {roles: [candidate]}
editable_in: [a]
states: {a: {}, b: {final: true}}
transitions: [{trigger: go, source: a, dest: b, roles: [candidate], guards: [form_complete]}]
"""


def parse(form: str) -> Any:
    return parse_definition(parse_yaml_text(BASE + form), "workflows/w.yaml")


@pytest.fixture
def engine(make_engine: EngineFactory, db_url: str, clock: SimulatedClock) -> Engine:
    clock.set(paris("2024-01-15T10:00:00"))
    e = make_engine(db_url)
    import_shipped(e)
    return e


def test_a_bad_declaration_lists_every_error_with_file_and_path() -> None:
    with pytest.raises(InvalidDefinition) as exc:
        parse(
            """
form:
  title_field: nowhere
  colour: blue
  fields:
    a: {type: text}
    b: {type: money, label_fr: B}
    c: {type: choice, label_fr: C}
    d:
      type: rows
      label_fr: D
      fields: {e: {type: rows, label_fr: E, fields: {f: {type: text, label_fr: F}}}}
    g: {type: number, label_fr: G, minimum: 10, maximum: 1, max_length: 3}
    h: {type: file, label_fr: H}
    i: {type: text, label_fr: I, required: yes}
"""
        )
    errors = exc.value.errors
    expected = [
        "workflows/w.yaml: form.colour: unknown key",
        "workflows/w.yaml: form.fields.a.label_fr: every field has a French label",
        "workflows/w.yaml: form.fields.b.type: unknown type 'money'",
        "workflows/w.yaml: form.fields.c.choices: a choice field maps each value",
        "workflows/w.yaml: form.fields.d.fields.e.type: rows cannot be nested",
        "workflows/w.yaml: form.fields.g.max_length: only for a field of type",
        "workflows/w.yaml: form.fields.g.minimum: minimum 10 is above maximum 1",
        "workflows/w.yaml: form.fields.h.type: type 'file' is not available",
        "workflows/w.yaml: form.fields.i.required: must be true or false",
        "workflows/w.yaml: form.title_field: 'nowhere' is not a top-level field",
    ]
    for start in expected:
        assert any(e.startswith(start) for e in errors), (start, errors)
    assert len(errors) == len(expected)


def test_a_declared_form_is_frozen_and_described_for_any_client() -> None:
    d = load_definition(ACTION_SHEET)
    assert d.form_spec is not None
    with pytest.raises(AttributeError):
        d.form_spec.title_field = "x"  # type: ignore[misc]
    described = form_description(d)
    assert described["declared"] is True
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["priority"]["choices"][1] == {
        "value": "ecological_transition",
        "label_fr": "Transition écologique",
    }
    assert fields["financing"]["type"] == "rows"
    assert [f["name"] for f in fields["financing"]["fields"]] == ["source", "amount", "status"]
    assert fields["ends_on"]["faq"] == "3.1"
    assert fields["title"]["max_length"] == 300
    json.dumps(described)  # plain JSON


def test_every_structural_failure_is_listed_at_once_and_nothing_is_written(
    engine: Engine,
) -> None:
    bad = sheet(
        ARDECHE,
        priority="tourism",
        estimated_cost=-5,
        starts_on="2024-02-30",
        owner_siren="123456789",
        owner_email="not-an-address",
        colour="blue",
        financing=[{"source": "Région", "amount": "12,5x", "status": "secured"}, {"amount": 1.005}],
        indicators="many",
    )
    with pytest.raises(InvalidData) as exc:
        engine.create_case("action_sheet", CAMPAIGN, bad, manager(ARDECHE))
    where = {e.location: e for e in exc.value.errors}
    assert set(where) == {
        "colour",
        "priority",
        "estimated_cost",
        "starts_on",
        "owner_siren",
        "owner_email",
        "financing[0].amount",
        "financing[1].amount",
        "indicators",
    }
    assert where["priority"].message_fr.startswith("« Enjeu du programme »\u00a0: valeur hors")
    assert "« Compétences »" in where["priority"].message_fr
    assert "expected one of innovation" in where["priority"].message
    assert "cette date n'existe pas" in where["starts_on"].message_fr
    assert "clé" in where["owner_siren"].message_fr
    assert "deux décimales" in where["financing[1].amount"].message_fr
    with engine.db.connect() as conn:
        assert repository.list_cases(conn, repository.CaseFilter())[1] == 0


def test_values_are_normalised_and_a_draft_may_be_incomplete(engine: Engine) -> None:
    data = sheet(
        ARDECHE, owner_email=" Porteur@Exemple.FR ", description="", estimated_cost="500000"
    )
    case = engine.create_case("action_sheet", CAMPAIGN, data, manager(ARDECHE))
    assert case.data["owner_email"] == "porteur@exemple.fr"
    assert case.data["estimated_cost"] == 500000
    assert "description" not in case.data
    assert case.title == data["title"]
    assert case.regions == ("84",)


ROW_1 = "« Indicateurs de suivi », ligne n\u00a0°\u00a01, "


def test_form_complete_lists_every_missing_field_and_row(engine: Engine) -> None:
    """FAQ 3.2 (lines 171-177): description, owner, financing, calendar, indicators."""
    case_id = file_sheet(
        engine,
        ARDECHE,
        description=None,
        owner_name="",
        indicators=[{"name": "Emplois", "unit": ""}],
        financing=[],
    )
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case_id, "submit", manager(ARDECHE))
    messages = [r.message_fr for r in exc.value.rules if r.code == "form_incomplete"]
    assert messages == [
        "« Descriptif de l'action »\u00a0: champ obligatoire non rempli",
        "« Porteur de projet »\u00a0: champ obligatoire non rempli",
        "« Plan de financement »\u00a0: au moins 1 ligne (actuellement 0)",
        f"{ROW_1}« Unité »\u00a0: champ obligatoire non rempli",
        f"{ROW_1}« Valeur cible »\u00a0: champ obligatoire non rempli",
    ]
    assert any("indicators[0].target" in r.message_en for r in exc.value.rules)
    assert engine.get(case_id, AUDITOR).state == "draft"


def test_cli_prints_the_form_and_validate_covers_the_file() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--json", "workflows", "form", "action_sheet"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["fields"][0]["name"] == "territory_id"
    result = runner.invoke(app, ["validate", str(ACTION_SHEET)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["workflows", "diagram", "action_sheet"])
    assert "regional_review --> validated" in result.output


@pytest.fixture
def api(make_engine: EngineFactory, sqlite_url: str) -> Iterator[Api]:
    yield from serve_api(make_engine, sqlite_url)


def test_http_serves_each_workflow_form(api: Api) -> None:
    response = api.as_("council_84").get("/v1/workflows/action_sheet/form")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["declared"] is True and body["title_field"] == "title"
    assert body["fields"][1]["choices"][0]["label_fr"] == "Action du plan d'action du territoire"
    coded = api.as_("candidate").get("/v1/workflows/candidacy/form").json()
    assert coded["declared"] is False and coded["form"] == "candidacy"
    missing = api.as_("candidate").get("/v1/workflows/nope/form")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
