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
import fcntl
import os
import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
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


class FileLock(AbstractContextManager[None]):
    """An exclusive ``flock`` on a file beside the database, held around each write.

    Several ``serve`` workers on one SQLite file would otherwise meet in SQLite's busy
    handler, which sleeps up to 100 ms between attempts; a process blocked in ``flock``
    is woken as soon as the holder lets go."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def writer_for(engine: Engine) -> SerialWriter:
    """The writer of one process: on a SQLite file, locked against the other workers."""
    database = engine.db.url.database if is_sqlite(engine.db) else None
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database)
        return SerialWriter(engine.db, FileLock(path.with_name(path.name + ".writer-lock")))
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
        lock: FileLock | None = None,
        max_batch: int = MAX_BATCH,
        name: str = "ti-workflow-writer",
    ) -> None:
        self._db = db
        self._lock = lock
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
        if self._lock is not None:
            self._lock.close()

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
            with self._lock or nullcontext(), batch(self._db) as conn:
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
