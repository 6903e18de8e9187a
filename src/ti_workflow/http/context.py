"""What every route needs: the engine, the authenticated caller, and the refusal log."""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import insert

from ti_workflow.clock import Clock
from ti_workflow.engine import Engine
from ti_workflow.http.accounts import User, authenticate
from ti_workflow.http.errors import Unauthenticated
from ti_workflow.http.tables import ApiAccessLogRow

log = logging.getLogger("ti_workflow.http")
access_log = ApiAccessLogRow.__table__  # type: ignore[attr-defined]

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="tiw_...",
    description="An API token from `ti-workflow tokens create USER` (shown once).",
)


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


class FifoLock:
    """Writers served in arrival order: ``threading.Lock`` is not fair, and a writer
    overtaken again and again is what makes the latency tail (p99) long."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._cond:
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                self._cond.wait()

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


_SQLITE_WRITES = FifoLock()


def write_lock(engine: Engine) -> AbstractContextManager[object]:
    """SQLite takes one writer at a time: queue writers on a lock, not in SQLite's busy loop.

    SQLite's busy handler sleeps up to 100 ms between retries, which dominates the
    latency of concurrent writes; a Python lock wakes the next writer at once.
    Several processes on one SQLite file still fall back to the busy handler.
    """
    if engine.db.dialect.name == "sqlite":
        return _SQLITE_WRITES
    return nullcontext()


def auth_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.auth_clock
    return clock


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    """The user behind the bearer token; 401 (recorded) if there is none or it is not valid.

    ``async`` on purpose: the lookup is one indexed read, cheaper than the hop to a
    worker thread that a sync dependency costs (measured ~10 ms on a loaded machine).
    """
    if credentials is None:
        raise Unauthenticated("send 'Authorization: Bearer <token>' (ti-workflow tokens create)")
    user = authenticate(engine_of(request).db, credentials.credentials, auth_clock(request).now())
    request.state.user = user
    return user


Caller = Annotated[User, Depends(caller)]


def record_refusal(
    engine: Engine,
    *,
    method: str,
    path: str,
    status: int,
    problem: str,
    user: User | None,
    case_id: int | None,
    detail: str,
) -> None:
    """Keep a row per refusal; a failure to log never hides the refusal itself."""
    try:
        with write_lock(engine), engine.db.begin() as conn:
            conn.execute(
                insert(access_log),
                {
                    "at": datetime.now(UTC),
                    "user_id": user.id if user else None,
                    "actor": user.actor.label if user else "",
                    "method": method,
                    "path": path[:500],
                    "status": status,
                    "problem": problem,
                    "case_id": case_id,
                    "detail": detail[:4000],
                },
            )
    except Exception:
        log.exception("could not record a refusal in api_access_log")
