"""The hash chain covers the documents: ``audit verify`` names a missing or altered letter
(case, event, field path), ``audit export`` lists every document's hash and can copy the
documents for the offline check. SQLite and PostgreSQL.

FAQ 4.5 (lines 222-226): letters of intent are part of the candidacy file.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import AUDITOR, CANDIDATE
from files_support import (
    files_engine_fixture,  # noqa: F401 (the files_engine fixture)
    minimal_pdf,
    with_letter,
)
from ti_workflow.audit import offline
from ti_workflow.audit.errors import AuditFailed
from ti_workflow.audit.export import export
from ti_workflow.audit.verify import verify
from ti_workflow.engine import Engine
from ti_workflow.files.refs import file_refs

OFFLINE = Path(offline.__file__)


def two_letters(engine: Engine) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """A draft with one letter, then an update adding a second: events #1 and #2."""
    first = engine.files.put(minimal_pdf("Lettre de l'elue"), name="élue.pdf").as_ref()
    second = engine.files.put(minimal_pdf("Lettre de l'industriel"), name="industriel.pdf")
    case = engine.create_case("candidacy", "ti-2023-2027", with_letter(first), CANDIDATE)
    engine.update_data(case.id, with_letter(first, second.as_ref()), CANDIDATE)
    return case.id, first, second.as_ref()


def writable(engine: Engine, sha: str) -> Path:
    path = engine.files.path(sha)
    path.chmod(0o644)
    return path


def test_verify_passes_with_every_document_in_place(files_engine: Engine) -> None:
    two_letters(files_engine)
    report = verify(files_engine)
    assert report.ok, report.findings
    assert report.events == 2


def test_verify_names_a_deleted_document(files_engine: Engine) -> None:
    case_id, _, second = two_letters(files_engine)
    files_engine.files.path(second["sha256"]).unlink()
    (finding,) = verify(files_engine).findings
    assert (finding.case_id, finding.seq, finding.code) == (case_id, 2, "file_missing")
    assert "data.letters_of_intent[1].file" in finding.message
    assert "industriel.pdf" in finding.message and second["sha256"] in finding.message


def test_verify_names_an_altered_document(files_engine: Engine) -> None:
    case_id, first, _ = two_letters(files_engine)
    writable(files_engine, first["sha256"]).write_bytes(minimal_pdf("Lettre de l'elve"))
    report = verify(files_engine, case_id)
    assert [(f.case_id, f.seq, f.code) for f in report.findings] == [(case_id, 1, "file_altered")]
    assert "data.letters_of_intent[0].file" in report.findings[0].message


def test_quick_verify_checks_chains_only(files_engine: Engine) -> None:
    _, first, _ = two_letters(files_engine)
    files_engine.files.path(first["sha256"]).unlink()
    assert verify(files_engine, quick=True).ok
    assert not verify(files_engine).ok


def test_every_case_sharing_a_document_is_named(files_engine: Engine) -> None:
    shared = files_engine.files.put(minimal_pdf(), name="commune.pdf").as_ref()
    ids = [
        files_engine.create_case("candidacy", "ti-2023-2027", with_letter(shared), CANDIDATE).id
        for _ in range(2)
    ]
    files_engine.files.path(shared["sha256"]).unlink()
    assert [(f.case_id, f.code) for f in verify(files_engine).findings] == [
        (ids[0], "file_missing"),
        (ids[1], "file_missing"),
    ]


def export_lines(engine: Engine, **kwargs: Any) -> list[dict[str, Any]]:
    out = io.StringIO()
    export(engine, out, "jsonl", **kwargs)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_export_lists_the_documents_hashes(files_engine: Engine) -> None:
    case_id, first, second = two_letters(files_engine)
    lines = export_lines(files_engine)
    files = [line for line in lines if line["kind"] == "file"]
    assert files == sorted(
        [
            {
                "kind": "file",
                "cases": [case_id],
                **{k: first[k] for k in ("sha256", "name", "size")},
            },
            {
                "kind": "file",
                "cases": [case_id],
                **{k: second[k] for k in ("sha256", "name", "size")},
            },
        ],
        key=lambda f: f["sha256"],
    )
    assert lines[-1] == {"kind": "end", "events": 2, "files": 2}
    # the events themselves carry the references their hash covers
    assert [ref["sha256"] for _, ref in file_refs(lines[2]["payload"])] == [
        first["sha256"],
        second["sha256"],
    ]


