"""``/v1/health`` (liveness), ``/v1/ready`` (database reachable and migrated), ``/v1/me``."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from ti_workflow.http.context import Caller, engine_of
from ti_workflow.http.problems import MEDIA_TYPE, error_responses, problem
from ti_workflow.http.schemas import Health, MeOut
from ti_workflow.storage.database import alembic_config

router = APIRouter(prefix="/v1", tags=["system"])


@cache
def expected_heads(db: Engine) -> frozenset[str]:
    """The migration heads this code expects (read once per process)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(alembic_config(db)).get_heads())


@router.get("/health", response_model=Health, summary="Liveness: the process answers")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok", "detail": ""})


@router.get(
    "/ready",
    response_model=Health,
    responses=error_responses(503),
    summary="Readiness: the database is reachable and at the latest migration",
)
def ready(request: Request) -> JSONResponse:
    engine = engine_of(request)
    try:
        with engine.db.connect() as conn:
            current = {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))}
    except SQLAlchemyError as exc:
        reason = type(exc).__name__
        body = problem(
            "unavailable", f"database not reachable or not initialised ({reason})", request.url.path
        )
        return JSONResponse(body, status_code=503, media_type=MEDIA_TYPE)
    missing = expected_heads(engine.db) - current
    if missing:
        body = problem(
            "unavailable",
            f"database not migrated (missing {', '.join(sorted(missing))}): run `ti-workflow init`",
            request.url.path,
        )
        return JSONResponse(body, status_code=503, media_type=MEDIA_TYPE)
    return JSONResponse({"status": "ready", "detail": f"migrations {', '.join(sorted(current))}"})


@router.get("/me", response_model=MeOut, responses=error_responses(401, 500), summary="Who am I")
async def me(user: Caller) -> JSONResponse:
    return JSONResponse(user.as_dict())
