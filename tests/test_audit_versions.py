"""Definition versions: a changed ``workflows/candidacy.yaml`` is a new version, old cases
keep replaying under theirs, ``workflows diff`` shows the change and ``cases migrate``
moves in-flight cases (one hash-chained ``migrate`` event each), or refuses and moves none."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import AUDITOR, COMMITTEE, SYSTEM, candidacy, give_all_opinions
from ti_workflow.audit.history import replay_case
from ti_workflow.audit.verify import verify
from ti_workflow.audit.versions import MigrationRefused, diff, migrate, resolve_definition
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.definitions.loader import load_definition
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.errors import Forbidden, InvalidData, NotFound
from ti_workflow.settings import Settings

CANDIDATE = Actor("candidate", email="ti@arve.example.org")

ON_HOLD_STATE = "  on_hold:         {label_fr: En attente, label_en: On hold}\n"
ON_HOLD_TRANSITIONS = """
  - trigger: hold
    label_fr: Mettre en attente
    source: national_review
    dest: on_hold
    roles: [national_committee]

  - trigger: resume
    label_fr: Reprendre
    source: on_hold
    dest: national_review
    roles: [national_committee]
"""


def workflows_copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(Settings().workflows_dir, target)
    return target


def with_on_hold(tmp_path: Path) -> Path:
    """Version 2: the national committee may put a candidacy on hold."""
    d = workflows_copy(tmp_path, "v2")
    path = d / "candidacy.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("  lapsed:", ON_HOLD_STATE + "  lapsed:", 1)
    text = text.replace("\ntimers:", ON_HOLD_TRANSITIONS + "\ntimers:", 1)
    path.write_text(text, encoding="utf-8")
    return d


def without_draft(tmp_path: Path) -> Path:
    """Version 3: the draft state is renamed, so a draft case has nowhere to go."""
    d = workflows_copy(tmp_path, "v3")
    for path in (d / "candidacy.yaml", d / "campaigns" / "ti-2023-2027.yaml"):
        path.write_text(
            path.read_text(encoding="utf-8").replace("draft", "brouillon"), encoding="utf-8"
        )
    return d


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    opened: list[Engine] = []
    yield opened
    for e in opened:
        e.db.dispose()


def open_with(
    url: str, workflows: Path | None, clock: SimulatedClock, opened: list[Engine]
) -> Engine:
    settings = (
        Settings(db_url=url) if workflows is None else Settings(db_url=url, workflows_dir=workflows)
    )
    engine = open_engine(settings, clock)
    opened.append(engine)
    return engine


def test_old_cases_replay_under_their_version_and_migrate_into_the_new(
    db_url: str, clock: SimulatedClock, engines: list[Engine], tmp_path: Path
) -> None:
    v1 = open_with(db_url, None, clock, engines)
    in_review = v1.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE).id
    v1.fire(in_review, "submit", CANDIDATE)
    v1.fire(in_review, "start_regional_review", SYSTEM)
    draft = v1.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE).id
    old_version = v1.get(in_review, AUDITOR).definition_version

    v2 = open_with(db_url, with_on_hold(tmp_path), clock, engines)
    new_version = v2.catalog.current["candidacy"]
    assert new_version != old_version
    fresh = v2.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE).id
    assert v2.get(fresh, AUDITOR).definition_version == new_version
    assert v2.get(in_review, AUDITOR).definition_version == old_version
    assert verify(v2).ok

    changes = diff(v2.catalog.definition(old_version), v2.catalog.definition(new_version))
    assert {(c["what"], c["name"]) for c in changes["changes"]} == {
        ("state added", "on_hold"),
        ("transition added", "hold from national_review"),
        ("transition added", "resume from on_hold"),
    }

    plan = migrate(v2, new_version[:10], COMMITTEE, dry_run=True)
    assert [m["case_id"] for m in plan.moves] == [in_review, draft]
    assert plan.moves[0]["triggers_added"] == [] and plan.refusals == []
    assert v2.get(in_review, AUDITOR).definition_version == old_version, "dry run wrote nothing"

    with pytest.raises(Forbidden):
        migrate(v2, new_version, Actor("auditor"))
    done = migrate(v2, new_version, COMMITTEE)
    assert [m["case_id"] for m in done.moves] == [in_review, draft]
    moved = v2.get(in_review, AUDITOR)
    assert moved.definition_version == new_version and moved.state == "regional_review"
    last = v2.history(in_review, AUDITOR)[-1]
    assert (last.trigger, last.role, last.payload) == (
        "migrate",
        "national_committee",
        {"from_version": old_version, "to_version": new_version},
    )

    # The moved case now takes a trigger only version 2 has; replay follows the change.
    give_all_opinions(v2, in_review)
    v2.fire(in_review, "hold", COMMITTEE)
    result = replay_case(v2, in_review)
    assert result.case.state == "on_hold" and result.differences == []
    assert [s["trigger"] for s in result.steps][3] == "migrate"
    assert verify(v2).ok
    assert migrate(v2, new_version, COMMITTEE).moves == [], "nothing left to move"


def test_a_move_to_a_version_without_the_cases_state_is_refused_and_moves_nothing(
    db_url: str, clock: SimulatedClock, engines: list[Engine], tmp_path: Path
) -> None:
    v1 = open_with(db_url, None, clock, engines)
    in_review = v1.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE).id
    v1.fire(in_review, "submit", CANDIDATE)
    draft = v1.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE).id
    v3 = open_with(db_url, without_draft(tmp_path), clock, engines)
    target = v3.catalog.current["candidacy"]
    plan = migrate(v3, target, COMMITTEE, dry_run=True)
    assert [r["case_id"] for r in plan.refusals] == [draft]
    assert "'draft' does not exist" in plan.refusals[0]["reason"]
    with pytest.raises(MigrationRefused, match=f"case {draft}"):
        migrate(v3, target, COMMITTEE)
    assert all(v3.get(c, AUDITOR).definition_version != target for c in (in_review, draft))
    assert all(e.trigger != "migrate" for e in v3.history(in_review, AUDITOR))
    assert migrate(v3, target, COMMITTEE, case_ids=[in_review]).moves[0]["case_id"] == in_review
    with pytest.raises(NotFound):
        resolve_definition(v3, "abcdef012345")
    with pytest.raises(InvalidData, match="hash prefix"):
        resolve_definition(v3, "not-a-version")


def test_cli_diff_and_migrate(
    sqlite_url: str, clock: SimulatedClock, engines: list[Engine], tmp_path: Path
) -> None:
    v1 = open_with(sqlite_url, None, clock, engines)
    case_id = v1.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE).id
    v2_dir = with_on_hold(tmp_path)
    v2 = load_definition(v2_dir / "candidacy.yaml")
    env = {
        "TI_WORKFLOW_DB": sqlite_url,
        "TI_WORKFLOW_WORKFLOWS_DIR": str(v2_dir),
        "PATH": "/usr/bin:/bin",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ti_workflow.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    shown = run(
        "workflows",
        "diff",
        str(Settings().workflows_dir / "candidacy.yaml"),
        str(v2_dir / "candidacy.yaml"),
    )
    assert shown.returncode == 0, shown.stderr
    assert "state added: on_hold" in shown.stdout
    assert "transition added: hold from national_review" in shown.stdout
    dry = run("--json", "cases", "migrate", "--to", v2.version[:12], "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["moves"][0]["case_id"] == case_id
    moved = run("cases", "migrate", "--to", v2.version[:12])
    assert moved.returncode == 0, moved.stderr
    assert f"moved 1 case(s) to {v2.version[:12]}" in moved.stdout
