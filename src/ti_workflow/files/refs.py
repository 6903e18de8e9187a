"""Where case data refers to stored files: any ``file`` member holding a ``sha256``.

Pure (no I/O): the engine's write check, the audit and the downloads all find references
the same way, wherever a workflow's form puts them (``letters_of_intent[i].file`` today).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

FILE_KEY = "file"


def file_refs(data: Any, at: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(field path, reference)`` for every file reference in ``data``, in document order."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            path = f"{at}.{key}" if at else str(key)
            if key == FILE_KEY and isinstance(value, Mapping) and "sha256" in value:
                yield path, value
            else:
                yield from file_refs(value, path)
    elif isinstance(data, Sequence) and not isinstance(data, str | bytes):
        for i, value in enumerate(data):
            yield from file_refs(value, f"{at}[{i}]")


def referenced_hashes(data: Any) -> set[str]:
    return {str(ref["sha256"]) for _, ref in file_refs(data)}
