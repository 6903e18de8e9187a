"""Check an exported JSONL file on its own: no database, no ti-workflow install needed.

    python offline.py EXPORT.jsonl [--checkpoint CHECKPOINT.json] [--files DIR]
    python -m ti_workflow.audit.offline EXPORT.jsonl

This module imports the standard library only (an auditor can copy this one file
and read all of it). It recomputes every event's hash from its content, follows
each case's chain (sequence numbers and ``prev_hash``), checks the trailer count
(truncation), that the ``file`` lines list exactly the documents the events refer to,
and, given a checkpoint, that every head it recorded is in the file unchanged. Given
``--files DIR`` (the documents copied by ``audit export --documents DIR``), each document
referred to must be there as ``<sha256>.pdf``, hash to its name and have its recorded
size. Exit 0 when all holds, 1 listing each case and event at fault, 2 when
the file cannot be read at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

GENESIS = "0" * 64
EXPORT_FORMAT = "ti-workflow-export/1"
BODY_FIELDS = (
    "case_id",
    "seq",
    "trigger",
    "source",
    "dest",
    "actor",
    "role",
    "at",
    "payload",
    "annotations",
    "definition_version",
)


def canonical_json(value: Any) -> str:
    """Must stay byte-identical to ``ti_workflow.domain.events.canonical_json`` (tested)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(body)).encode()).hexdigest()


class Problem(Exception):
    """The file cannot be checked at all (unreadable, not an export)."""


def check_lines(
    lines: Iterable[str], checkpoint: dict[str, Any] | None = None, files: str | None = None
) -> tuple[int, int, list[str]]:
    """Return ``(cases, events, findings)``; each finding names line, case and seq."""
    findings: list[str] = []
    documents: dict[str, tuple[int, Any, Any, str, Any]] = {}  # sha -> where first referred
    listed: dict[str, int] = {}
    trailer_files: int | None = None
    heads: dict[int, tuple[int, str]] = {}
    partial: set[int] = set()
    seen: dict[tuple[int, int], str] = {}
    events = 0
    trailer: int | None = None
    header: dict[str, Any] | None = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            findings.append(f"line {number}: not JSON ({exc.msg})")
            continue
        kind = record.get("kind") if isinstance(record, dict) else None
        if number == 1:
            if kind != "header" or record.get("format") != EXPORT_FORMAT:
                raise Problem(
                    f"line 1: not a ti-workflow export (expected a header with "
                    f"format {EXPORT_FORMAT!r})"
                )
            header = record
            continue
        if kind == "end":
            trailer = int(record.get("events", -1))
            trailer_files = record.get("files")
            continue
        if kind == "file":
            listed[str(record.get("sha256"))] = number
            continue
        if kind != "event":
            findings.append(f"line {number}: unknown record kind {kind!r}")
            continue
        events += 1
        _check_event(number, record, heads, partial, findings, header)
        seen[(record.get("case_id"), record.get("seq"))] = str(record.get("hash"))
        for path, ref in file_refs(record.get("payload")):
            where = (number, record.get("case_id"), record.get("seq"), path, ref.get("size"))
            documents.setdefault(str(ref.get("sha256")), where)
    if trailer is None:
        findings.append("end of file: no trailer line, the export is truncated")
    elif trailer != events:
        findings.append(
            f"end of file: the trailer announces {trailer} events, the file holds "
            f"{events} (lines were removed or added)"
        )
    if trailer_files is not None:  # exports made before documents were listed have none
        findings.extend(_check_listing(documents, listed, trailer_files))
    if files is not None:
        findings.extend(_check_documents(documents, files))
    if checkpoint is not None:
        findings.extend(_check_checkpoint(checkpoint, seen, header))
    return len(heads), events, findings