def run_offline(export_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-S", str(OFFLINE), str(export_file), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_exported_documents_are_checked_offline(files_engine: Engine, tmp_path: Path) -> None:
    case_id, first, second = two_letters(files_engine)
    target = tmp_path / "export.jsonl"
    documents = tmp_path / "documents"
    with target.open("w", encoding="utf-8") as f:
        export(files_engine, f, "jsonl", documents=documents)
    assert sorted(p.name for p in documents.iterdir()) == sorted(
        f"{r['sha256']}.pdf" for r in (first, second)
    )
    ok = run_offline(target, "--files", str(documents))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "2 events, 1 cases: OK" in ok.stdout

    (documents / f"{second['sha256']}.pdf").write_bytes(minimal_pdf("autre"))
    (documents / f"{first['sha256']}.pdf").unlink()
    bad = run_offline(target, "--files", str(documents))
    assert bad.returncode == 1
    assert f"case {case_id}, event #1: data.letters_of_intent[0].file: file_missing" in bad.stdout
    assert f"case {case_id}, event #2: data.letters_of_intent[1].file: file_altered" in bad.stdout

    # a document line removed from the export is noticed even without the documents
    kept = [
        line
        for line in target.read_text(encoding="utf-8").splitlines()
        if first["sha256"] not in line or '"kind":"event"' in line
    ]
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(kept) + "\n", encoding="utf-8")
    result = run_offline(cut)
    assert result.returncode == 1
    assert "has no file line" in result.stdout
    assert "the trailer announces 2 documents, the file lists 1" in result.stdout


def test_export_with_documents_names_a_missing_one(files_engine: Engine, tmp_path: Path) -> None:
    case_id, first, _ = two_letters(files_engine)
    files_engine.files.path(first["sha256"]).unlink()
    with pytest.raises(AuditFailed) as failed:
        export(files_engine, io.StringIO(), "jsonl", documents=tmp_path / "documents")
    assert [(f.case_id, f.code) for f in failed.value.findings] == [(case_id, "file_missing")]
    assert len(list((tmp_path / "documents").iterdir())) == 1


def test_offline_and_package_find_the_same_references() -> None:
    data = {"a": [{"file": {"sha256": "x", "size": 1}}, {"b": {"file": {"sha256": "y"}}}]}
    assert list(offline.file_refs(data)) == list(file_refs(data))


def test_cli_verify_exits_1_naming_the_missing_document(
    files_engine: Engine, tmp_path: Path
) -> None:
    if not str(files_engine.db.url).startswith("sqlite"):
        pytest.skip("one process run is enough (SQLite)")
    case_id, _, second = two_letters(files_engine)
    env = {**os.environ, "TI_WORKFLOW_FILES_DIR": str(tmp_path / "files")}
    db = str(files_engine.db.url)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ti_workflow.cli", "--db", db, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    assert run("audit", "verify").returncode == 0
    files_engine.files.path(second["sha256"]).unlink()
    result = run("audit", "verify")
    assert result.returncode == 1
    assert f"case {case_id}, event #2: [file_missing] data.letters_of_intent[1].file" in (
        " ".join(result.stderr.split())
    )
    parallel = run("audit", "verify", "--workers", "2")  # forked workers check documents too
    assert parallel.returncode == 1
    assert "[file_missing] data.letters_of_intent[1].file" in " ".join(parallel.stderr.split())
    assert files_engine.get(case_id, AUDITOR).version == 2
