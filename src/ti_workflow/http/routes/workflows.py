"""``/v1/workflows/{name}/form``: a workflow's declared form, for any client to render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from ti_workflow.domain.declared import form_description
from ti_workflow.http.context import Caller, engine_of
from ti_workflow.http.problems import error_responses

router = APIRouter(prefix="/v1", tags=["workflows"])


@router.get(
    "/workflows/{name}/form",
    responses=error_responses(401, 404, 422, 500),
    summary="The fields of a workflow's form (types, labels, limits, repetitions)",
)
def workflow_form(
    request: Request,
    name: Annotated[str, Path(max_length=100, examples=["action_sheet"])],
    user: Caller,
) -> JSONResponse:
    engine = engine_of(request)
    return JSONResponse(form_description(engine.catalog.current_definition(name)))
