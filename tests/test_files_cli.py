"""``ti-workflow file put`` and ``case file`` as a user runs them (a real process, SQLite).

FAQ 4.5 (lines 222-226): the letters of intent the candidacy file carries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CANDIDATE
from files_support import minimal_pdf, padded_pdf, with_letter
from test_files_store import png_bytes
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.files import MAX_BYTES
from ti_workflow.settings import Settings

CLI = [sys.executable, "-m", "ti_workflow.cli"]


@pytest.fixture
def env(sqlite_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TI_WORKFLOW_DB": sqlite_url,
        "TI_WORKFLOW_FILES_DIR": str(tmp_path / "files"),
    }


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_put_refer_and_download(env: dict[str, str], tmp_path: Path, clock: SimulatedClock) -> None:
    pdf = tmp_path / "lettre élue.pdf"
    pdf.write_bytes(minimal_pdf())
    put = run(env, "file", "put", str(pdf), "--as", "candidate:ti@arve.example.org")
    assert put.returncode == 0, put.stderr
    ref = json.loads(put.stdout)
    assert ref["name"] == "lettre élue.pdf" and ref["size"] == len(minimal_pdf())
    # the case itself is filed in the 2023 window (simulated clock); the CLI reads it
    engine = open_engine(
        Settings(db_url=env["TI_WORKFLOW_DB"], files_dir=tmp_path / "files"), clock
    )
    case_id = str(engine.create_case("candidacy", "ti-2023-2027", with_letter(ref), CANDIDATE).id)
    engine.db.dispose()

    out = tmp_path / "copie.pdf"
    got = run(
        env,
        "case",
        "file",
        case_id,
        ref["sha256"],
        "--out",
        str(out),
        "--as",
        "regional_council:84",
    )
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == minimal_pdf()
    assert "lettre élue.pdf" in got.stderr

    hidden = run(
        env,
        "case",
        "file",
        case_id,
        ref["sha256"],
        "--out",
        str(tmp_path / "x.pdf"),
        "--as",
        "candidate:autre@example.org",
    )
    assert hidden.returncode == 1
    assert f"unknown case {case_id}" in flat(hidden.stderr)
    assert not (tmp_path / "x.pdf").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (png_bytes(), "Le fichier n'est pas un PDF"),
        (padded_pdf(MAX_BYTES + 1), "Le fichier dépasse 10\u00a0Mo"),
    ],
    ids=["png-renamed-pdf", "10-mib-plus-one"],
)
def test_a_refused_file_exits_2(
    env: dict[str, str], tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "lettre.pdf"
    path.write_bytes(content)
    result = run(env, "file", "put", str(path), "--as", "candidate:ti@arve.example.org")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "files").exists()


def test_usage_errors(env: dict[str, str], tmp_path: Path) -> None:
    missing = run(env, "file", "put", str(tmp_path / "absent.pdf"), "--as", "candidate:a@b.fr")
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    pdf = tmp_path / "l.pdf"
    pdf.write_bytes(minimal_pdf())
    assert run(env, "file", "put", str(pdf), "--as", "auditor").returncode == 1
    assert run(env, "file", "put", str(pdf)).returncode == 2  # --as is required
