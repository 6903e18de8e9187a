"""The ``ti-workflow`` command line, run as a user runs it (a real process, the real clock)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import candidacy, paris
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.settings import Settings

CLI = [sys.executable, "-m", "ti_workflow.cli"]


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, input=stdin, timeout=120
    )


@pytest.fixture
def cli_env(tmp_path: Path, sqlite_url: str) -> dict[str, str]:
    """A database, and workflows with a campaign open today: the CLI uses the real clock."""
    workflows = tmp_path / "workflows"
    shutil.copytree(Settings().workflows_dir, workflows)
    today = date.today()
    (workflows / "campaigns" / "open-now.yaml").write_text(
        "campaign: open-now\nname: Test campaign open today\ntimezone: Europe/Paris\n"
        f"window: {{opens_on: {today - timedelta(days=1)}, "
        f"closes_on: {today + timedelta(days=30)}}}\n"
    )
    return {**os.environ, "TI_WORKFLOW_DB": sqlite_url, "TI_WORKFLOW_WORKFLOWS_DIR": str(workflows)}


def write(tmp_path: Path, name: str, value: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value))
    return str(path)


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_whole_candidacy_through_the_cli(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert run("init", env=cli_env).returncode == 0
    data = write(tmp_path, "c.json", candidacy())
    case = as_json(
        run(
            "case",
            "create",
            "--campaign",
            "open-now",
            "--data",
            data,
            "--as",
            "candidate:ti@arve.example.org",
            "--json",
            env=cli_env,
        )
    )
    assert {k: case[k] for k in ("id", "workflow", "state", "version", "regions")} == {
        "id": 1,
        "workflow": "candidacy",
        "state": "draft",
        "version": 1,
        "regions": ["84"],
    }
    fired = as_json(
        run(
            "case",
            "fire",
            "1",
            "submit",
            "--as",
            "candidate:ti@arve.example.org",
            "--if-version",
            "1",
            "--json",
            env=cli_env,
        )
    )
    assert fired["case"]["state"] == "submitted" and fired["events"][0]["trigger"] == "submit"
    run("case", "fire", "1", "start_regional_review", "--as", "system", env=cli_env)
    opinion = write(tmp_path, "o.json", {"opinion": "favourable", "reasons": "Cohérent"})
    for body in ("regional_council:84", "state_services:84"):
        assert (
            run(
                "case", "fire", "1", "give_opinion", "--data", opinion, "--as", body, env=cli_env
            ).returncode
            == 0
        )
    rejected = run(
        "case",
        "fire",
        "1",
        "reject",
        "--as",
        "national_committee",
        "--reason",
        "Plan d'action trop général",
        "--json",
        env=cli_env,
    )
    assert as_json(rejected)["case"]["state"] == "not_selected"
    shown = as_json(run("case", "show", "1", "--json", env=cli_env))
    assert shown["facts"]["decision"] == {
        "decision": "not_selected",
        "reason": "Plan d'action trop général",
        "at": shown["facts"]["decision"]["at"],
    }
    history = as_json(run("case", "history", "1", "--json", env=cli_env))
    assert [e["trigger"] for e in history] == [
        "create",
        "submit",
        "start_regional_review",
        "give_opinion",
        "give_opinion",
        "complete_regional_review",
        "reject",
    ]
    listed = as_json(
        run("case", "list", "--region", "84", "--state", "not_selected", "--json", env=cli_env)
    )
    assert listed["total"] == 1 and listed["cases"][0]["id"] == 1
    readable = run("case", "history", "1", env=cli_env)
    assert "complete_regional_review" in readable.stdout and readable.returncode == 0


def test_refusals_exit_1_with_every_rule(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The real clock is past 22/09/2023: the 2023 campaign refuses, listing every failed rule."""
    data = write(tmp_path, "c.json", candidacy(letters_of_intent=[]))
    new = run(
        "case",
        "create",
        "--data",
        data,
        "--as",
        "candidate:ti@arve.example.org",
        "--json",
        env=cli_env,
    )  # FAQ 1.2: no new draft once filing has closed, and nothing is stored
    assert new.returncode == 1, new.stderr
    assert [(r["code"], r["faq"]) for r in json.loads(new.stdout)["rules"]] == [
        ("window_closed", "1.2")
    ]
    assert as_json(run("case", "list", "--json", env=cli_env))["total"] == 0
    # A draft opened in time (July 2023), filed from the command line today.
    engine = open_engine(
        Settings(
            db_url=cli_env["TI_WORKFLOW_DB"],
            workflows_dir=Path(cli_env["TI_WORKFLOW_WORKFLOWS_DIR"]),
        ),
        SimulatedClock(paris("2023-07-03T10:00")),
    )
    engine.create_case(
        "candidacy",
        "ti-2023-2027",
        candidacy(letters_of_intent=[]),
        Actor("candidate", email="ti@arve.example.org"),
    )
    engine.db.dispose()
    result = run(
        "case",
        "fire",
        "1",
        "submit",
        "--as",
        "candidate:ti@arve.example.org",
        "--json",
        env=cli_env,
    )
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["error"] == "guard_refused"
    assert {(r["code"], r["faq"]) for r in body["rules"]} == {
        ("window_closed", "1.2"),
        ("letter_of_intent_missing", "4.5"),
    }
    assert "FAQ 4.5" in result.stderr and "Traceback" not in result.stderr
    stranger = run("case", "show", "1", "--as", "candidate:x@example.org", env=cli_env)
    assert stranger.returncode == 1 and "unknown case 1" in stranger.stderr
    auditor = run("case", "fire", "1", "withdraw", "--as", "auditor", env=cli_env)
    assert auditor.returncode == 1 and "auditors read and never write" in auditor.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["case", "fire", "1", "withdraw", "--as", "mayor"], "unknown role 'mayor'"),
        (["case", "fire", "1", "withdraw", "--as", "regional_council:north"], "INSEE region code"),
        (
            ["case", "create", "--data", "/nonexistent.json", "--as", "candidate:a@b.fr"],
            "cannot read",
        ),
        (
            ["case", "fire", "1", "approve", "--as", "national_committee"],
            "has no trigger 'approve'",
        ),
    ],
)
def test_bad_usage_exits_2(
    cli_env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    data = write(tmp_path, "c.json", candidacy())
    created = run(
        "case",
        "create",
        "--campaign",
        "open-now",
        "--data",
        data,
        "--as",
        "candidate:ti@arve.example.org",
        env=cli_env,
    )
    assert created.returncode == 0, created.stderr
    result = run(*args, env=cli_env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_malformed_file_names_the_field_and_changes_nothing(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    bad = write(
        tmp_path, "bad.json", candidacy(perimeter={"members": ["2000001"]}, contact_email="nope")
    )
    result = run(
        "case",
        "create",
        "--data",
        bad,
        "--as",
        "candidate:ti@arve.example.org",
        "--json",
        env=cli_env,
    )
    assert result.returncode == 2
    body = json.loads(result.stdout)
    assert body["error"] == "invalid_data"
    locations = {r["location"] for r in body["rules"]}
    assert locations == {"perimeter.members[0]", "contact_email"}
    (tmp_path / "broken.json").write_text("{not json")
    broken = run(
        "case",
        "create",
        "--data",
        str(tmp_path / "broken.json"),
        "--as",
        "candidate:a@b.fr",
        env=cli_env,
    )
    assert broken.returncode == 2 and "not valid JSON (line 1, column 2" in broken.stderr
    assert as_json(run("case", "list", "--json", env=cli_env))["total"] == 0


def test_uninitialised_database_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "TI_WORKFLOW_DB": f"sqlite:///{tmp_path}/empty.db"}
    result = run("case", "list", env=env)
    assert result.returncode == 1 and "run `ti-workflow init` first" in result.stderr


def test_init_is_idempotent_and_upgrades(tmp_path: Path) -> None:
    env = {**os.environ, "TI_WORKFLOW_DB": f"sqlite:///{tmp_path}/ti.db"}
    first = as_json(run("init", "--json", env=env))
    assert first["reference_rows"]["groupements"] == 1266 and first["new_definitions"]
    second = as_json(run("init", "--json", env=env))
    assert second["new_definitions"] == [] and second["definitions"] == first["definitions"]


def test_workflows_diagram_is_mermaid_from_the_yaml() -> None:
    result = run("workflows", "diagram", "candidacy")
    assert result.returncode == 0
    assert result.stdout.startswith("stateDiagram-v2\n    [*] --> draft\n")
    assert (
        "    regional_review --> national_review: complete_regional_review (auto) [system]"
        in result.stdout
    )
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert result.stdout.strip() in readme, "the README embeds the current candidacy diagram"


def test_validate_and_init_refuse_campaign_timers_the_workflows_cannot_run(
    cli_env: dict[str, str],
) -> None:
    campaign = Path(cli_env["TI_WORKFLOW_WORKFLOWS_DIR"]) / "campaigns" / "ti-2023-2027.yaml"
    text = campaign.read_text()
    for old, new in (
        ("{notify: labelled, in: [labelled]}", "{notify: labeled, in: [labelled]}"),
        ("{fire: close_regional_review, in: [regional_review]}", "{fire: close, in: [review]}"),
    ):
        assert old in text
        text = text.replace(old, new)
    campaign.write_text(text)
    workflow = Path(cli_env["TI_WORKFLOW_WORKFLOWS_DIR"]) / "candidacy.yaml"
    expected = [
        "timers[decision_announcement].actions[0].notify: unknown notification 'labeled'",
        # FAQ 1.3: a decision taken before the announcement would never be told
        f"timers[decision_announcement]: {workflow} holds notification 'labelled' until this "
        "timer, which does not send it (add {notify: labelled, in: [...]} to its actions)",
        "timers[regional_review_deadline].actions[0].fire: unknown trigger 'close'",
        "timers[regional_review_deadline].actions[0].in: unknown state 'review'",
    ]
    for args in (("validate",), ("validate", str(campaign)), ("init",)):
        result = run("--json", *args, env=cli_env)
        assert result.returncode == 1, args
        rules = sorted(r["message"] for r in json.loads(result.stdout)["rules"])
        assert [r.split(": ", 1)[1] for r in rules] == expected, args
        assert all(r.startswith(f"{campaign}: ") for r in rules)
    # Every other command refuses to start on these files too, with the same errors.
    listed = run("case", "list", env=cli_env)
    assert listed.returncode == 1 and expected[0] in listed.stderr


def test_validate_lists_file_and_cross_file_timer_errors_at_once(
    cli_env: dict[str, str],
) -> None:
    campaign = Path(cli_env["TI_WORKFLOW_WORKFLOWS_DIR"]) / "campaigns" / "bad.yaml"
    campaign.write_text(
        "campaign: bad\nwindow: {opens_on: 2026-01-01, closes_on: 2026-12-31}\ntimers:\n"
        "  - {name: a, at: 2026-02-01, time: '25:00', actions: [{job: audit_checkpoint}]}\n"
        "  - {name: c, at: 2026-03-01, workflow: candidacy,"
        " actions: [{notify: nothing, in: [draft]}]}\n"
        "  - {name: d, at: 2026-03-02, actions: [{job: nojob}]}\n"
        "  - {name: e, at: window.opens_on, time: '24:00', workflow: candidacy,"
        " actions: [{fire: lapsee, in: [draft]}]}\n"
    )
    for args in (("validate",), ("init",)):
        result = run("--json", *args, env=cli_env)
        assert result.returncode == 1, args
        found = sorted(r["message"].split(": ", 1)[1] for r in json.loads(result.stdout)["rules"])
        assert found == [
            "timers[0].time: a local time HH:MM is required, got '25:00'",
            "timers[3].time: a local time HH:MM is required, got '24:00'",
            "timers[c].actions[0].notify: unknown notification 'nothing'",
            "timers[d].actions[0].job: unknown job 'nojob' "
            "(known: audit_checkpoint, ds_push, ds_sync)",
            "timers[e].actions[0].fire: unknown trigger 'lapsee'",  # its time is wrong too
        ], args
