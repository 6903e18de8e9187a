"""The documents a history refers to must still be in the file store, intact.

Every event's payload is searched for file references (``letters_of_intent[i].file``); each
(case, document) is checked once, at the first event that refers to it, and reported with
the field path: ``file_missing`` (not in the store), ``file_altered`` (its content no longer
hashes to its name), ``file_size_mismatch`` (intact, but not the size the event records).
A document several cases share is hashed once per verification.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ti_workflow.audit.replay import Finding
from ti_workflow.domain.events import Event
from ti_workflow.files.refs import file_refs
from ti_workflow.files.store import FileStore

MESSAGES = {
    "missing": "is missing from the file store",
    "altered": "was altered in the file store: its content no longer hashes to its SHA-256",
    "size_mismatch": "is intact in the file store but its size differs from the one recorded",
}


class FileAudit:
    def __init__(self, store: FileStore) -> None:
        self.store = store
        self._checked: dict[tuple[str, Any], str | None] = {}

    def findings(self, case_id: int, events: Iterable[Event]) -> list[Finding]:
        out: list[Finding] = []
        seen: set[tuple[str, Any]] = set()
        for event, path, ref in _refs(events):
            key = (str(ref.get("sha256")), ref.get("size"))
            if key in seen:
                continue
            seen.add(key)
            if key not in self._checked:
                self._checked[key] = self.store.check(ref)
            problem = self._checked[key]
            if problem is not None:
                name = ref.get("name")
                out.append(
                    Finding(
                        case_id,
                        event.seq,
                        f"file_{problem}",
                        f"{path}: the document {name!r} (SHA-256 {key[0]}, "
                        f"{ref.get('size')} bytes) {MESSAGES[problem]} ({self.store.root})",
                    )
                )
        return out


def _refs(events: Iterable[Event]) -> Iterator[tuple[Event, str, Any]]:
    for event in events:
        for path, ref in file_refs(event.payload):
            yield event, path, ref
