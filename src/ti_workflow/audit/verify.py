"""``audit verify``: prove the log holds, or name every case and event at fault.

One pass over two ordered streams (cases by id, events by case and seq), merged: each
case's events are chain-checked and replayed with the checks on, and the replay is
compared with the stored case row. Memory is one case's history at a time.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from multiprocessing.connection import Connection as Connection_
from multiprocessing.connection import wait
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy import Engine as SqlEngine

from ti_workflow.audit.fast import ChainLink, HashedEvent, chain_links, hashed_events
from ti_workflow.audit.files import FileAudit
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
from ti_workflow.files.store import FileStore
from ti_workflow.storage.database import make_engine, read
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
    workers: int = 1,
) -> VerifyReport:
    """``quick``: hash chains and case heads only (no replay, no rule re-evaluation, no
    check of the documents the events refer to).

    ``workers`` > 1 verifies that many disjoint ranges of case ids in as many processes
    (forked: call it from a process without other threads running, as the CLI does); the
    findings come back in case order, exactly as one process would list them. The outbox
    check runs once, over the whole log.
    """
    with read(engine.db) as conn:
        if (
            case_id is not None
            and conn.execute(select(cases_t.c.id).where(cases_t.c.id == case_id)).first() is None
        ):
            from ti_workflow.errors import NotFound

            raise NotFound("case", case_id)
        # Workers open their own connections: an in-memory database would be a new, empty one.
        alone = case_id is not None or engine.db.url.database in (None, "", ":memory:")
        ranges = split(conn, 1 if alone else workers)
    if len(ranges) == 1:
        report = verify_range(
            engine.db, engine.catalog, case_id, None, None, quick, progress, engine.files
        )
    else:
        report = parallel(engine, ranges, quick, progress)
    with read(engine.db) as conn:
        for message, msg_case, seq, cause in orphan_messages(conn, case_id):
            report.findings.append(
                Finding(msg_case, seq, "orphan_message", f"outbox message {message} {cause}")
            )
    return report


def verify_range(
    db: SqlEngine,
    catalog: Catalog,
    case_id: int | None,
    first: int | None,
    last: int | None,
    quick: bool,
    progress: Progress | None = None,
    files: FileStore | None = None,
) -> VerifyReport:
    """Chains (and, unless ``quick``, replays and documents) of one case or of the ids
    ``first..last``."""
    report = VerifyReport()
    documents = FileAudit(files) if files is not None and not quick else None
    with read(db) as conn:
        if quick:
            links = _by_case(chain_links(conn, case_id, first, last), itemgetter(0))
            heads = stream_heads(conn, case_id, first, last)
            pairs: Iterator[tuple[Any, list[Any]]] = _merge(heads, links)
        else:
            groups = _by_case(hashed_events(conn, case_id, first=first, last=last), _event_case)
            pairs = _merge(stream_cases(conn, case_id, first, last), groups)
        check = _quick_case if quick else _verify_case
        for stored, events in pairs:
            found = check(catalog, stored, events)
            if documents is not None and events:
                found += documents.findings(events[0][0].case_id, (e for e, _ in events))
            if found:
                report.findings.extend(found)
            if stored is not None:
                report.cases += 1
            report.events += len(events)
            if progress is not None and events:
                progress(len(events))
    return report


def split(conn: Connection, workers: int) -> list[tuple[int | None, int | None]]:
    """``workers`` ranges of case ids holding about as many events each, covering every id
    (cases without events included): ``(None, b1 - 1), (b1, b2 - 1), ..., (bn, None)``."""
    if workers <= 1:
        return [(None, None)]
    total = int(conn.execute(select(func.count()).select_from(events_t)).scalar_one())
    bounds: list[int] = []
    for k in range(1, workers):
        row = conn.execute(
            select(events_t.c.case_id)
            .order_by(events_t.c.case_id, events_t.c.seq)
            .limit(1)
            .offset(total * k // workers)
        ).first()
        if row is not None and (not bounds or row[0] > bounds[-1]):
            bounds.append(int(row[0]))
    starts: list[int | None] = [None, *bounds]
    ends: list[int | None] = [b - 1 for b in bounds] + [None]
    return list(zip(starts, ends, strict=True))


def parallel(
    engine: Engine,
    ranges: list[tuple[int | None, int | None]],
    quick: bool,
    progress: Progress | None,
) -> VerifyReport:
    """One forked process per range; progress streamed back, reports merged in range
    (hence case) order. A worker that dies makes the verification fail loudly."""
    context = multiprocessing.get_context("fork")
    pipes, procs = [], []
    for first, last in ranges:
        receive, send = context.Pipe(duplex=False)
        proc = context.Process(target=_worker, args=(engine, first, last, quick, send), daemon=True)
        proc.start()
        send.close()
        pipes.append(receive)
        procs.append(proc)
    reports: list[VerifyReport | None] = [None] * len(ranges)
    try:
        waiting = set(range(len(ranges)))
        while waiting:
            ready = wait([pipes[i] for i in waiting])
            for i in list(waiting):
                if pipes[i] not in ready:
                    continue
                try:
                    kind, value = pipes[i].recv()
                except EOFError:
                    raise RuntimeError(f"verify worker {i + 1} died") from None
                if kind == "progress":
                    if progress is not None:
                        progress(value)
                elif kind == "error":
                    raise RuntimeError(f"verify worker {i + 1} failed: {value}")
                else:
                    reports[i] = value
                    waiting.discard(i)
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        for pipe in pipes:
            pipe.close()
    merged = VerifyReport()
    for r in reports:
        assert r is not None
        merged.cases += r.cases
        merged.events += r.events
        merged.findings.extend(r.findings)
    return merged


def _worker(
    engine: Engine, first: int | None, last: int | None, quick: bool, send: Connection_
) -> None:
    # A connection of its own: the pooled ones were forked with the parent's and are never
    # touched here (not even closed: SQLite connections must not cross a fork; the worker
    # ends with os._exit, which frees nothing).
    db = make_engine(engine.db.url.render_as_string(hide_password=False))
    pending = 0

    def report_progress(n: int) -> None:
        nonlocal pending
        pending += n
        if pending >= 2_000:
            send.send(("progress", pending))
            pending = 0

    try:
        report = verify_range(
            db, engine.catalog, None, first, last, quick, report_progress, engine.files
        )
        if pending:
            send.send(("progress", pending))
        send.send(("done", report))
    except BaseException as exc:  # sent to the parent, which raises
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()


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


def _by_case(items: Iterator[Any], key: Callable[[Any], int]) -> Iterator[tuple[int, list[Any]]]:
    for case_id, group in groupby(items, key=key):
        yield case_id, list(group)


def _event_case(item: HashedEvent) -> int:
    return item[0].case_id


def _missing(stored: Any, first: tuple[int, int] | None, count: int) -> list[Finding]:
    """A case row without events, or events (``first``: case id and seq) without a row."""
    if stored is None:
        assert first is not None
        return [
            Finding(
                first[0],
                first[1],
                "events_without_case",
                f"{count} event(s) belong to no case row (the case was deleted)",
            )
        ]
    return [
        Finding(
            stored.id,
            None,
            "case_without_events",
            "the case row has no history at all (its events were deleted)",
        )
    ]


def _quick_case(catalog: Catalog, stored: CaseHead | None, links: list[ChainLink]) -> list[Finding]:
    if stored is None or not links:
        return _missing(stored, links[0][:2] if links else None, len(links))
    r = Replayer(catalog, stored.id, stored.campaign_id, check=True)
    for link in links:
        r.check_chain(*link)
        r.case.last_seq, r.case.head_hash = link[1], link[3]
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
    if stored is None or not events:
        first = (events[0][0].case_id, events[0][0].seq) if events else None
        return _missing(stored, first, len(events))
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
