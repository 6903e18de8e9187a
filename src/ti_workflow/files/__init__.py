"""Uploaded documents (letters of intent) stored content-addressed: files are evidence.

See ``docs/files.md``. The store (:mod:`.store`) knows nothing of cases; who may read a
document is decided by :func:`read_for_case` through the engine's scope.
"""

from __future__ import annotations

from ti_workflow.files.access import read_for_case
from ti_workflow.files.errors import FileAltered, FileMissing, FileRefused
from ti_workflow.files.refs import file_refs
from ti_workflow.files.store import MAX_BYTES, PDF, FileStore, StoredFile, check_pdf

__all__ = [
    "MAX_BYTES",
    "PDF",
    "FileAltered",
    "FileMissing",
    "FileRefused",
    "FileStore",
    "StoredFile",
    "check_pdf",
    "file_refs",
    "read_for_case",
]
