"""Exports (JSONL, CSV) and the offline verifier, which needs no database library at all."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from audit_scenario import rewrite_chain, run_campaign
from conftest import EngineFactory, paris
from ti_workflow.audit import offline
from ti_workflow.audit.checkpoints import take_checkpoint
from ti_workflow.audit.export import export
from ti_workflow.audit.snapshot import parse_at
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.events import canonical_json
from ti_workflow.errors import InvalidData

OFFLINE = Path(offline.__file__)


def verify_alone(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``python -I -S offline.py``: isolated, no site-packages, so no database library exists."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(OFFLINE), str(path), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_jsonl_export_verifies_offline_and_tampering_is_located(
    db_url: str, make_engine: EngineFactory, clock: SimulatedClock, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    run = run_campaign(engine, clock)
    path = tmp_path / "events.jsonl"
    with path.open("w", encoding="utf-8") as f:
        assert export(engine, f, "jsonl") == 28
    result = verify_alone(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "28 events, 5 cases: OK" in result.stdout

    lines = path.read_text(encoding="utf-8").splitlines()
    rejected = run.ids["rejected"]
    index = next(
        i for i, line in enumerate(lines) if f'"case_id":{rejected},' in line and '"seq":4,' in line
    )
    edited = lines.copy()
    edited[index] = edited[index].replace("unfavourable", "favourable")
    swapped = lines.copy()
    swapped[index], swapped[index + 1] = swapped[index + 1], swapped[index]
    cases = {
        "edited": (edited, f"case {rejected}, event #4: hash_mismatch"),
        "deleted": (lines[:index] + lines[index + 1 :], f"case {rejected}, event #5: sequence_gap"),
        "swapped": (swapped, f"case {rejected}, event #5: sequence_gap"),
        "truncated": (lines[:-1], "no trailer line"),
    }
    for name, (content, expected) in cases.items():
        bad = tmp_path / f"{name}.jsonl"
        bad.write_text("\n".join(content) + "\n", encoding="utf-8")
        result = verify_alone(bad)
        assert result.returncode == 1, name
        assert expected in result.stdout, (name, result.stdout)


def test_offline_checkpoint_catches_a_consistent_rewrite(
    sqlite_url: str, make_engine: EngineFactory, clock: SimulatedClock, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    run = run_campaign(engine, clock)
    checkpoint = tmp_path / "checkpoint.json"
    checkpoint.write_text(json.dumps(take_checkpoint(engine).as_dict()))
    rewrite_chain(engine, run.ids["withdrawn"], 3, at=paris("2023-09-03T16:00:00"))
    path = tmp_path / "forged.jsonl"
    with path.open("w", encoding="utf-8") as f:
        export(engine, f, "jsonl")
    assert verify_alone(path).returncode == 0, "the forged export is self-consistent"
    result = verify_alone(path, "--checkpoint", str(checkpoint))
    assert result.returncode == 1
    assert f"case {run.ids['withdrawn']}, event #3 had hash" in result.stdout


def test_csv_export_and_filters(
    sqlite_url: str, make_engine: EngineFactory, clock: SimulatedClock
) -> None:
    engine = make_engine(sqlite_url)
    run = run_campaign(engine, clock)
    out = io.StringIO()
    since = parse_at("2023-10-31T00:00:00")
    assert export(engine, out, "csv", since=since) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["trigger"] for r in rows] == ["label", "reject", "label"]
    assert rows[1]["at_paris"] == "2023-10-31T15:00:00+01:00"
    assert json.loads(rows[1]["payload"]) == {"reason": "périmètre peu cohérent"}
    one = io.StringIO()
    assert export(engine, one, "jsonl", case_id=run.ids["draft"]) == 2
    assert offline.check_lines(one.getvalue().splitlines()) == (1, 2, [])
    with pytest.raises(InvalidData, match="allowed: jsonl, csv"):
        export(engine, io.StringIO(), "xml")


def test_the_offline_hash_is_the_engines_hash() -> None:
    value = {"é": ["ü", 1.5, None, True], "b": {"z": 1, "a": '\u2028"quote"'}, "a": 0}
    assert offline.canonical_json(value) == canonical_json(value)


def test_cli_export_then_verify_export(
    sqlite_url: str, make_engine: EngineFactory, clock: SimulatedClock, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    run_campaign(engine, clock)
    path = tmp_path / "since.jsonl"
    base = [sys.executable, "-m", "ti_workflow.cli", "--db", sqlite_url, "audit"]
    made = subprocess.run(
        [*base, "export", "--format", "jsonl", "--since", "2023-10-02", "--out", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    # Chains start mid-way after --since: still checked from their first exported event.
    checked = subprocess.run(
        [*base, "verify-export", str(path)], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "events, 3 cases: OK" in checked.stdout
