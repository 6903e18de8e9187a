"""What every route needs: the engine, the authenticated caller, and the refusal log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import insert

from ti_workflow.clock import Clock
from ti_workflow.domain.text import safe_text
from ti_workflow.engine import Engine
from ti_workflow.http.accounts import User, authenticate
from ti_workflow.http.errors import Unauthenticated
from ti_workflow.http.tables import ApiAccessLogRow
from ti_workflow.http.writer import run_write
from ti_workflow.storage.database import transaction

T = TypeVar("T")

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


async def write(request: Request, fn: Callable[[], T]) -> T:
    """Run a write where this database wants it (see :mod:`ti_workflow.http.writer`)."""
    return await run_write(engine_of(request), request.app.state.writer, fn)


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
        with transaction(engine.db) as conn:
            conn.execute(
                insert(access_log),
                {
                    "at": datetime.now(UTC),
                    "user_id": user.id if user else None,
                    "actor": user.actor.label if user else "",
                    "method": method,
                    "path": _storable(path)[:500],
                    "status": status,
                    "problem": problem,
                    "case_id": case_id,
                    "detail": _storable(detail)[:4000],
                },
            )
    except Exception:
        log.exception("could not record a refusal in api_access_log")


def _storable(text: str) -> str:
    """NUL cannot be stored in PostgreSQL text: a refused request's path may hold one."""
    return safe_text(text)
