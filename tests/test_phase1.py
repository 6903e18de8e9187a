"""Phase-1 territories (2019-2022) and a candidacy's overlap with them (FAQ 1.2, line 72:
phase-1 territories may apply again). Informative only: never a rule."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from conftest import ARA_1, ARA_2, CANDIDATE, candidacy
from ti_workflow.cli.app import app
from ti_workflow.engine import Engine
from ti_workflow.territories.phase1 import phase1, phase1_overlap

TARENTAISE = "200023299"  # CC Coeur de Tarentaise: in no phase-1 territory


def test_the_149_phase1_territories_are_shipped() -> None:
    territories = phase1()
    assert len(territories) == 149
    arve = next(t for t in territories if t.id == "ti-8414")
    assert arve.name == "Vallée de l'Arve" and arve.members == {ARA_1, ARA_2}
    assert sum(len(t.members) for t in territories) == 588


def test_overlap_counts_the_shared_groupements_both_ways() -> None:
    [arve] = phase1_overlap([ARA_1, TARENTAISE])
    assert arve == {
        "id": "ti-8414",
        "name": "Vallée de l'Arve",
        "shared": [ARA_1],
        "share_of_perimeter": 0.5,
        "share_of_phase1_territory": 0.5,
    }
    assert phase1_overlap([TARENTAISE]) == []


def test_cli_shows_a_candidacy_overlap(engine: Engine, sqlite_url: str) -> None:
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    env = {"TI_WORKFLOW_DB": sqlite_url}
    result = CliRunner().invoke(app, ["territory", "phase1", str(case.id), "--json"], env=env)
    assert result.exit_code == 0, result.output
    [arve] = json.loads(result.stdout)["phase1_overlap"]
    assert (arve["id"], arve["share_of_perimeter"]) == ("ti-8414", 1.0)
    result = CliRunner().invoke(app, ["territory", "phase1", "999"], env=env)
    assert result.exit_code != 0 and "999" in result.output
