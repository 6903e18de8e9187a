"""Content-addressed storage of uploaded documents (letters of intent): files are evidence.

A file is stored once under its SHA-256 (``<root>/<first two hex digits>/<sha256>``), written
to a temporary file, flushed to disk and renamed into place, so a crash never leaves a
half-written document under a real name. Case data refers to it by
:class:`StoredFile` (``{"sha256", "name", "size", "media_type"}``); the event carrying that
data is hash-chained, so the history covers the documents' content.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tempfile
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ti_workflow.files.errors import FileAltered, FileMissing, FileRefused

MAX_BYTES = 10 * 1024 * 1024
"""The largest document accepted: 10 MiB (« 10 Mo »)."""
PDF = "application/pdf"
MAX_NAME = 255
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024
_PDF_HEADER = re.compile(rb"^%PDF-\d\.\d")
_TAIL = 1024

# pypdf reports what it repairs through logging; a refused upload says why on its own.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass(frozen=True)
class StoredFile:
    """What case data records about a stored document."""

    sha256: str
    name: str
    size: int
    media_type: str = PDF

    def as_ref(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "name": self.name,
            "size": self.size,
            "media_type": self.media_type,
        }


class FileStore:
    """Documents on a local (or shared, for several API machines) directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def put(self, data: bytes, *, name: str) -> StoredFile:
        """Check and store a PDF; storing the same content again changes nothing."""
        check_pdf(data)
        sha = hashlib.sha256(data).hexdigest()
        stored = StoredFile(sha, sanitise_name(name), len(data))
        path = self.path(sha)
        if path.is_file() and _digest(path) == sha:
            return stored
        # Absent, or present but altered: (re)write the good content.
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o440)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return stored

    def read(self, sha256: str) -> bytes:
        """The intact content; ``FileMissing`` if absent, ``FileAltered`` if changed."""
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise FileMissing(sha256) from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise FileAltered(sha256)
        return data

    def check(self, ref: Mapping[str, Any], *, content: bool = True) -> str | None:
        """``None`` if the referenced file is present and intact, else what is wrong.

        ``"missing"``: no such file; ``"altered"``: its content no longer hashes to its name;
        ``"size_mismatch"``: intact, but not the size the reference states. ``content=False``
        skips hashing (a cheap presence and size check).
        """
        sha = str(ref.get("sha256", ""))
        if not SHA256_RE.match(sha):
            return "missing"
        path = self.path(sha)
        try:
            size = path.stat().st_size
            if content and _digest(path) != sha:
                return "altered"
        except (FileNotFoundError, IsADirectoryError):
            return "missing"
        if size != ref.get("size"):
            return "size_mismatch"
        return None

    def path(self, sha256: str) -> Path:
        """Where a file lives; an ill-formed hash never names a path outside the store."""
        if not SHA256_RE.match(sha256):
            raise FileMissing(sha256)
        return self.root / sha256[:2] / sha256


def check_pdf(data: bytes) -> None:
    """Refuse what is not a readable PDF of at most :data:`MAX_BYTES`, judged by content."""
    if not data:
        raise FileRefused("empty")
    if len(data) > MAX_BYTES:
        raise FileRefused("too_large", f"{len(data)} bytes, at most {MAX_BYTES}")
    if not _PDF_HEADER.match(data):
        raise FileRefused("not_pdf")
    if b"%%EOF" not in data[-_TAIL:]:
        # Viewers look for the end marker in the last KiB; a reader searching further back
        # through megabytes of junk would spend seconds on it.
        raise FileRefused("unreadable_pdf", "no %%EOF marker at the end")
    from pypdf import PdfReader  # imported here: only uploads pay for it

    try:
        # Not strict: a slightly wrong cross-reference table, which every viewer repairs, is
        # accepted; a truncated file, junk after the header or no page is not.
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileRefused("encrypted_pdf")
        pages = len(reader.pages)
    except FileRefused:
        raise
    except Exception as exc:  # pypdf raises many kinds on malformed input
        raise FileRefused("unreadable_pdf", type(exc).__name__) from None
    if pages < 1:
        raise FileRefused("unreadable_pdf", "no page")


def sanitise_name(name: str) -> str:
    """A display and download name: no directory, no control character, at most 255 chars."""
    base = re.split(r"[/\\]", unicodedata.normalize("NFC", name))[-1]
    cleaned = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip(" .")
    if not cleaned:
        cleaned = "document.pdf"
    if not cleaned.lower().endswith(".pdf"):
        cleaned = cleaned[: MAX_NAME - 4] + ".pdf"
    if len(cleaned) > MAX_NAME:
        cleaned = cleaned[: MAX_NAME - 4].rstrip(" .") + ".pdf"
    return cleaned


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
