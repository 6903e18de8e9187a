"""``ti-workflow ds ...`` as an operator runs it (settings from the environment), against the
fake DS over real HTTP: check-mapping, sync, status, push, and their errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import paris
from ds_fake.builder import MAPPING_FILE
from ds_fake.server import FakeDs
from test_ds_connector import INSTRUCTEUR, PROCEDURE, TOKEN, fake, fast_retries, file_dossier
from ti_workflow.cli.app import app

__all__ = ["fake", "fast_retries"]  # fixtures shared with test_ds_connector


@pytest.fixture
def env(sqlite_url: str, fake: FakeDs) -> Iterator[dict[str, str]]:
    yield {
        "TI_WORKFLOW_DB": sqlite_url,
        "TI_WORKFLOW_DS_URL": fake.graphql_url,
        "TI_WORKFLOW_DS_TOKEN": TOKEN,
        "TI_WORKFLOW_DS_PROCEDURE": str(PROCEDURE),
        "TI_WORKFLOW_DS_INSTRUCTEUR": INSTRUCTEUR,
        "TI_WORKFLOW_DS_TIMEOUT": "2",
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_check_mapping_passes_on_the_matching_revision(env: dict[str, str]) -> None:
    code, out, err = run(env, "ds", "check-mapping")
    assert code == 0, err
    assert f"matches procedure n° {PROCEDURE}" in out


def test_check_mapping_lists_every_difference_and_exits_1(
    env: dict[str, str], fake: FakeDs
) -> None:
    top = fake.descriptors
    by_label = {d["label"]: d for d in top}
    top.remove(by_label["Justification de l'inclusion d'une métropole"])  # gone
    by_label["Nom du territoire d'industrie"]["__typename"] = "TextareaChampDescriptor"
    by_label["Adresse électronique du référent de la candidature"]["label"] = "Courriel"
    actions = by_label["Plan d'action"]["champDescriptors"]
    priority = next(d for d in actions if d["label"] == "Priorité du programme")
    priority["options"].append("Tourisme")
    top.append(
        {
            "__typename": "TextChampDescriptor",
            "id": "Q2hhbXAtOTk5",
            "label": "Budget prévisionnel",
            "description": None,
            "required": True,
        }
    )
    top.append(
        {
            "__typename": "HeaderSectionChampDescriptor",
            "id": "Q2hhbXAtOTk4",
            "label": "Partie 2",
            "description": None,
            "required": False,
        }
    )
    code, out, _ = run(env, "--json", "ds", "check-mapping")
    assert code == 1
    problems = {(p["kind"], p["field_id"]) for p in json.loads(out)["problems"]}
    assert problems == {
        ("missing", "Q2hhbXAtMTA2"),
        ("type_mismatch", "Q2hhbXAtMTAx"),
        ("label_mismatch", "Q2hhbXAtMTAy"),
        ("unknown_option", "Q2hhbXAtMTE5"),
        ("unmapped_required", "Q2hhbXAtOTk5"),
    }
    code, out, _ = run(env, "ds", "check-mapping")
    assert code == 1
    assert "« Budget prévisionnel » (Q2hhbXAtOTk5, Text) is not mapped" in out
    assert "the option « Tourisme » has no code in the mapping" in out


def test_sync_status_push_as_an_operator_runs_them(env: dict[str, str], fake: FakeDs) -> None:
    file_dossier(fake, 1, paris("2023-07-01T10:00:00"))
    file_dossier(fake, 2, paris("2023-07-01T11:00:00"), actions=[("Musée", "Tourisme")])
    code, out, err = run(env, "ds", "sync")
    assert code == 0, err
    assert "2 dossier(s) read on 1 page(s): 1 new case(s)" in out
    assert "dossier n° 2: mapping:" in out
    code, out, _ = run(env, "--json", "ds", "status")
    status = json.loads(out)
    assert (status["dossiers"], status["with_problems"]) == (2, 1)
    [listed] = status["list"]
    assert listed["dossier"] == 2 and listed["case_id"] is None
    code, out, _ = run(env, "ds", "push")
    assert (code, out.strip()) == (
        0,
        "0 due: 0 written, 0 already done on DS, 0 failed, 0 to retry",
    )


def test_usage_and_configuration_errors(env: dict[str, str], tmp_path: Path) -> None:
    code, _, err = run(env, "ds", "sync", "--since", "yesterday")
    assert code == 2 and "--since: 'yesterday' is not an ISO 8601 instant" in err
    code, _, err = run({**env, "TI_WORKFLOW_DS_TOKEN": "wrong"}, "ds", "sync")
    assert code == 1 and "refused the token (401)" in err and "Traceback" not in err
    unset: dict[str, Any] = {**env, "TI_WORKFLOW_DS_PROCEDURE": ""}
    code, _, err = run(unset, "ds", "status")
    assert code == 1 and "set TI_WORKFLOW_DS_PROCEDURE" in err
    broken = tmp_path / "mapping.yaml"
    text = MAPPING_FILE.read_text(encoding="utf-8")
    broken.write_text(
        text.replace("to: perimeter.metropole_justification", "to: perimeter.metropole")
        .replace("Foncier: land", "Foncier: tourism")
        .replace("type: Epci", "type: Text"),
        encoding="utf-8",
    )
    code, _, err = run({**env, "TI_WORKFLOW_DS_MAPPING": str(broken)}, "ds", "check-mapping")
    assert code == 1
    assert "'perimeter.metropole' is not one of territory_name" in err
    assert "values['Foncier']: 'tourism' is not one of ecological_transition" in err
    assert "'siren' takes a field of type Epci, not 'Text'" in err
