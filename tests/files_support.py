"""Small, valid PDFs built by hand (a catalogue, one page, a content stream, a real xref)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import candidacy
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.engine import Engine
from ti_workflow.settings import Settings


@pytest.fixture(name="files_engine")
def files_engine_fixture(db_url: str, tmp_path: Path, clock: SimulatedClock) -> Iterator[Engine]:
    """``files_engine``: an engine (SQLite and PostgreSQL) whose documents go to
    ``tmp_path / "files"``. Import it into a test module to use it."""
    engine = open_engine(Settings(db_url=db_url, files_dir=tmp_path / "files"), clock)
    yield engine
    engine.db.dispose()


def letter(ref: dict[str, Any] | None, signatory: str = "Mme Élue") -> dict[str, Any]:
    return {"signatory": signatory, "organisation": "CC", "date": "2023-07-01", "file": ref}


def with_letter(*refs: dict[str, Any]) -> dict[str, Any]:
    """A valid candidacy whose letters of intent carry these documents."""
    return candidacy(letters_of_intent=[letter(r, f"Signataire {i}") for i, r in enumerate(refs)])


def minimal_pdf(text: str = "Lettre d'intention", padding: int = 0) -> bytes:
    """One page saying ``text``; ``padding`` spaces in its content stream make it larger."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
    ]
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1") + b" " * padding
    objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def padded_pdf(size: int) -> bytes:
    """A valid one-page PDF of exactly ``size`` bytes (a large content stream)."""
    padding = size - len(minimal_pdf())
    for _ in range(5):  # the digits of /Length and startxref grow with the padding
        pdf = minimal_pdf(padding=padding)
        if len(pdf) == size:
            return pdf
        padding += size - len(pdf)
    raise AssertionError(f"cannot build a PDF of exactly {size} bytes")
