"""Database set-up: engines for SQLite (WAL, BEGIN IMMEDIATE) and PostgreSQL, and migrations."""

from __future__ import annotations

import fcntl
import itertools
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from ti_workflow.errors import FieldError, InvalidData, TiWorkflowError


class DatabaseUnavailable(TiWorkflowError):
    kind = "database_unavailable"


class SchemaOutdated(TiWorkflowError):
    kind = "schema_outdated"


def connection_lost(exc: DBAPIError) -> DatabaseUnavailable:
    """The one-line error for a database lost in the middle of a command."""
    reason = (str(exc.orig) if exc.orig is not None else str(exc)).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__
    return DatabaseUnavailable(
        f"the database failed in the middle of the command ({first}); what was committed "
        "before is kept, the transaction in progress was undone: run the command again "
        "to finish"
    )


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` as PostgreSQL through psycopg 3, the driver we ship."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidData(
            "database URL",
            [
                FieldError(
                    "--db",
                    f"{url!r} is not a database URL; e.g. sqlite:///ti_workflow.db "
                    "or postgresql+psycopg://user@host/dbname",
                )
            ],
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise InvalidData(
        "database URL",
        [
            FieldError(
                "--db",
                f"unsupported database {parsed.get_backend_name()!r}; "
                "use sqlite:/// or postgresql+psycopg://",
            )
        ],
    )


WriteWait = Callable[[str, str], None]
on_write_wait: WriteWait | None = None
"""Called (lock file, holder) when a write must wait for another process's: the CLI sets
it to say so on stderr."""


class WriteLock:
    """Every write transaction on a SQLite file first takes its turn through two
    ``flock`` files beside it, ``<db>.writer-queue`` then ``<db>.writer-lock``: the CLI,
    the scheduler and every ``serve`` worker wait there, each woken as soon as the holder
    lets go (SQLite's own busy handler sleeps up to 100 ms between polls, so a command
    could wait behind a busy API for most of its 30 s, or fail). The queue file makes
    the hand-over fair: the next writer holds it while it waits for the lock, so a
    holder that lets go cannot take the lock straight back (``flock`` alone lets the
    fastest re-taker win). One pair of descriptors per connection: two threads of one
    process queue like two processes. A thread that already writes through another
    connection goes straight to SQLite's own lock, as before (never a wait on itself)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.queue = path.with_name(path.name.removesuffix("-lock") + "-queue")
        self._holders: dict[int, int] = {}  # thread id -> connections it holds the lock by
        self._guard = threading.Lock()

    def _fds(self, info: dict[str, Any]) -> tuple[int, int]:
        fds = info.get("tiw_lock_fds")
        if fds is None:
            flags = os.O_RDWR | os.O_CREAT
            fds = info["tiw_lock_fds"] = (
                os.open(self.queue, flags, 0o600),
                os.open(self.path, flags, 0o600),
            )
        return fds

    def acquire(self, info: dict[str, Any]) -> None:
        me = threading.get_ident()
        with self._guard:
            if self._holders.get(me):
                return
        queue, lock = self._fds(info)
        told = _take(queue, lock, self.path, told=False)
        _take(lock, lock, self.path, told)
        fcntl.flock(queue, fcntl.LOCK_UN)
        os.pwrite(lock, f"{socket.gethostname()}:{os.getpid()}".encode().ljust(64), 0)
        info["tiw_lock_thread"] = me
        with self._guard:
            self._holders[me] = self._holders.get(me, 0) + 1

    def release(self, info: dict[str, Any]) -> None:
        thread = info.pop("tiw_lock_thread", None)
        if thread is None:
            return
        fcntl.flock(info["tiw_lock_fds"][1], fcntl.LOCK_UN)
        with self._guard:
            self._holders[thread] -= 1
            if not self._holders[thread]:
                del self._holders[thread]

    def forget(self, info: dict[str, Any]) -> None:
        """The connection is closed: let go of the lock and of its descriptors."""
        self.release(info)
        for fd in info.pop("tiw_lock_fds", ()):
            os.close(fd)


def _take(fd: int, lock: int, path: Path, told: bool) -> bool:
    """``flock`` ``fd``; if it must wait, say so once (naming the holder of ``lock``)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return told
    except BlockingIOError:
        if on_write_wait is not None and not told:
            holder = os.pread(lock, 64, 0).decode(errors="replace").strip() or "?"
            on_write_wait(str(path), holder)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True


def lock_file(url: str) -> Path | None:
    """``<db>.writer-lock`` beside a SQLite file (None in memory or for a ``file:`` URI)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return path.with_name(path.name + ".writer-lock")


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    path = lock_file(url)
    lock = WriteLock(path) if path is not None else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction takes the lock up front (waiting up to the timeout),
        # so a read-modify-write never fails half-way on a lock upgrade.
        # Straight to the driver: through exec_driver_sql this one statement cost a tenth of
        # a whole fire (SQLAlchemy's execution context), for nothing it needs to know.
        readonly = conn.get_execution_options().get("readonly")
        info = conn.connection.info
        if lock is not None and not readonly:
            lock.acquire(info)
        try:
            mode = "DEFERRED" if readonly else "IMMEDIATE"
            conn.connection.driver_connection.execute(f"BEGIN {mode}")  # type: ignore[union-attr]
        except BaseException:
            if lock is not None:
                lock.release(info)
            raise

    if lock is not None:

        def _release(conn: Connection) -> None:
            lock.release(conn.connection.info)

        def _reset(_dbapi: Any, record: Any, _state: Any) -> None:
            lock.release(record.info)

        def _invalidated(_dbapi: Any, record: Any, _exc: Any) -> None:
            lock.forget(record.info)

        def _closed(_dbapi: Any, record: Any) -> None:
            lock.forget(record.info)

        event.listen(engine, "commit", _release)
        event.listen(engine, "rollback", _release)
        event.listen(engine.pool, "reset", _reset)
        event.listen(engine.pool, "invalidate", _invalidated)
        event.listen(engine.pool, "close", _closed)

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


_SAVEPOINTS = itertools.count(1)
_BATCH: ContextVar[Connection | None] = ContextVar("ti_workflow_batch", default=None)
"""The transaction of the batch this thread is running, if any (see :func:`batch`)."""


def _batch_of(engine: Engine) -> Connection | None:
    conn = _BATCH.get()
    return conn if conn is not None and conn.engine is engine else None


@contextmanager
def batch(engine: Engine) -> Iterator[Connection]:
    """One transaction for several commands (group commit: one durable COMMIT for all).

    While it is open, :func:`transaction` in this thread is a SAVEPOINT inside it, so a
    command that fails undoes only its own writes, and :func:`read` reads through it,
    so a command sees the commands before it. Nothing is durable before the end of the
    block: callers answer each command only after it. On SQLite the savepoints' journal
    is kept in memory for this transaction (it spills to a temporary file otherwise, a
    few writes per command); other transactions keep theirs.

    Inside a running batch of this thread, a batch is a SAVEPOINT of it: what the caller
    writes after the inner block commits with it, or not at all."""
    outer = _batch_of(engine)
    if outer is not None:
        with savepoint(outer):
            yield outer
        return
    with engine.connect() as conn:
        driver = conn.connection.driver_connection if engine.dialect.name == "sqlite" else None
        before: Any = None
        if driver is not None:
            (before,) = driver.execute("PRAGMA temp_store").fetchone()
            driver.execute("PRAGMA temp_store = MEMORY")
        token = _BATCH.set(conn)
        try:
            with conn.begin():
                yield conn
        finally:
            _BATCH.reset(token)
            if driver is not None and not conn.invalidated:
                driver.execute(f"PRAGMA temp_store = {int(before)}")


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction: its own, or a SAVEPOINT within the running :func:`batch`."""
    outer = _batch_of(engine)
    if outer is None:
        with engine.begin() as conn:
            yield conn
        return
    with savepoint(outer):
        yield outer


@contextmanager
def savepoint(conn: Connection) -> Iterator[None]:
    """Undo only what the block wrote if it raises; the transaction goes on.

    On SQLite it is plain SQL on the driver connection, under SQLAlchemy's transaction,
    at a tenth of the cost of ``begin_nested`` (which compiles two statements each time).
    """
    if conn.dialect.name != "sqlite":
        with conn.begin_nested():
            yield
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    name = f"tiw_{next(_SAVEPOINTS)}"
    driver.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        if driver.in_transaction:  # some errors (disk full...) already rolled it all back
            driver.execute(f"ROLLBACK TO {name}")
            driver.execute(f"RELEASE {name}")
        raise
    driver.execute(f"RELEASE {name}")


def transaction_alive(conn: Connection) -> bool:
    """False once an error ended the whole transaction (SQLite rolls back everything on a
    full disk or an I/O error; a PostgreSQL connection can be lost)."""
    if conn.dialect.name == "sqlite":
        return bool(conn.connection.driver_connection.in_transaction)  # type: ignore[union-attr]
    return not conn.invalidated


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    outer = _batch_of(engine)
    if outer is not None:
        yield outer
        return
    with engine.connect().execution_options(readonly=True) as conn, conn.begin():
        yield conn


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config  # imported on demand: it costs a quarter second

    config = Config()
    location = resources.files("ti_workflow.storage") / "migrations"
    config.set_main_option("script_location", str(location))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade(engine: Engine) -> None:
    """Create the schema or bring it to the latest migration; data is kept."""
    from alembic import command

    config = alembic_config(engine)
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach the database {engine.url!r}: {exc.orig}") from None


def check_schema(engine: Engine) -> None:
    database = engine.url.database
    on_disk = is_sqlite(engine) and database not in (None, "", ":memory:")
    if on_disk and database and not Path(database).exists():  # connecting would create it
        raise SchemaOutdated(
            f"no database file {database!r}: run `ti-workflow init` first, with this --db "
            "(or check --db / TI_WORKFLOW_DB)"
        )
    try:
        with engine.connect() as conn:
            present = inspect(conn).has_table("cases")
    except OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach the database {engine.url!r}: {exc.orig}") from None
    if not present:
        raise SchemaOutdated(
            f"the database {engine.url!r} has no ti-workflow schema: run `ti-workflow init` first"
        )
