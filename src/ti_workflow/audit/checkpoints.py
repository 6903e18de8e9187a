"""Checkpoints: a Merkle root over the heads of every case chain, kept outside the system.

A chain can be rewritten consistently (every hash recomputed) by whoever holds the
database; only a digest kept elsewhere shows it. A checkpoint records, for each case,
the sequence number and hash of its last event, and the Merkle root over them. Later,
each recorded head must still be the event at that sequence number with that hash:
events may be appended after a checkpoint, never changed before it.

``take_checkpoint(engine)`` is the plain function the scheduler calls daily.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, tuple_

from ti_workflow.audit.replay import Finding
from ti_workflow.audit.store import events_t
from ti_workflow.audit.tables import CheckpointRow
from ti_workflow.domain.events import iso_utc
from ti_workflow.engine import Engine
from ti_workflow.errors import FieldError, InvalidData
from ti_workflow.storage.database import read
from ti_workflow.storage.repository import utc

FORMAT = "ti-workflow-checkpoint/1"
checkpoints_t = CheckpointRow.__table__  # type: ignore[attr-defined]
Head = tuple[int, int, str]


@dataclass(frozen=True)
class Checkpoint:
    id: int
    taken_at: datetime
    root: str
    cases: int
    events: int
    heads: tuple[Head, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "id": self.id,
            "taken_at": iso_utc(self.taken_at),
            "root": self.root,
            "cases": self.cases,
            "events": self.events,
            "heads": [list(h) for h in self.heads],
        }


def leaf(head: Head) -> bytes:
    case_id, seq, digest = head
    return hashlib.sha256(f"{case_id}:{seq}:{digest}".encode()).digest()


def merkle_root(heads: Iterable[Head]) -> str:
    """Root of the binary Merkle tree over the heads sorted by case (odd node promoted)."""
    level = [leaf(h) for h in sorted(heads)]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        nxt = [
            hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def current_heads(engine: Engine) -> tuple[list[Head], int]:
    """The last event of every case chain, as the events table says, and the event count."""
    last = (
        select(events_t.c.case_id, func.max(events_t.c.seq).label("seq"))
        .group_by(events_t.c.case_id)
        .subquery()
    )
    query = (
        select(events_t.c.case_id, events_t.c.seq, events_t.c.hash)
        .join(last, (events_t.c.case_id == last.c.case_id) & (events_t.c.seq == last.c.seq))
        .order_by(events_t.c.case_id)
    )
    with read(engine.db) as conn:
        heads = [(int(r[0]), int(r[1]), str(r[2])) for r in conn.execute(query)]
        total = int(conn.execute(select(func.count()).select_from(events_t)).scalar_one())
    return heads, total


def take_checkpoint(engine: Engine) -> Checkpoint:
    """Record and return a checkpoint of the whole log, now (the engine's clock)."""
    heads, total = current_heads(engine)
    root = merkle_root(heads)
    now = engine.clock.now()
    with engine.db.begin() as conn:
        new_id = conn.execute(
            insert(checkpoints_t).returning(checkpoints_t.c.id),
            {
                "taken_at": now,
                "root": root,
                "cases": len(heads),
                "events": total,
                "heads": [list(h) for h in heads],
            },
        ).scalar_one()
    return Checkpoint(int(new_id), now, root, len(heads), total, tuple(heads))


def list_checkpoints(engine: Engine) -> list[Checkpoint]:
    with read(engine.db) as conn:
        rows = conn.execute(select(checkpoints_t).order_by(checkpoints_t.c.id)).all()
    return [
        Checkpoint(
            r.id,
            utc(r.taken_at),
            r.root,
            r.cases,
            r.events,
            tuple((int(a), int(b), str(c)) for a, b, c in r.heads),
        )
        for r in rows
    ]


def load_checkpoint_file(path: Path) -> dict[str, Any]:
    """Read a checkpoint kept by an auditor: the full JSON, or just its root (one line)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidData(
            "checkpoint", [FieldError("--checkpoint", f"cannot read {path}: {exc.strerror}")]
        ) from None
    if len(text) == 64 and all(ch in "0123456789abcdef" for ch in text):
        return {"root": text}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidData(
            "checkpoint",
            [
                FieldError(
                    "--checkpoint",
                    f"{path} is neither a 64-hex root nor checkpoint JSON "
                    f"(line {exc.lineno}: {exc.msg})",
                )
            ],
        ) from None
    if not isinstance(value, dict) or not isinstance(value.get("root"), str):
        raise InvalidData(
            "checkpoint",
            [
                FieldError(
                    "--checkpoint",
                    f"{path}: expected a JSON object with a 'root' (as printed by "
                    "`ti-workflow audit checkpoint --json`)",
                )
            ],
        )
    return value


def _heads_from(document: dict[str, Any], engine: Engine) -> tuple[list[Head], list[Finding]]:
    root = document["root"]
    raw = document.get("heads")
    if raw is None:
        stored = [c for c in list_checkpoints(engine) if c.root == root]
        if not stored:
            return [], [
                Finding(
                    0,
                    None,
                    "checkpoint_unknown",
                    f"no checkpoint with root {root[:12]}… is stored in this "
                    "database: the log or the checkpoint table was rewritten",
                )
            ]
        raw = [list(h) for h in stored[-1].heads]
    try:
        heads = [(int(h[0]), int(h[1]), str(h[2])) for h in raw]
    except (TypeError, ValueError, IndexError):
        raise InvalidData(
            "checkpoint", [FieldError("heads", "each head must be [case_id, seq, hash]")]
        ) from None
    if merkle_root(heads) != root:
        return heads, [
            Finding(
                0,
                None,
                "checkpoint_corrupt",
                "the checkpoint's heads do not hash to its root: the checkpoint "
                "file itself was altered",
            )
        ]
    return heads, []


def verify_checkpoint(engine: Engine, document: dict[str, Any]) -> list[Finding]:
    """Every head recorded then must still be the same event now."""
    heads, findings = _heads_from(document, engine)
    if findings:
        return findings
    wanted = {(c, s): h for c, s, h in heads}
    found: dict[tuple[int, int], str] = {}
    with read(engine.db) as conn:
        for chunk in _chunks(list(wanted), 500):
            query = select(events_t.c.case_id, events_t.c.seq, events_t.c.hash).where(
                tuple_(events_t.c.case_id, events_t.c.seq).in_(chunk)
            )
            found.update({(int(r[0]), int(r[1])): str(r[2]) for r in conn.execute(query)})
    taken = document.get("taken_at", "the checkpoint")
    for (case_id, seq), digest in sorted(wanted.items()):
        now = found.get((case_id, seq))
        if now is None:
            findings.append(
                Finding(
                    case_id,
                    seq,
                    "checkpoint_event_missing",
                    f"event #{seq}, the head at {taken}, no longer exists",
                )
            )
        elif now != digest:
            findings.append(
                Finding(
                    case_id,
                    seq,
                    "checkpoint_mismatch",
                    f"event #{seq} had hash {digest[:12]}… at {taken}, now "
                    f"{now[:12]}…: the chain was rewritten since",
                )
            )
    return findings


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
