"""``audit export``: the events as JSONL (verifiable offline) or CSV (for spreadsheets).

The JSONL file is self-contained: a header line, one line per event carrying
exactly the fields its hash covers plus ``prev_hash`` and ``hash``, and a trailer
with the counts, so a truncated file is noticed. ``ti_workflow.audit.offline``
checks it without any database library.

Before the trailer, one ``file`` line per document the exported events refer to (its
SHA-256, size, latest name and the cases referring to it); with ``documents`` the intact
documents are also copied there as ``<sha256>.pdf``, so the offline check can rehash them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ti_workflow.audit.errors import AuditFailed
from ti_workflow.audit.files import MESSAGES
from ti_workflow.audit.replay import Finding
from ti_workflow.audit.store import stream_events
from ti_workflow.clock import paris
from ti_workflow.domain.events import Event, canonical_json, iso_utc
from ti_workflow.engine import Engine
from ti_workflow.errors import FieldError, InvalidData
from ti_workflow.files.errors import FileMissing
from ti_workflow.files.refs import file_refs
from ti_workflow.storage.database import read

FORMAT = "ti-workflow-export/1"
FORMATS = ("jsonl", "csv")
CSV_COLUMNS = (
    "case_id",
    "seq",
    "trigger",
    "source",
    "dest",
    "actor",
    "role",
    "at",
    "at_paris",
    "payload",
    "annotations",
    "definition_version",
    "prev_hash",
    "hash",
)


def _events(engine: Engine, case_id: int | None, since: datetime | None) -> Iterator[Event]:
    with read(engine.db) as conn:
        yield from stream_events(conn, case_id, since=since)


def export(
    engine: Engine,
    out: IO[str],
    fmt: str,
    case_id: int | None = None,
    since: datetime | None = None,
    documents: Path | None = None,
) -> int:
    """Write the export, return the number of events; ``AuditFailed`` after writing it all
    if ``documents`` was asked for and some document is missing or altered in the store."""
    if fmt not in FORMATS:
        raise InvalidData(
            "export",
            [FieldError("--format", f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")],
        )
    if fmt == "csv":
        return _csv(engine, out, case_id, since)
    header = {
        "kind": "header",
        "format": FORMAT,
        "exported_at": iso_utc(engine.clock.now()),
        "case": case_id,
        "since": iso_utc(since) if since else None,
    }
    out.write(canonical_json(header) + "\n")
    n = 0
    listed: dict[str, dict[str, Any]] = {}
    for e in _events(engine, case_id, since):
        out.write(canonical_json(event_line(e)) + "\n")
        n += 1
        _list_files(listed, e)
    for sha in sorted(listed):
        out.write(canonical_json(listed[sha]) + "\n")
    out.write(canonical_json({"kind": "end", "events": n, "files": len(listed)}) + "\n")
    if documents is not None:
        _copy_documents(engine, listed, documents)
    return n


def _list_files(listed: dict[str, dict[str, Any]], e: Event) -> None:
    for _, ref in file_refs(e.payload):
        sha = str(ref.get("sha256"))
        line = listed.setdefault(
            sha, {"kind": "file", "sha256": sha, "size": ref.get("size"), "cases": []}
        )
        line["name"] = ref.get("name")
        line["size"] = ref.get("size")
        if e.case_id not in line["cases"]:
            line["cases"].append(e.case_id)


def _copy_documents(engine: Engine, listed: dict[str, dict[str, Any]], to: Path) -> None:
    to.mkdir(parents=True, exist_ok=True)
    findings: list[Finding] = []
    for sha, line in listed.items():
        try:
            (to / f"{sha}.pdf").write_bytes(engine.files.read(sha))
        except FileMissing:
            problem = engine.files.check(line) or "missing"
            findings += [
                Finding(
                    case_id,
                    None,
                    f"file_{problem}",
                    f"the document {line['name']!r} (SHA-256 {sha}) {MESSAGES[problem]}; "
                    f"not copied to {to}",
                )
                for case_id in line["cases"]
            ]
    if findings:
        raise AuditFailed(findings, len({f.case_id for f in findings}), 0)


def event_line(e: Event) -> dict[str, Any]:
    return {"kind": "event", **e.body(), "prev_hash": e.prev_hash, "hash": e.hash}


def _csv(engine: Engine, out: IO[str], case_id: int | None, since: datetime | None) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    n = 0
    for e in _events(engine, case_id, since):
        writer.writerow(
            [
                e.case_id,
                e.seq,
                e.trigger,
                e.source or "",
                e.dest,
                e.actor,
                e.role,
                iso_utc(e.at),
                paris(e.at).isoformat(),
                json.dumps(e.payload, ensure_ascii=False, sort_keys=True),
                json.dumps(e.annotations, ensure_ascii=False, sort_keys=True),
                e.definition_version,
                e.prev_hash,
                e.hash,
            ]
        )
        n += 1
    return n
