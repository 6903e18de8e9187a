"""The document store: PDF only (judged by content), at most 10 MiB, content-addressed,
durable and idempotent; case data may only refer to what it holds (SQLite and PostgreSQL).

FAQ 4.5 (lines 222-226): the candidacy form asks for letters of intent (« lettre
d'engagement ») from the elected officials, industrialists and other actors.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import AUDITOR, CANDIDATE, candidacy
from files_support import (
    files_engine_fixture,  # noqa: F401 (the files_engine fixture)
    minimal_pdf,
    padded_pdf,
    with_letter,
)
from ti_workflow.engine import Engine
from ti_workflow.errors import InvalidData
from ti_workflow.files import MAX_BYTES, FileMissing, FileRefused, FileStore, StoredFile
from ti_workflow.files.errors import FileAltered
from ti_workflow.settings import Settings, default_files_dir
from ti_workflow.storage.repository import cases


def png_bytes() -> bytes:
    """A real 1x1 PNG image."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files")


def stored_paths(store: FileStore) -> list[Path]:
    return sorted(p for p in store.root.rglob("*") if p.is_file()) if store.root.exists() else []


# --- the store on its own ---------------------------------------------------------------


def test_put_is_content_addressed_and_idempotent(store: FileStore) -> None:
    pdf = minimal_pdf()
    first = store.put(pdf, name="lettre-élue.pdf")
    again = store.put(pdf, name="autre nom.pdf")
    assert first.sha256 == again.sha256 == hashlib.sha256(pdf).hexdigest()
    assert first.as_ref() == {
        "sha256": first.sha256,
        "name": "lettre-élue.pdf",
        "size": len(pdf),
        "media_type": "application/pdf",
    }
    assert again.name == "autre nom.pdf"
    assert stored_paths(store) == [store.root / first.sha256[:2] / first.sha256]
    assert store.read(first.sha256) == pdf
    assert store.check(first.as_ref()) is None


def test_put_repairs_an_altered_copy(store: FileStore) -> None:
    pdf = minimal_pdf()
    ref = store.put(pdf, name="a.pdf")
    path = store.path(ref.sha256)
    path.chmod(0o644)
    path.write_bytes(pdf.replace(b"Lettre", b"Lettrf"))
    assert store.check(ref.as_ref()) == "altered"
    store.put(pdf, name="a.pdf")
    assert store.check(ref.as_ref()) is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (png_bytes(), "not_pdf"),
        (b"<html><body>%PDF-1.4 " + minimal_pdf() + b"</body></html>", "not_pdf"),
        (b"%PDF-1.4\n" + b"hello world " * 100, "unreadable_pdf"),
        (minimal_pdf()[: len(minimal_pdf()) // 2], "unreadable_pdf"),
        (minimal_pdf() + b"\n" * 2048, "unreadable_pdf"),
        (
            minimal_pdf().replace(b"/Kids [3 0 R] /Count 1", b"/Kids [] /Count 0"),
            "unreadable_pdf",
        ),
    ],
    ids=[
        "empty",
        "png-named-pdf",
        "html-with-pdf-inside",
        "junk",
        "truncated",
        "long-tail-after-end",
        "no-page",
    ],
)
def test_refuses_what_is_not_a_readable_pdf(store: FileStore, content: bytes, reason: str) -> None:
    with pytest.raises(FileRefused) as refused:
        store.put(content, name="lettre.pdf")
    assert refused.value.reason == reason
    assert refused.value.message_fr.startswith("Le ")
    assert stored_paths(store) == []


def test_refusal_messages_read_as_french() -> None:
    assert "n'est pas un PDF\u00a0:" in FileRefused("not_pdf").message_fr
    assert "dépasse 10\u00a0Mo" in FileRefused("too_large").message_fr


def test_size_limit_is_10_mib_exactly(store: FileStore) -> None:
    at_limit = padded_pdf(MAX_BYTES)
    assert store.put(at_limit, name="gros.pdf").size == MAX_BYTES == 10 * 1024 * 1024
    with pytest.raises(FileRefused) as refused:
        store.put(padded_pdf(MAX_BYTES + 1), name="trop-gros.pdf")
    assert refused.value.reason == "too_large"
    assert len(stored_paths(store)) == 1


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\élu\\lettre.pdf", "lettre.pdf"),
        ("lettre\r\nX-Injected: 1.pdf", "lettreX-Injected: 1.pdf"),
        ("\u202egpj.pdf", "gpj.pdf"),
        ("lettre", "lettre.pdf"),
        ("   ", "document.pdf"),
        ("a" * 300 + ".pdf", "a" * 251 + ".pdf"),
    ],
)
def test_names_are_sanitised(store: FileStore, given: str, kept: str) -> None:
    assert store.put(minimal_pdf(), name=given).name == kept


