"""``audit verify``: prove the log holds, or name every case and event at fault.

One pass over two ordered streams (cases by id, events by case and seq), merged: each
case's events are chain-checked and replayed with the checks on, and the replay is
compared with the stored case row. Memory is one case's history at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from sqlalchemy import func, select

from ti_workflow.audit.fast import HashedEvent, hashed_events
from ti_workflow.audit.replay import Finding, ReplayedCase, Replayer
from ti_workflow.audit.store import (
    CaseHead,
    cases_t,
    events_t,
    orphan_messages,
    stream_cases,
    stream_heads,
)
from ti_workflow.engine import Catalog, Engine
from ti_workflow.storage.database import read
from ti_workflow.storage.repository import StoredCase

Progress = Callable[[int], None]
"""Called with the number of events just checked."""


@dataclass
class VerifyReport:
    cases: int = 0
    events: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "cases": self.cases,
            "events": self.events,
            "findings": [f.as_dict() for f in self.findings],
        }


def count_events(engine: Engine, case_id: int | None = None) -> int:
    query = select(func.count()).select_from(events_t)
    if case_id is not None:
        query = query.where(events_t.c.case_id == case_id)
    with read(engine.db) as conn:
        return int(conn.execute(query).scalar_one())


def verify(
    engine: Engine,
    case_id: int | None = None,
    progress: Progress | None = None,
    quick: bool = False,
) -> VerifyReport:
    """``quick``: hash chains and case heads only (no replay, no rule re-evaluation)."""
    report = VerifyReport()
    with read(engine.db) as conn:
        if (
            case_id is not None
            and conn.execute(select(cases_t.c.id).where(cases_t.c.id == case_id)).first() is None
        ):
            from ti_workflow.errors import NotFound

            raise NotFound("case", case_id)
        groups = _by_case(hashed_events(conn, case_id))
        rows: Iterator[Any] = (stream_heads if quick else stream_cases)(conn, case_id)
        check = _quick_case if quick else _verify_case
        for stored, events in _merge(rows, groups):
            report.findings.extend(check(engine.catalog, stored, events))
            if stored is not None:
                report.cases += 1
            report.events += len(events)
            if progress is not None and events:
                progress(len(events))
        for message, msg_case, seq in orphan_messages(conn, case_id):
            report.findings.append(
                Finding(
                    msg_case,
                    seq,
                    "orphan_message",
                    f"outbox message {message} names event #{seq}, which does not exist",
                )
            )
    return report


def _merge(
    cases: Iterator[Any], groups: Iterator[tuple[int, list[Any]]]
) -> Iterator[tuple[Any, list[Any]]]:
    """Pair each case row with its events; either side may be missing."""
    case = next(cases, None)
    group = next(groups, None)
    while case is not None or group is not None:
        if group is None or (case is not None and case.id < group[0]):
            assert case is not None
            yield case, []
            case = next(cases, None)
        elif case is None or group[0] < case.id:
            yield None, group[1]
            group = next(groups, None)
        else:
            yield case, group[1]
            case, group = next(cases, None), next(groups, None)


def _by_case(items: Iterator[HashedEvent]) -> Iterator[tuple[int, list[HashedEvent]]]:
    for case_id, group in groupby(items, key=lambda item: item[0].case_id):
        yield case_id, list(group)


def _missing(stored: Any, events: list[HashedEvent]) -> list[Finding] | None:
    if stored is None:
        first = events[0][0]
        return [
            Finding(
                first.case_id,
                first.seq,
                "events_without_case",
                f"{len(events)} event(s) belong to no case row (the case was deleted)",
            )
        ]
    if not events:
        return [
            Finding(
                stored.id,
                None,
                "case_without_events",
                "the case row has no history at all (its events were deleted)",
            )
        ]
    return None


def _quick_case(
    catalog: Catalog, stored: CaseHead | None, events: list[HashedEvent]
) -> list[Finding]:
    missing = _missing(stored, events)
    if missing is not None or stored is None:
        return missing or []
    r = Replayer(catalog, stored.id, stored.campaign_id, check=True)
    for e, digest in events:
        r.check_chain(e, digest)
        r.case.last_seq, r.case.head_hash = e.seq, e.hash
    replayed = r.case
    out = r.findings + _head_findings(stored.id, stored.last_seq, replayed.last_seq)
    if stored.head_hash != replayed.head_hash and stored.last_seq == replayed.last_seq:
        out.append(
            Finding(
                stored.id,
                None,
                "case_differs_from_replay",
                f"cases.head_hash is {stored.head_hash[:12]}… but the chain ends "
                f"with {replayed.head_hash[:12]}…",
            )
        )
    return out


def _verify_case(
    catalog: Catalog, stored: StoredCase | None, events: list[HashedEvent]
) -> list[Finding]:
    missing = _missing(stored, events)
    if missing is not None or stored is None:
        return missing or []
    r = Replayer(catalog, stored.id, stored.campaign_id, check=True)
    for e, digest in events:
        r.apply(e, digest)
    return r.findings + compare(stored, r.case)


def compare(stored: StoredCase, replayed: ReplayedCase) -> list[Finding]:
    """The stored case row must be exactly what its events replay to."""
    pairs: list[tuple[str, Any, Any]] = [
        ("state", stored.state, replayed.state),
        ("definition_version", stored.definition_version, replayed.definition_version),
        ("workflow", stored.workflow, replayed.workflow),
        ("data", stored.data, replayed.data),
        ("facts", stored.facts, replayed.facts),
        ("regions", tuple(stored.regions), replayed.regions),
        ("title", stored.title, replayed.title),
        ("owner_email", stored.owner_email, replayed.owner_email),
        ("head_hash", stored.head_hash, replayed.head_hash),
    ]
    out = _head_findings(stored.id, stored.last_seq, replayed.last_seq)
    for name, have, want in pairs:
        if have != want:
            out.append(
                Finding(
                    stored.id,
                    None,
                    "case_differs_from_replay",
                    f"cases.{name} is {_short(have)} but the events replay to {_short(want)}",
                )
            )
    return out


def _head_findings(case_id: int, stored_last: int, last: int) -> list[Finding]:
    """Events deleted at the end of a chain leave it intact: only the case head shows it."""
    if stored_last > last:
        return [
            Finding(
                case_id,
                last + 1,
                "event_missing",
                f"the case row records {stored_last} events but the log ends at "
                f"#{last}: events #{last + 1}..#{stored_last} were deleted",
            )
        ]
    if stored_last < last:
        return [
            Finding(
                case_id,
                stored_last + 1,
                "event_added",
                f"the case row records {stored_last} events but the log holds {last}: "
                f"events after #{stored_last} were added behind the engine's back",
            )
        ]
    return []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
