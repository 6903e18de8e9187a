"""The API's SQLite writer: writes queued together commit together (one durable COMMIT),
each in its own SAVEPOINT, and nobody is answered before that COMMIT."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import EngineFactory, candidacy
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.errors import TransitionNotAllowed
from ti_workflow.http.writer import SerialWriter
from ti_workflow.storage.database import read, transaction
from ti_workflow.storage.repository import events as events_t

CANDIDATE = Actor("candidate", email="ti@arve.example.org")


def drafts(engine: Engine, n: int) -> list[int]:
    return [
        engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE).id for _ in range(n)
    ]


def state(engine: Engine, cid: int) -> tuple[str, int, int]:
    """What an operator would see: state, version, number of events in the history."""
    case = engine.get(cid, Actor("auditor"))
    with read(engine.db) as conn:
        n = conn.execute(select(func.count()).where(events_t.c.case_id == cid)).scalar_one()
    return case.state, case.version, n


def run_held(writer: SerialWriter, fns: list[Callable[[], Any]]) -> list[Any]:
    """Queue ``fns`` while the writer is busy, so that they form one batch; outcomes
    (results or exceptions) in order."""
    entered, gate = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        gate.wait()

    async def main() -> list[Any]:
        first = asyncio.ensure_future(writer.run(hold))
        await asyncio.to_thread(entered.wait)  # the writer thread is inside ``hold``
        rest = [asyncio.ensure_future(writer.run(fn)) for fn in fns]
        await asyncio.sleep(0)  # each task queues its write, then waits on its future
        gate.set()
        await first
        return await asyncio.gather(*rest, return_exceptions=True)

    return asyncio.run(main())


def test_a_refused_write_in_a_batch_undoes_only_itself(
    make_engine: EngineFactory, db_url: str
) -> None:
    engine = make_engine(db_url)
    a, b, c, d = drafts(engine, 4)
    writer = SerialWriter(engine.db)

    def submit_then_crash() -> None:
        engine.fire(c, "submit", CANDIDATE)
        raise RuntimeError("the request failed after its fire")

    try:
        outcomes = run_held(
            writer,
            [
                lambda: engine.fire(a, "submit", CANDIDATE).case.state,
                lambda: engine.fire(b, "label", Actor("national_committee")),
                submit_then_crash,
                lambda: engine.fire(d, "submit", CANDIDATE).case.state,
            ],
        )
    finally:
        writer.stop()
    assert writer.batches == 2  # the held write, then the four queued behind it
    assert outcomes[0] == "submitted" and outcomes[3] == "submitted"
    assert isinstance(outcomes[1], TransitionNotAllowed)
    assert isinstance(outcomes[2], RuntimeError)
    assert state(engine, a) == ("submitted", 2, 2)
    assert state(engine, b) == ("draft", 1, 1)  # refused: nothing written
    assert state(engine, c) == ("draft", 1, 1)  # its fire undone with its failure
    assert state(engine, d) == ("submitted", 2, 2)


def test_a_write_sees_the_writes_before_it_in_its_batch(
    make_engine: EngineFactory, db_url: str
) -> None:
    engine = make_engine(db_url)
    (cid,) = drafts(engine, 1)
    writer = SerialWriter(engine.db)
    try:
        outcomes = run_held(
            writer,
            [
                lambda: engine.fire(cid, "submit", CANDIDATE, expected_version=1).case.version,
                # Same expected version: the first one's uncommitted change is seen.
                lambda: engine.fire(cid, "withdraw", CANDIDATE, expected_version=1),
                lambda: engine.fire(cid, "withdraw", CANDIDATE, expected_version=2).case.state,
            ],
        )
    finally:
        writer.stop()
    assert outcomes[0] == 2
    assert type(outcomes[1]).__name__ == "Conflict"
    assert outcomes[2] == "withdrawn"
    assert state(engine, cid) == ("withdrawn", 3, 3)


def test_a_failed_commit_fails_every_write_of_its_batch(
    make_engine: EngineFactory, sqlite_url: str
) -> None:
    """SQLite checks deferred foreign keys at COMMIT: one bad write fails the COMMIT, and
    then no write of the batch is kept and every caller is told so."""
    engine = make_engine(sqlite_url)
    a, b = drafts(engine, 2)
    writer = SerialWriter(engine.db)

    def orphan_event() -> None:
        with transaction(engine.db) as conn:
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
            conn.exec_driver_sql(
                "INSERT INTO events (case_id, seq, trigger, source, dest, actor, role, at, "
                "payload, annotations, definition_version, prev_hash, hash) VALUES "
                "(999999, 1, 'x', NULL, 'x', 'x', 'x', '2023-07-03 08:00:00.000000', '{}', "
                "'{}', 'x', 'x', 'x')"
            )

    try:
        outcomes = run_held(
            writer,
            [
                lambda: engine.fire(a, "submit", CANDIDATE),
                orphan_event,
                lambda: engine.fire(b, "submit", CANDIDATE),
            ],
        )
    finally:
        writer.stop()
    assert all(isinstance(o, Exception) for o in outcomes), outcomes
    assert "FOREIGN KEY" in str(outcomes[0])
    assert state(engine, a) == ("draft", 1, 1)
    assert state(engine, b) == ("draft", 1, 1)


@pytest.mark.parametrize("n", [1, 5])
def test_writes_come_back_in_order_and_all_are_kept(
    make_engine: EngineFactory, sqlite_url: str, n: int
) -> None:
    engine = make_engine(sqlite_url)
    ids = drafts(engine, n)
    writer = SerialWriter(engine.db)

    async def main() -> list[str]:
        return list(
            await asyncio.gather(
                *(
                    writer.run(lambda c=c: engine.fire(c, "submit", CANDIDATE).case.state)
                    for c in ids
                )
            )
        )

    try:
        assert asyncio.run(main()) == ["submitted"] * n
    finally:
        writer.stop()
    assert [state(engine, c)[0] for c in ids] == ["submitted"] * n
