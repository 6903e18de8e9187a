"""The FastAPI application: routes under ``/v1``, problem+json errors, body limit.

``create_app(engine)`` serves any engine (tests give one with a simulated clock);
``create_app_from_env()`` is what ``ti-workflow serve`` runs in each uvicorn worker,
over the database named by ``TI_WORKFLOW_DB``, with the real clock.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ti_workflow.clock import Clock, SystemClock
from ti_workflow.console.app import install as install_console
from ti_workflow.engine import Engine
from ti_workflow.errors import TiWorkflowError
from ti_workflow.http import idempotency
from ti_workflow.http.context import log, record_refusal
from ti_workflow.http.limits import DEFAULT_LIMIT, BodyLimit, Scope
from ti_workflow.http.problems import MEDIA_TYPE, from_error, problem
from ti_workflow.http.routes import audit, campaigns, cases, files, system, workflows
from ti_workflow.http.validation import describe_validation, refuse_bad_text
from ti_workflow.http.writer import run_write, writer_for
from ti_workflow.settings import Settings

API_VERSION = "1.0.0"
DEFAULT_THREADS = 16
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
DESCRIPTION = """
Operator API of **ti-workflow** (Territoires d'industrie 2023-2027).

* Authentication: `Authorization: Bearer tiw_...` (tokens from `ti-workflow tokens create`).
* Every case response carries its version as a strong `ETag` (`"3"`); send it back in
  `If-Match` on a write to get **412** instead of overwriting a newer version.
* Every write accepts `Idempotency-Key`: a retry with the same key and body replays the
  first response (header `Idempotent-Replayed: true`); another body under the same key is
  refused (422).
* Errors are `application/problem+json` (RFC 9457) with a stable `type`
  (`urn:ti-workflow:problem:<kind>`), field paths in `errors` and failed programme rules in
  French and English in `rules`.
"""


def create_app(
    engine: Engine,
    *,
    body_limit: int = DEFAULT_LIMIT,
    auth_clock: Clock | None = None,
    threads: int = DEFAULT_THREADS,
    settings: Settings | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Fewer request threads than anyio's 40 (reads, and PostgreSQL writes): fewer
        # threads contending for the GIL keep the SQLite writer thread fast.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        try:
            yield
        finally:
            app.state.writer.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="ti-workflow operator API",
        version=API_VERSION,
        description=DESCRIPTION,
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        dependencies=[Depends(refuse_bad_text)],
    )
    app.state.engine = engine
    app.state.writer = writer_for(engine)
    app.state.auth_clock = auth_clock or SystemClock()
    if idempotency.hook not in engine.hooks:
        engine.hooks.append(idempotency.hook)
    for module in (cases, campaigns, system, audit, files, workflows):
        app.include_router(module.router)
    _install_handlers(app, engine)
    install_console(app, settings)  # the web console: its pages, after the API's handlers

    async def on_refusal(scope: Scope, status: int, slug: str) -> None:
        await run_write(
            engine,
            app.state.writer,
            partial(
                record_refusal,
                engine,
                method=scope["method"],
                path=scope["path"],
                status=status,
                problem=slug,
                user=None,
                case_id=None,
                detail="refused before reading the body",
            ),
        )

    app.add_middleware(
        BodyLimit, limit=body_limit, on_refusal=on_refusal, raw=frozenset({files.UPLOAD})
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def create_app_from_env() -> FastAPI:
    """The uvicorn factory used by ``ti-workflow serve`` (one engine per worker process)."""
    from ti_workflow.bootstrap import open_engine

    settings = Settings.from_env()
    return create_app(open_engine(settings), settings=settings)


def _respond(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], media_type=MEDIA_TYPE, headers=headers)


def _install_handlers(app: FastAPI, engine: Engine) -> None:
    async def refuse(request: Request, body: dict[str, Any], **headers: str) -> JSONResponse:
        raw = str(request.path_params.get("case_id", ""))
        case_id = int(raw) if raw.isdigit() and len(raw) < 10 else None
        await run_write(
            engine,
            app.state.writer,
            partial(
                record_refusal,
                engine,
                method=request.method,
                path=request.url.path,
                status=body["status"],
                problem=body["type"].rsplit(":", 1)[-1],
                user=getattr(request.state, "user", None),
                case_id=case_id,
                detail=body["detail"],
            ),
        )
        return _respond(body, {k.replace("_", "-"): v for k, v in headers.items()} or None)

    @app.exception_handler(TiWorkflowError)
    async def engine_error(request: Request, exc: TiWorkflowError) -> JSONResponse:
        if_match = request.headers.get("if-match", "*").strip() != "*"
        body = from_error(exc, request.url.path, if_match)
        if body["status"] == 401:
            return await refuse(request, body, WWW_Authenticate='Bearer realm="ti-workflow"')
        return await refuse(request, body)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        slug, detail, errors = describe_validation(exc.errors())
        body = problem(slug, detail, request.url.path, errors=errors)
        return await refuse(request, body)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed", 401: "unauthenticated"}.get(
            exc.status_code, "malformed-request"
        )
        body = problem(slug, str(exc.detail), request.url.path, status=exc.status_code)
        return await refuse(request, body)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.error(
            "unexpected error %s on %s %s", ref, request.method, request.url.path, exc_info=exc
        )
        body = problem(
            "internal-error",
            f"an unexpected error occurred (reference {ref}); nothing about it is disclosed "
            "here, the server log has the details",
            request.url.path,
        )
        return _respond(body)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with every error response as application/problem+json."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    for path in doc["paths"].values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45":
                    response["content"] = {MEDIA_TYPE: {"schema": PROBLEM_REF}}
    schemas = doc.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = jsonable_encoder(doc)
    return app.openapi_schema