def test_read_and_check_a_missing_or_altered_file(store: FileStore) -> None:
    ref = store.put(minimal_pdf(), name="a.pdf")
    assert store.check({**ref.as_ref(), "size": ref.size + 1}) == "size_mismatch"
    assert store.check({**ref.as_ref(), "sha256": "../" + "0" * 61}) == "missing"
    with pytest.raises(FileMissing):
        store.read("0" * 64)
    with pytest.raises(FileMissing):
        store.read("../../x")
    path = store.path(ref.sha256)
    path.chmod(0o644)
    path.write_bytes(minimal_pdf("Lettre falsifiee"))
    with pytest.raises(FileAltered):
        store.read(ref.sha256)
    path.unlink()
    assert store.check(ref.as_ref()) == "missing"


def test_default_directory_is_beside_the_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "campagne.db"
    assert default_files_dir(f"sqlite:///{db}") == tmp_path / "campagne-files"
    assert default_files_dir("sqlite:///ti_workflow.db") == Path("ti_workflow-files")
    assert default_files_dir("postgresql+psycopg://u@h/db") == Path("ti_workflow_files")
    assert Settings(db_url=f"sqlite:///{db}").files_root == tmp_path / "campagne-files"
    explicit = Settings(db_url=f"sqlite:///{db}", files_dir=tmp_path / "ailleurs")
    assert explicit.files_root == tmp_path / "ailleurs"


def test_files_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TI_WORKFLOW_FILES_DIR", str(tmp_path / "docs"))
    assert Settings.from_env().files_root == tmp_path / "docs"


# --- case data refers to stored files (both databases) ----------------------------------


def count_cases(engine: Engine) -> int:
    with engine.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(cases)).scalar_one())


def test_engine_exposes_the_configured_store(files_engine: Engine, tmp_path: Path) -> None:
    assert isinstance(files_engine.files, FileStore)
    assert files_engine.files.root == tmp_path / "files"


def test_a_case_records_its_letter_in_the_chained_event(files_engine: Engine) -> None:
    ref = files_engine.files.put(minimal_pdf(), name="lettre.pdf")
    case = files_engine.create_case(
        "candidacy", "ti-2023-2027", with_letter(ref.as_ref()), CANDIDATE
    )
    assert case.data["letters_of_intent"][0]["file"] == ref.as_ref()
    (event,) = files_engine.history(case.id, AUDITOR)
    assert event.payload["data"]["letters_of_intent"][0]["file"] == ref.as_ref()
    assert event.compute_hash() == event.hash


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"sha256": "ab" * 32}, "no stored file has this SHA-256"),
        ({"size": 1}, "size does not match"),
    ],
    ids=["unknown-hash", "wrong-size"],
)
def test_a_reference_to_what_the_store_lacks_is_refused(
    files_engine: Engine, change: dict[str, Any], problem: str
) -> None:
    ref = {**files_engine.files.put(minimal_pdf(), name="l.pdf").as_ref(), **change}
    with pytest.raises(InvalidData) as refused:
        files_engine.create_case("candidacy", "ti-2023-2027", with_letter(ref), CANDIDATE)
    (error,) = refused.value.errors
    assert error.location == "letters_of_intent[0].file"
    assert problem in error.message
    assert count_cases(files_engine) == 0


def test_an_update_with_an_unknown_reference_changes_nothing(files_engine: Engine) -> None:
    case = files_engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    with pytest.raises(InvalidData) as refused:
        files_engine.update_data(
            case.id, with_letter({"sha256": "cd" * 32, "name": "x.pdf", "size": 9}), CANDIDATE
        )
    assert refused.value.errors[0].location == "letters_of_intent[0].file"
    after = files_engine.get(case.id, AUDITOR)
    assert after.version == case.version
    assert after.data == case.data
    assert len(files_engine.history(case.id, AUDITOR)) == 1


def test_a_malformed_reference_is_refused_with_its_path(files_engine: Engine) -> None:
    bad = {"sha256": "XYZ", "name": "a/b.pdf", "size": "12", "media_type": "image/png"}
    with pytest.raises(InvalidData) as refused:
        files_engine.create_case("candidacy", "ti-2023-2027", with_letter(bad), CANDIDATE)
    locations = {e.location for e in refused.value.errors}
    assert locations == {
        f"letters_of_intent[0].file.{f}" for f in ("sha256", "name", "size", "media_type")
    }
    assert StoredFile  # the public type the console builds references from
