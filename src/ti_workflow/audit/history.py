"""``audit replay``: a case's path rebuilt from its events, step by step, in Paris time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ti_workflow.audit.replay import Finding, ReplayedCase, Replayer
from ti_workflow.audit.store import notifications, stream_events
from ti_workflow.audit.verify import compare
from ti_workflow.clock import paris
from ti_workflow.engine import Engine
from ti_workflow.storage import repository as repo
from ti_workflow.storage.database import read


@dataclass(frozen=True)
class Replay:
    case: ReplayedCase
    steps: list[dict[str, Any]]
    differences: list[Finding]
    """Where the stored case row differs from the replay (empty when they agree)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case.as_dict(),
            "matches_stored_case": not self.differences,
            "differences": [f.as_dict() for f in self.differences],
            "steps": self.steps,
        }


def replay_case(engine: Engine, case_id: int) -> Replay:
    with read(engine.db) as conn:
        stored = repo.load_case(conn, case_id)
        events = list(stream_events(conn, case_id))
        sent = notifications(conn, case_id)
    by_seq: dict[int, list[dict[str, Any]]] = {}
    for message in sent:
        seq = message.get("event_seq", message.get("seq"))
        if seq is None:
            continue
        by_seq.setdefault(int(seq), []).append(message)
    r = Replayer(engine.catalog, case_id, stored.campaign_id, check=False)
    steps = []
    for e in events:
        r.apply(e)
        steps.append(
            {
                "seq": e.seq,
                "at": e.at.isoformat(),
                "at_paris": paris(e.at).isoformat(),
                "trigger": e.trigger,
                "source": e.source,
                "dest": e.dest,
                "state_after": r.case.state,
                "actor": e.actor,
                "role": e.role,
                "payload": e.payload,
                "annotations": e.annotations,
                "definition_version": e.definition_version,
                "notifications": by_seq.get(e.seq, []),
            }
        )
    return Replay(r.case, steps, compare(stored, r.case))
