"""Where case data refers to stored files: any ``file`` member holding a ``sha256``.

Pure (no I/O): the engine's write check, the audit and the downloads all find references
the same way, wherever a workflow's form puts them (``letters_of_intent[i].file`` today).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

FILE_KEY = "file"


def file_refs(data: Any, at: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(field path, reference)`` for every file reference in ``data``, in document order."""
    if has_refs(data):  # the audit walks every event: most refer to no file
        yield from _walk(data, at)


def has_refs(data: Any) -> bool:
    """Whether ``data`` (decoded JSON) holds a file reference anywhere; no path built."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            ref = value.get(FILE_KEY)
            if isinstance(ref, dict) and "sha256" in ref:
                return True
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def referenced_hashes(data: Any) -> set[str]:
    return {str(ref["sha256"]) for _, ref in file_refs(data)}


def _walk(data: Any, at: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{at}.{key}" if at else str(key)
            if key == FILE_KEY and isinstance(value, dict) and "sha256" in value:
                yield path, value
            else:
                yield from _walk(value, path)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _walk(value, f"{at}[{i}]")