def file_refs(data: Any, at: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Must find what ``ti_workflow.files.refs.file_refs`` finds (tested)."""
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{at}.{key}" if at else str(key)
            if key == "file" and isinstance(value, dict) and "sha256" in value:
                yield path, value
            else:
                yield from file_refs(value, path)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from file_refs(value, f"{at}[{i}]")


def _check_listing(
    documents: dict[str, tuple[int, Any, Any, str, Any]], listed: dict[str, int], count: Any
) -> list[str]:
    out = []
    for sha, (number, case_id, seq, path, _) in documents.items():
        if sha not in listed:
            out.append(
                f"line {number}, case {case_id}, event #{seq}: {path} refers to document "
                f"{sha}, which has no file line (the list of documents was cut)"
            )
    for sha, number in listed.items():
        if sha not in documents:
            out.append(f"line {number}: file line for {sha}, which no event refers to")
    if count != len(listed):
        out.append(
            f"end of file: the trailer announces {count} documents, the file lists {len(listed)}"
        )
    return out


def _check_documents(
    documents: dict[str, tuple[int, Any, Any, str, Any]], folder: str
) -> list[str]:
    out = []
    for sha, (number, case_id, seq, path, size) in documents.items():
        where = f"line {number}, case {case_id}, event #{seq}: {path}"
        name = os.path.join(folder, f"{sha}.pdf")
        try:
            with open(name, "rb") as f:
                content = f.read()
        except OSError:
            out.append(f"{where}: file_missing, document {sha} is not in {folder}")
            continue
        if hashlib.sha256(content).hexdigest() != sha:
            out.append(f"{where}: file_altered, {name} does not hash to its SHA-256")
        elif len(content) != size:
            out.append(
                f"{where}: file_size_mismatch, {name} is {len(content)} bytes, "
                f"the event records {size}"
            )
    return out


def _check_event(
    number: int,
    record: dict[str, Any],
    heads: dict[int, tuple[int, str]],
    partial: set[int],
    findings: list[str],
    header: dict[str, Any] | None,
) -> None:
    missing = [f for f in (*BODY_FIELDS, "prev_hash", "hash") if f not in record]
    case_id: Any = record.get("case_id")
    seq: Any = record.get("seq")
    where = f"line {number}, case {case_id}, event #{seq}"
    if missing:
        findings.append(f"{where}: missing field(s) {', '.join(missing)}")
        return
    body = {f: record[f] for f in BODY_FIELDS}
    if chain_hash(record["prev_hash"], body) != record["hash"]:
        findings.append(
            f"{where}: hash_mismatch, the content does not hash to the recorded "
            "hash (the event was edited)"
        )
    previous = heads.get(case_id)
    if previous is None:
        starts_mid_chain = bool(header and (header.get("since"))) and seq != 1
        if seq != 1 and not starts_mid_chain:
            findings.append(
                f"{where}: sequence_gap, the case's first event in the file is #{seq}, expected #1"
            )
        elif seq == 1 and record["prev_hash"] != GENESIS:
            findings.append(f"{where}: chain_broken, the first event must follow the genesis")
        if starts_mid_chain:
            partial.add(case_id)
    else:
        last_seq, last_hash = previous
        if seq != last_seq + 1:
            findings.append(f"{where}: sequence_gap, expected event #{last_seq + 1}")
        if record["prev_hash"] != last_hash:
            findings.append(
                f"{where}: chain_broken, prev_hash does not match event "
                f"#{last_seq}'s hash (deleted, inserted or reordered events)"
            )
    heads[case_id] = (seq, record["hash"])


def _check_checkpoint(
    checkpoint: dict[str, Any], seen: dict[tuple[Any, Any], str], header: dict[str, Any] | None
) -> list[str]:
    out = []
    heads = checkpoint.get("heads")
    if not isinstance(heads, list):
        return [
            "checkpoint: no heads in the checkpoint file (use the JSON printed by "
            "`ti-workflow audit checkpoint --json`)"
        ]
    whole = header is not None and header.get("case") is None and header.get("since") is None
    for case_id, seq, digest in heads:
        now = seen.get((case_id, seq))
        if now is None:
            if whole:
                out.append(f"checkpoint: case {case_id}, event #{seq} is missing from the export")
        elif now != digest:
            out.append(
                f"checkpoint: case {case_id}, event #{seq} had hash {digest[:12]} at the "
                f"checkpoint, {now[:12]} in the export: the chain was rewritten"
            )
    return out


def _lines(stream: TextIO) -> Iterator[str]:
    yield from stream


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    checkpoint = None
    if "--checkpoint" in args:
        i = args.index("--checkpoint")
        if i + 1 >= len(args):
            print("error: --checkpoint needs a file", file=sys.stderr)
            return 2
        try:
            with open(args[i + 1], encoding="utf-8") as f:
                checkpoint = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            print(f"error: cannot read checkpoint {args[i + 1]}: {exc}", file=sys.stderr)
            return 2
        del args[i : i + 2]
    files = None
    if "--files" in args:
        i = args.index("--files")
        if i + 1 >= len(args) or not os.path.isdir(args[i + 1]):
            print(
                "error: --files needs the folder of documents from `audit export`", file=sys.stderr
            )
            return 2
        files = args[i + 1]
        del args[i : i + 2]
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    if len(args) != 1:
        print(
            "usage: offline.py EXPORT.jsonl [--checkpoint FILE] [--files DIR] [--json]",
            file=sys.stderr,
        )
        return 2
    try:
        with open(args[0], encoding="utf-8") as stream:
            cases, events, findings = check_lines(_lines(stream), checkpoint, files)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args[0]}: {exc}", file=sys.stderr)
        return 2
    except Problem as exc:
        print(f"error: {args[0]}: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(
            json.dumps(
                {"ok": not findings, "cases": cases, "events": events, "findings": findings},
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        for finding in findings:
            print(finding)
        verdict = "OK" if not findings else f"FAILED ({len(findings)} problem(s))"
        print(f"{args[0]}: {events} events, {cases} cases: {verdict}")
    return 0 if not findings else 1


if __name__ == "__main__":
    sys.exit(main())
