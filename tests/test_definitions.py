"""Workflow files: every shipped file is valid; each kind of mistake is reported with its path."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ti_workflow.definitions.loader import load_definition, parse_definition, parse_yaml_text
from ti_workflow.domain.machine import CompiledMachine
from ti_workflow.errors import InvalidDefinition
from ti_workflow.settings import Settings

WORKFLOW_FILES = Settings().workflow_files()
CLI = [sys.executable, "-m", "ti_workflow.cli"]

MINIMAL = """
workflow: tiny
form: candidacy
initial: draft
create: {roles: [candidate]}
states:
  draft: {}
  done: {final: true}
transitions:
  - {trigger: finish, source: draft, dest: done, roles: [candidate]}
"""


def errors_of(yaml_text: str) -> list[str]:
    with pytest.raises(InvalidDefinition) as exc:
        parse_definition(parse_yaml_text(textwrap.dedent(yaml_text)), "workflows/tiny.yaml")
    return list(exc.value.errors)


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_each_shipped_workflow_file_loads_and_compiles(path: Path) -> None:
    definition = load_definition(path)
    machine = CompiledMachine(definition)
    assert definition.initial in definition.state_names
    for t in definition.transitions:
        for source in t.sources:
            assert machine.step(source, t.trigger) == t.dest
    assert machine.mermaid().startswith("stateDiagram-v2")


def test_candidacy_has_the_states_the_programme_needs() -> None:
    d = load_definition(Settings().workflows_dir / "candidacy.yaml")
    assert set(d.state_names) == {
        "draft",
        "submitted",
        "regional_review",
        "national_review",
        "labelled",
        "not_selected",
        "withdrawn",
        "lapsed",
    }
    assert {s.name for s in d.states if s.final} == {
        "labelled",
        "not_selected",
        "withdrawn",
        "lapsed",
    }


def test_version_is_content_hash_ignoring_comments() -> None:
    a = parse_definition(parse_yaml_text(MINIMAL), "a.yaml")
    b = parse_definition(parse_yaml_text("# comment\n" + MINIMAL), "b.yaml")
    c = parse_definition(parse_yaml_text(MINIMAL.replace("finish", "complete")), "c.yaml")
    assert a.version == b.version != c.version
    assert len(a.version) == 64


def test_minimal_definition_is_valid() -> None:
    assert parse_definition(parse_yaml_text(MINIMAL), "tiny.yaml").name == "tiny"


def test_unknown_state_names_file_and_path() -> None:
    errors = errors_of(MINIMAL.replace("dest: done", "dest: labeled"))
    assert (
        "workflows/tiny.yaml: transitions[0].dest: unknown state 'labeled' (known: done, draft)"
        in errors
    )


def test_unreachable_state() -> None:
    errors = errors_of(
        MINIMAL.replace("  done: {final: true}", "  done: {final: true}\n  orphan: {final: true}")
    )
    assert any("states.orphan: unreachable state" in e for e in errors)


def test_unknown_guard_role_effect() -> None:
    errors = errors_of(
        MINIMAL.replace(
            "roles: [candidate]}", "roles: [mayor], guards: [is_sunny], effects: [nap]}"
        )
    )
    joined = "\n".join(errors)
    assert "transitions[0].roles[0]: unknown role 'mayor'" in joined
    assert "transitions[0].guards[0]: unknown guard 'is_sunny'" in joined
    assert "transitions[0].effects[0]: unknown effect 'nap'" in joined


def test_duplicate_trigger_from_one_source() -> None:
    errors = errors_of(
        MINIMAL + "  - {trigger: finish, source: draft, dest: draft, roles: [candidate]}\n"
    )
    assert any(
        "transitions[1].trigger: duplicate trigger 'finish' from state 'draft'" in e for e in errors
    )


def test_dead_end_non_final_state() -> None:
    errors = errors_of(MINIMAL.replace("done: {final: true}", "done: {}"))
    assert any("states.done: dead end" in e for e in errors)


@pytest.mark.parametrize("word", ["on", "no", "yes", "off"])
def test_yaml_booleans_as_names_are_refused(word: str) -> None:
    errors = errors_of(MINIMAL.replace("trigger: finish", f"trigger: {word}"))
    assert any(
        f"transitions[0].trigger: trigger {word!r} is a boolean in YAML 1.1" in e for e in errors
    )


def test_every_error_is_reported_not_just_the_first() -> None:
    broken = MINIMAL.replace("dest: done", "dest: nowhere").replace(
        "roles: [candidate]}", "roles: [king]}"
    )
    errors = errors_of(broken + "typo_key: 1\n")
    assert len(errors) >= 3
    assert any(e.startswith("workflows/tiny.yaml: typo_key: unknown key") for e in errors)


def test_validate_cli_exits_1_listing_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        MINIMAL.replace("dest: done", "dest: labeled").replace("trigger: finish", "trigger: on")
    )
    worse = tmp_path / "worse.yaml"
    worse.write_text("workflow: [unclosed\n")
    result = subprocess.run(
        [*CLI, "validate", str(bad), str(worse)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"{bad}: transitions[0].dest: unknown state 'labeled'" in result.stderr
    assert f"{bad}: transitions[0].trigger: trigger 'on' is a boolean" in result.stderr
    assert f"{worse}: not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr
    ok = subprocess.run([*CLI, "validate"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "candidacy.yaml" in ok.stdout


def test_unknown_create_guard() -> None:
    errors = errors_of(
        MINIMAL.replace("create: {roles: [candidate]}", "create: {roles: [candidate], guards: [x]}")
    )
    assert any("create.guards[0]: unknown guard 'x' (known: " in e for e in errors)
