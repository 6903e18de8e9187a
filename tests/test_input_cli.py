"""Bad input on the command line and in the definition files: a clear error, exit 2 (input
that cannot be read) or 1 (files that break a rule), never a traceback, nothing changed.
Issue 12 items 2, 3 and 6; what is accepted is described in docs/input-rules.md."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from conftest import candidacy
from ti_workflow.cli.app import app
from ti_workflow.settings import Settings

CLI = [sys.executable, "-m", "ti_workflow.cli"]
CREATE = [*CLI, "case", "create", "--campaign", "open-now", "--as", "candidate:a@b.fr"]
CAMPAIGN = "ti-2023-2027.yaml"


def quick(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def env(tmp_path: Path, sqlite_url: str) -> Iterator[dict[str, str]]:
    workflows = tmp_path / "workflows"
    shutil.copytree(Settings().workflows_dir, workflows)
    yield {**os.environ, "TI_WORKFLOW_DB": sqlite_url, "TI_WORKFLOW_WORKFLOWS_DIR": str(workflows)}


def campaigns_dir(env: dict[str, str]) -> Path:
    return Path(env["TI_WORKFLOW_WORKFLOWS_DIR"]) / "campaigns"


def pending_timers(url: str) -> dict[str, str]:
    db = create_engine(url)
    with db.connect() as conn:
        rows = conn.execute(text("SELECT name, status FROM timers WHERE case_id IS NULL")).all()
    db.dispose()
    return {r.name: r.status for r in rows}


def no_traceback(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


# --- item 2: duplicate ids, no silent cancellation -----------------------------------------


def test_a_second_file_with_the_same_campaign_id_is_refused_naming_both(
    env: dict[str, str],
) -> None:
    folder = campaigns_dir(env)
    original = folder / CAMPAIGN
    copy = folder / "x-backup.yaml"  # read after the original (files are read in name order)
    copy.write_text(original.read_text().replace("window_closing", "window_closing_copy"))
    for args in (("validate",), ("validate", str(copy)), ("init",)):
        result = quick(env, "--json", *args)
        assert result.exit_code == 1, (args, result.output)
        messages = [r["message"] for r in json.loads(result.stdout)["rules"]]
        assert messages == [
            f"{copy}: campaign: the id 'ti-2023-2027' is already the campaign of {original} "
            "(a copy or a backup? one file per campaign)"
        ], args
        no_traceback(result)
    # init refused: no timer was ever created (nothing stored)
    assert quick(env, "timers", "list").exit_code == 1


def test_duplicate_workflow_ids_and_timer_names_are_refused(env: dict[str, str]) -> None:
    workflows = Path(env["TI_WORKFLOW_WORKFLOWS_DIR"])
    (workflows / "candidacy-copy.yaml").write_text((workflows / "candidacy.yaml").read_text())
    result = quick(env, "validate")
    assert result.exit_code == 1
    assert (
        f"{workflows / 'candidacy.yaml'}: workflow 'candidacy' is already defined in "
        f"{workflows / 'candidacy-copy.yaml'}"
    ) in result.stderr
    (workflows / "candidacy-copy.yaml").unlink()
    path = campaigns_dir(env) / CAMPAIGN
    path.write_text(
        path.read_text().replace("- name: decision_announcement", "- name: window_opened")
    )
    result = quick(env, "--json", "validate")
    assert result.exit_code == 1
    messages = [r["message"] for r in json.loads(result.stdout)["rules"]]
    assert f"{path}: timers[5].name: duplicate timer 'window_opened'" in messages


def _remove_timer(path: Path, name: str, until: str) -> None:
    content = path.read_text()
    start = content.index(f"  - name: {name}")
    end = content.index(until, start)
    path.write_text(content[:start] + content[end:])


def test_removing_a_timer_that_fires_is_refused_unless_announced_or_allowed(
    env: dict[str, str], sqlite_url: str
) -> None:
    """A stray edit must not remove the legal closing sweep (FAQ 1.2, lines of the window)."""
    assert quick(env, "init").exit_code == 0
    assert quick(env, "timers", "list").exit_code == 0  # creates the campaign's timer rows
    assert pending_timers(sqlite_url)["window_closing"] == "pending"
    path = campaigns_dir(env) / CAMPAIGN
    before = path.read_text()
    _remove_timer(path, "window_closing", "  - name: opinion_reminder")
    for args in (("init",), ("scheduler", "tick", "--no-send"), ("case", "list")):
        refused = quick(env, *args)
        assert refused.exit_code == 1, (args, refused.output)
        flat = " ".join(refused.stderr.split())
        assert "'window_closing' (due 2023-09-22T22:00:00+00:00, fires lapse, " in flat
        assert "start_regional_review) is no longer in the file" in flat
        assert "cancelled: [{name: window_closing, on: YYYY-MM-DD, reason: ...}]" in flat
        assert "--allow-cancel" in flat
        no_traceback(refused)
    assert pending_timers(sqlite_url)["window_closing"] == "pending"  # nothing changed

    # Announced with a date and a reason: init cancels it and says so.
    path.write_text(
        path.read_text()
        + "cancelled:\n  - {name: window_closing, on: 2023-09-01, reason: fermeture reportée}\n"
    )
    done = quick(env, "init")
    assert done.exit_code == 0, done.output
    assert (
        "cancelled   ti-2023-2027 window_closing (was due 2023-09-22T22:00:00+00:00): "
        "taken out on 2023-09-01: fermeture reportée"
    ) in done.stdout
    assert "1 cancelled, 0 re-planned" in done.stdout
    assert pending_timers(sqlite_url)["window_closing"] == "cancelled"

    # Back in the file while listed as cancelled: the file is refused.
    path.write_text(before + "cancelled:\n  - {name: window_closing, on: 2023-09-01, reason: x}\n")
    result = quick(env, "--json", "validate")
    assert result.exit_code == 1
    assert [r["message"] for r in json.loads(result.stdout)["rules"]] == [
        f"{path}: cancelled[0].name: timer 'window_closing' is still in timers: "
        "(remove one or the other)"
    ]


def test_allow_cancel_and_reminders_are_cancelled_aloud_by_tick(
    env: dict[str, str], sqlite_url: str
) -> None:
    assert quick(env, "init").exit_code == 0
    assert quick(env, "timers", "list").exit_code == 0
    path = campaigns_dir(env) / CAMPAIGN
    _remove_timer(path, "regional_review_deadline", "  - name: decision_announcement")
    _remove_timer(path, "opinion_reminder", "  - name: decision_announcement")
    path.write_text(path.read_text().replace('time: "10:00"', 'time: "11:00"', 1))
    allowed = quick(
        env, "scheduler", "tick", "--no-send", "--allow-cancel", "--until", "2023-06-01"
    )
    assert allowed.exit_code == 0, allowed.output
    lines = allowed.stdout.splitlines()
    assert (
        "cancelled   ti-2023-2027 opinion_reminder.J-5 (was due 2023-10-08T07:00:00+00:00): "
        "removed from the file of campaign ti-2023-2027"
    ) in lines
    assert any(
        line.startswith("cancelled   ti-2023-2027 regional_review_deadline ") for line in lines
    )
    assert (
        "re-planned  ti-2023-2027 decision_announcement: "
        "due 2023-11-14T09:00:00+00:00 -> 2023-11-14T10:00:00+00:00"
    ) in lines
    timers = pending_timers(sqlite_url)
    assert timers["regional_review_deadline"] == timers["opinion_reminder.J-5"] == "cancelled"
    # A reminder alone needs no permission, and is still said.
    _remove_timer(path, "closing_reminder", "  - name: window_closing")
    again = quick(env, "scheduler", "tick", "--no-send", "--until", "2023-06-01")
    assert again.exit_code == 0, again.output
    assert "cancelled   ti-2023-2027 closing_reminder.J-14" in again.stdout


# --- item 3: ids are names -------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["../etc", "ti/2023", "TI-2023", "ti 2023", "ti-2023\\x", "ti\u00e9", '"a\\0b"', "''"]
)
def test_campaign_and_workflow_ids_are_names(env: dict[str, str], bad: str) -> None:
    path = campaigns_dir(env) / "other.yaml"
    path.write_text(f"campaign: {bad}\nwindow: {{opens_on: 2026-01-01, closes_on: 2026-02-01}}\n")
    result = quick(env, "--json", "validate", str(path))
    assert result.exit_code == 1, result.output
    [message] = [r["message"] for r in json.loads(result.stdout)["rules"]]
    assert message.startswith(f"{path}: campaign: the campaign id")
    assert "lower-case letters a-z, digits, '-' and '_' only" in message
    path.unlink()
    workflow = Path(env["TI_WORKFLOW_WORKFLOWS_DIR"]) / "candidacy.yaml"
    workflow.write_text(workflow.read_text().replace("workflow: candidacy", f"workflow: {bad}"))
    result = quick(env, "validate", str(workflow))
    assert result.exit_code == 1 and f"{workflow}: workflow: " in result.stderr


# --- item 6: no traceback ------------------------------------------------------------------


def test_impossible_dates_binary_and_deep_yaml_are_clear_errors_exit_2(
    env: dict[str, str],
) -> None:
    folder = campaigns_dir(env)
    path = folder / CAMPAIGN
    path.write_text(path.read_text().replace("closes_on: 2023-09-22", "closes_on: 2023-02-30"))
    for args in (("validate",), ("validate", str(path)), ("init",), ("case", "list")):
        result = quick(env, *args)
        assert result.exit_code == 2, (args, result.output)
        assert (
            f"{path}: not valid YAML at line 9, column 14: '2023-02-30' is not a valid date"
            in result.stderr.replace("\n", "")
        )
        no_traceback(result)
    path.write_bytes(b"campaign: x\n\xff\xfe\x00binary")
    result = quick(env, "validate", str(path))
    assert result.exit_code == 2 and "not valid YAML: the file is not UTF-8 text" in result.stderr
    path.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    result = quick(env, "validate", str(path))
    assert result.exit_code == 2 and "nested more than 32 levels deep" in result.stderr
    no_traceback(result)


@pytest.fixture
def ready(env: dict[str, str]) -> dict[str, str]:
    today_campaign = campaigns_dir(env) / "open-now.yaml"
    today_campaign.write_text(
        "campaign: open-now\nwindow: {opens_on: 2020-01-01, closes_on: 2099-12-31}\n"
    )
    assert quick(env, "init").exit_code == 0
    return env


def _create(env: dict[str, str], data: Path) -> Result:
    return quick(
        env,
        "case",
        "create",
        "--campaign",
        "open-now",
        "--as",
        "candidate:a@b.fr",
        "--data",
        str(data),
    )


def test_data_files_that_cannot_be_read_are_refused_exit_2(
    ready: dict[str, str], tmp_path: Path, sqlite_url: str
) -> None:
    good = json.dumps(candidacy())
    cases: dict[str, tuple[bytes, str]] = {
        "latin1": (json.dumps(candidacy(), ensure_ascii=False).encode("latin-1"), "not UTF-8"),
        "utf16": (good.encode("utf-16"), "holds NUL bytes (UTF-16 or binary?)"),
        "utf16le": (good.encode("utf-16-le"), "holds NUL bytes (UTF-16 or binary?)"),
        "deep": (b"[" * 100_000 + b"]" * 100_000, "nested 100000 levels deep; at most 32"),
        "big": (b" " * (300 * 1024) + b"{}", "over the limit of 256 KiB"),
        "surrogate": (
            json.dumps(candidacy(**{"x\ud800": 1})).encode(),
            "unable to parse raw data as a unicode string (got 'x\\ud800')",
        ),
        "nul": (
            json.dumps(candidacy(territory_name="Vall\u0000ée")).encode(),
            "--data territory_name: contains the NUL character (U+0000)",
        ),
    }
    for name, (content, expected) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(content)
        result = _create(ready, path)
        assert result.exit_code == 2, (name, result.output)
        assert expected in result.stderr.replace("\n", " "), (name, result.stderr)
        no_traceback(result)
    db = create_engine(sqlite_url)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == 0
    db.dispose()


def test_control_characters_and_strict_types_on_the_cli(
    ready: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "c.json"
    for data, where in (
        (candidacy(territory_name="Vallée\r\nBcc: x@y.fr"), "territory_name"),
        (candidacy(territory_name="Vallée \u202egpj.exe"), "territory_name"),
        (
            candidacy(action_plan=[{"title": "C", "priority": "skills", "already_started": "yes"}]),
            "action_plan[0].already_started",
        ),
    ):
        path.write_text(json.dumps(data))
        result = _create(ready, path)
        assert result.exit_code == 2, result.output
        assert f"  - {where}: " in result.stderr


def test_huge_numbers_and_control_characters_in_arguments_are_input_errors(
    ready: dict[str, str],
) -> None:
    for args, name in (
        (("case", "show", "99999999999999999999999"), "CASE_ID"),
        (("timers", "list", "--case", "99999999999999999999"), "--case"),
        (("notifications", "show", "9223372036854775808"), "MESSAGE"),
    ):
        result = quick(ready, *args)
        assert result.exit_code == 2, (args, result.output)
        assert f"{name}: " in result.stderr and "is too large (at most 2147483647)" in result.stderr
        no_traceback(result)
    for args, name in (
        (("tokens", "create", "ara\u202eregion"), "USER"),
        (("case", "list", "--campaign", "ti-2023\nx"), "--campaign"),
    ):
        result = quick(ready, *args)
        assert result.exit_code == 2, (args, result.output)
        assert f"{name}: contains" in result.stderr, result.stderr


def test_data_from_dev_zero_stops_at_once(ready: dict[str, str]) -> None:
    """A real process (the issue saw ``--data /dev/zero`` grow to 23 GB)."""
    started = time.monotonic()
    result = subprocess.run(
        [*CREATE, "--data", "/dev/zero"],
        capture_output=True,
        text=True,
        env=ready,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "over the limit of 256 KiB" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 60
    deep = subprocess.run(
        [*CREATE, "--data", "-"],
        input="[" * 50_000,
        capture_output=True,
        text=True,
        env=ready,
        timeout=60,
    )
    assert deep.returncode == 2 and "levels deep" in deep.stderr, deep.stderr
    assert "Traceback" not in deep.stderr
