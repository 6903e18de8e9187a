"""Where the API's writes run: one writer thread per process on SQLite, the pool elsewhere.

SQLite takes one writer at a time. Sixteen request threads queueing on a lock cost
more than the writes themselves: every hand-over wakes threads that then fight for
the GIL, and the lock holder waits its turn for the interpreter like everyone else.
A single thread that takes writes from a FIFO queue keeps them in arrival order, and
the event loop only waits on a future. PostgreSQL has row locks and several
connections, so its writes go to the request thread pool as before.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

from ti_workflow.engine import Engine
from ti_workflow.storage.database import batch, is_sqlite, savepoint

T = TypeVar("T")
MAX_BATCH = 64
_Item = tuple[Callable[[], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def writer_for(engine: Engine) -> SerialWriter:
    """The writer of one process. On a SQLite file, several workers (and the CLI, and the
    scheduler) take turns through the engine's ``flock`` (``storage.database.WriteLock``):
    each of this writer's batches is one write transaction, so one turn."""
    return SerialWriter(engine.db)


class SerialWriter:
    """Runs writes one at a time, in submission order, on its own daemon thread.

    The writes waiting when the thread comes round are run as one batch: one
    transaction, each write in its own SAVEPOINT (a refused write undoes only itself),
    one durable COMMIT for all; each caller gets its answer after that COMMIT. If the
    COMMIT fails, every write of the batch is reported failed and none was kept."""

    def __init__(
        self,
        db: sa.Engine,
        max_batch: int = MAX_BATCH,
        name: str = "ti-workflow-writer",
    ) -> None:
        self._db = db
        self._max_batch = max_batch
        self._name = name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self.batches = 0
        """How many batches were committed (for tests and benchmarks)."""

    async def run(self, fn: Callable[[], T]) -> T:
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, future, loop))
        return await future

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                    thread.start()
                    self._thread = thread

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            items = [first]
            while len(items) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                items.append(item)
            try:
                outcomes = self._run_batch(items)
            except BaseException as exc:  # never leave a request waiting on a dead writer
                outcomes = [(None, exc)] * len(items)
            for (_, future, loop), (result, error) in zip(items, outcomes, strict=True):
                loop.call_soon_threadsafe(_settle, future, result, error)

    def _run_batch(self, items: list[_Item]) -> list[tuple[Any, BaseException | None]]:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            with batch(self._db) as conn:
                for fn, _, _ in items:
                    try:
                        with savepoint(conn):
                            outcomes.append((fn(), None))
                    except Exception as exc:  # this write's own failure, undone alone
                        outcomes.append((None, exc))
        except Exception as exc:  # the COMMIT (or BEGIN) failed: nothing was kept
            return [(None, exc)] * len(items)
        self.batches += 1
        return outcomes


async def run_write(engine: Engine, writer: SerialWriter, fn: Callable[[], T]) -> T:
    """Run a write: on the serial writer thread for SQLite, in the thread pool otherwise."""
    if is_sqlite(engine.db):
        return await writer.run(fn)
    return await run_in_threadpool(fn)
