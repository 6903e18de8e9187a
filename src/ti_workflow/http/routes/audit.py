"""``/v1``: the audit and notification views of a case, and whole-log verification.

Read-only; every route first asks the engine for the case as the caller, so a case
outside one's scope answers 404 exactly as ``GET /v1/cases/{id}`` does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from ti_workflow.audit.snapshot import parse_at, state_at
from ti_workflow.audit.verify import verify
from ti_workflow.domain.actors import AUDITOR, NATIONAL_COMMITTEE
from ti_workflow.errors import Forbidden
from ti_workflow.http.context import Caller, engine_of
from ti_workflow.http.problems import error_responses
from ti_workflow.mail import outbox
from ti_workflow.storage.database import read

router = APIRouter(prefix="/v1", tags=["audit"])

CaseId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The case number.")]
READS = error_responses(401, 403, 404, 422, 500)


@router.get(
    "/cases/{case_id}/state-at",
    response_model=dict[str, Any],
    responses=READS,
    summary="The case as it was at an instant, rebuilt from its events",
)
def case_state_at(
    request: Request,
    case_id: CaseId,
    user: Caller,
    at: Annotated[
        str,
        Query(
            description="ISO 8601 instant; without an offset it is read in Europe/Paris.",
            examples=["2023-12-01T00:00:00"],
            max_length=64,
        ),
    ],
) -> JSONResponse:
    engine = engine_of(request)
    engine.get(case_id, user.actor)
    return JSONResponse(state_at(engine, case_id, parse_at(at, "at")).as_dict())


@router.get(
    "/cases/{case_id}/verify",
    response_model=dict[str, Any],
    responses=READS,
    summary="Verify the case: hash chain, replay against the stored case, every transition",
)
def case_verify(request: Request, case_id: CaseId, user: Caller) -> JSONResponse:
    engine = engine_of(request)
    engine.get(case_id, user.actor)
    return JSONResponse(verify(engine, case_id).as_dict())


@router.get(
    "/verify",
    response_model=dict[str, Any],
    responses=READS,
    summary="Verify every case (auditor and national committee)",
)
def verify_all(
    request: Request,
    user: Caller,
    quick: Annotated[bool, Query(description="Hash chains and case heads only.")] = False,
) -> JSONResponse:
    if user.actor.role not in (AUDITOR, NATIONAL_COMMITTEE):
        raise Forbidden(user.actor.label, "verify every case", "auditor or national_committee only")
    return JSONResponse(verify(engine_of(request), quick=quick).as_dict())


@router.get(
    "/cases/{case_id}/notifications",
    response_model=list[dict[str, Any]],
    responses=READS,
    summary="What was sent to whom about the case (its outbox messages)",
)
def case_notifications(request: Request, case_id: CaseId, user: Caller) -> JSONResponse:
    engine = engine_of(request)
    engine.get(case_id, user.actor)
    with read(engine.db) as conn:
        rows = outbox.list_messages(conn, case_id=case_id, limit=10_000, reader=user.actor)
    return JSONResponse(rows)
