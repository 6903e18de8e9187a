"""``ti-workflow territory ...`` and amendments through ``case``, as a user runs them (the
real clock of 2026): import the 2023 list, amend, ask by date. The commands run in-process
through click's runner (a process start costs seconds on a loaded 2-core machine); one
test runs the real entry point in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from territories_helpers import ARDECHE, FAUCIGNY, TARENTAISE, TERRITORY_OWNER, amendment
from ti_workflow.cli.app import app

CLI = [sys.executable, "-m", "ti_workflow.cli"]


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run(env: dict[str, str], *args: str) -> Ran:
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def ok(result: Ran) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    """SQLite only: the engine-level tests run every rule on PostgreSQL too."""
    return {"TI_WORKFLOW_DB": sqlite_url}


def test_the_installed_command_answers(sqlite_url: str) -> None:
    result = subprocess.run(
        [*CLI, "territory", "of", FAUCIGNY, "--at", "2024-01-01", "--json"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TI_WORKFLOW_DB": sqlite_url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer == {"siren": FAUCIGNY, "groupement": "CC Faucigny-Glières",
                      "at": "2024-01-01", "territory": None}  # fmt: skip


def test_import_amend_and_ask_by_date(env: dict[str, str], tmp_path: Path) -> None:
    report = ok(run(env, "territory", "import", "--campaign", "ti-2023-2027", "--json"))
    assert (report["territories_in_file"], report["memberships_in_file"]) == (183, 630)
    assert report["created"] == 183
    again = ok(run(env, "--json", "territory", "import", "--campaign", "ti-2023-2027"))
    assert (again["created"], again["unchanged"]) == (0, 183)

    data = tmp_path / "amendment.json"
    data.write_text(json.dumps(amendment(ARDECHE, add=[TARENTAISE], effective_on="2027-01-01")))
    owner = f"candidate:{TERRITORY_OWNER.email}"
    create = ("case", "create", "--workflow", "perimeter_amendment", "--data", str(data))
    # FAQ 2.3 line 140: only an account attached to the territory files for it; an imported
    # territory has no contact until the Délégation sets one.
    refused = run(env, *create, "--as", owner)
    assert refused.returncode == 1 and "aucun compte n'est rattaché" in refused.stderr
    assert "no account is attached to territory ti-8401" in refused.stderr
    contact = ("territory", "contact", "set", ARDECHE, TERRITORY_OWNER.email)
    assert run(env, *contact, "--as", owner).returncode == 1  # the Délégation's act
    bad = run(env, "territory", "contact", "set", ARDECHE, "not-an-email", "--as",
              "national_committee")  # fmt: skip
    assert bad.returncode == 2 and "EMAIL" in bad.stderr
    unknown = run(env, "territory", "contact", "set", "ti-9999", TERRITORY_OWNER.email, "--as",
                  "national_committee")  # fmt: skip
    assert unknown.returncode == 1 and "ti-9999" in unknown.stderr
    attached = ok(run(env, *contact, "--as", "national_committee", "--reason", "courrier du 2/1",
                      "--json"))  # fmt: skip
    assert attached["contact"]["email"] == TERRITORY_OWNER.email
    assert attached["contact"]["set_by"] == "national_committee"
    other = run(env, *create, "--as", "candidate:autre@example.org")
    assert other.returncode == 1 and "n'est pas rattaché" in other.stderr
    case = ok(run(env, *create, "--as", owner, "--json"))
    cid = str(case["id"])
    assert case["regions"] == ["84"]
    ok(run(env, "case", "fire", cid, "submit", "--as", owner, "--json"))
    ok(run(env, "case", "fire", cid, "start_regional_review", "--as", "system", "--json"))
    opinion = tmp_path / "opinion.json"
    opinion.write_text(json.dumps({"opinion": "favourable", "reasons": "cohérent"}))
    for body in ("regional_council:84", "state_services:84"):
        fired = ok(run(env, "case", "fire", cid, "give_opinion", "--as", body, "--data",
                       str(opinion), "--json"))  # fmt: skip
    assert fired["case"]["state"] == "national_review"  # necessary, not sufficient
    fired = ok(run(env, "case", "fire", cid, "approve", "--as", "national_committee", "--json"))
    assert fired["case"]["state"] == "approved"

    before = ok(run(env, "territory", "show", ARDECHE, "--at", "2026-12-31", "--json"))
    after = ok(run(env, "territory", "show", ARDECHE, "--at", "2027-01-01T00:30:00+01:00",
                   "--json"))  # fmt: skip
    assert len(before["members"]) == 8 and len(after["members"]) == 9
    added = next(m for m in after["members"] if m["siren"] == TARENTAISE)
    assert (added["valid_from"], added["case_id"]) == ("2027-01-01", int(cid))
    assert after["name"] == "Ardèche Drôme Nord" and after["regions"] == ["84"]
    assert after["amendments"] == [
        {"case_id": int(cid), "workflow": "perimeter_amendment", "state": "approved",
         "effective_on": "2027-01-01", "regions": ["84"]}
    ]  # fmt: skip
    assert after["contact"]["email"] == TERRITORY_OWNER.email
    assert after["history"]["contacts"][0]["reason"] == "courrier du 2/1"
    history = after["history"]["members"]
    assert len(history) == 9 and history[-1]["siren"] == TARENTAISE

    of = ok(run(env, "territory", "of", TARENTAISE, "--at", "2027-01-01", "--json"))
    assert of["territory"]["territory_id"] == ARDECHE
    none = ok(run(env, "territory", "of", TARENTAISE, "--at", "2026-12-31", "--json"))
    assert none["territory"] is None
    listed = ok(run(env, "territory", "list", "--region", "84", "--json"))
    assert listed["count"] == 28
    assert ok(run(env, "territory", "list", "--at", "2023-11-13", "--json"))["count"] == 0
    assert ok(run(env, "territory", "list", "--at", "2023-11-14", "--json"))["count"] == 183


def test_bad_input_is_refused_clearly(env: dict[str, str], tmp_path: Path) -> None:
    bad_at = run(env, "territory", "of", FAUCIGNY, "--at", "31/12/2024")
    assert bad_at.returncode == 2 and "--at" in bad_at.stderr and "2024-03-01" in bad_at.stderr
    bad_siren = run(env, "territory", "of", "123456789")
    assert bad_siren.returncode == 2 and "neither a valid SIREN" in bad_siren.stderr
    unknown = run(env, "territory", "show", "ti-0000")
    assert unknown.returncode == 1 and "unknown territory 'ti-0000'" in unknown.stderr
    bad_file = tmp_path / "list.csv"
    bad_file.write_text("id,name\nti-1,Un\n")
    wrong = run(env, "territory", "import", str(bad_file), "--json")
    assert wrong.returncode == 2 and "id_ti, lib_ti, siren_groupement" in wrong.stderr
    assert json.loads(wrong.stdout)["error"] == "invalid_data"
    assert ok(run(env, "territory", "list", "--json"))["count"] == 0  # nothing imported
    no_campaign = run(env, "territory", "import", "--campaign", "ti-2030")
    assert no_campaign.returncode == 1 and "unknown campaign 'ti-2030'" in no_campaign.stderr


def test_a_commune_is_answered_on_its_own(env: dict[str, str]) -> None:
    """Where a groupement is split (FAQ 2.3), ``territory of`` also takes an INSEE code."""
    ok(run(env, "territory", "import", "--json"))
    brizon = ok(run(env, "territory", "of", "74049", "--at", "2024-01-01", "--json"))
    assert brizon["territory"] == {"territory_id": "ti-8422", "name": "Vallée de l'Arve"}
    assert brizon["groupement"] == FAUCIGNY
    before = ok(run(env, "territory", "of", "74049", "--at", "2023-11-13", "--json"))
    assert before["territory"] is None
    unknown = run(env, "territory", "of", "99999")
    assert unknown.returncode == 2 and "no commune has the INSEE code 99999" in unknown.stderr
