"""``/v1/cases``: create, read, list, update the draft, fire triggers, history.

Authorisation is the engine's (scope by owner or region, roles per transition,
auditors never write); these routes only map the token's user to an engine actor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Request
from fastapi.responses import JSONResponse

from ti_workflow.domain.actors import REGION_RE
from ti_workflow.domain.candidacy import CandidacyForm, normalise
from ti_workflow.engine import Change, Engine, warnings_of
from ti_workflow.errors import FieldError, InvalidData, TiWorkflowError
from ti_workflow.http import idempotency as idem
from ti_workflow.http.accounts import User
from ti_workflow.http.context import Caller, engine_of, write
from ti_workflow.http.errors import IdempotentReplay
from ti_workflow.http.problems import error_responses
from ti_workflow.http.schemas import (
    CANDIDACY_EXAMPLE,
    PAYLOAD_EXAMPLES,
    CaseOut,
    CasePage,
    CreateCase,
    FireOut,
    HistoryOut,
    TriggerOut,
)
from ti_workflow.http.validation import check_sirens
from ti_workflow.views import case_view, event_view, option_view

router = APIRouter(prefix="/v1", tags=["cases"])

CaseId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The case number.")]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The case version you read (its ETag, e.g. "3"); a stale one answers 412.',
        max_length=100,
    ),
]
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Unique per write (e.g. a UUID); a retry with it replays the response.",
        max_length=200,
    ),
]
READS = error_responses(401, 404, 422, 500)
WRITES = error_responses(400, 401, 403, 404, 409, 412, 413, 415, 422, 500)


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None) -> int | None:
    """``"3"`` or ``W/"3"`` -> 3; ``*`` -> no condition."""
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 9:
        raise InvalidData(
            "header",
            [FieldError("If-Match", f'expected a case ETag such as "3", got {if_match!r}')],
        )
    return int(text)


def _case_response(body: dict[str, Any], status: int = 200, **extra: str) -> JSONResponse:
    case = body.get("case", body)
    headers = {"ETag": etag(case["version"]), **extra}
    if status == 201:
        headers["Location"] = f"/v1/cases/{case['id']}"
    return JSONResponse(body, status_code=status, headers=headers)


def _write(
    request: Request,
    user: User,
    key: str | None,
    request_body: Any,
    status: int,
    render: Callable[[Change], dict[str, Any]],
    act: Callable[[], dict[str, Any]],
) -> JSONResponse:
    """Run a write once per ``Idempotency-Key``; replay its response on a retry."""
    engine = engine_of(request)
    if key is None:
        return _case_response(act(), status)
    db = engine.db
    fp = idem.fingerprint(request.method, request.url.path, request_body)
    stored = idem.lookup(db, user.id, idem.check_key(key), fp)
    if stored is None:
        token = idem.PENDING.set(idem.Pending(user.id, key, fp, status, render))
        try:
            return _case_response(act(), status)
        except IdempotentReplay:
            stored = idem.lookup(db, user.id, key, fp)
        except TiWorkflowError:
            # A concurrent twin may have acted first (this one then found a newer state).
            stored = idem.lookup(db, user.id, key, fp)
            if stored is None:
                raise
        finally:
            idem.PENDING.reset(token)
    assert stored is not None
    return _case_response(stored.body, stored.status, **{"Idempotent-Replayed": "true"})


def _fire_view(change: Change) -> dict[str, Any]:
    return {
        "case": case_view(change.case),
        "events": [event_view(e) for e in change.events],
        "warnings": warnings_of(change.events),
    }


@router.post(
    "/cases",
    status_code=201,
    response_model=CaseOut,
    responses=WRITES,
    summary="Create a candidacy draft (candidates only)",
)
async def create_case(
    request: Request, body: CreateCase, user: Caller, idempotency_key: IdemKey = None
) -> JSONResponse:
    check_sirens(body.data, "data.")
    engine: Engine = engine_of(request)
    _check_target(engine, body.workflow, body.campaign)
    data = normalise(body.data)

    def act() -> dict[str, Any]:
        return case_view(engine.create_case(body.workflow, body.campaign, data, user.actor))

    snapshot = body.model_dump(mode="json")
    return await write(
        request,
        lambda: _write(
            request, user, idempotency_key, snapshot, 201, lambda c: case_view(c.case), act
        ),
    )


@router.get("/cases", response_model=CasePage, responses=READS, summary="List and filter cases")
def list_cases(
    request: Request,
    user: Caller,
    state: Annotated[str | None, Query(max_length=100, examples=["submitted"])] = None,
    campaign: Annotated[str | None, Query(max_length=100, examples=["ti-2023-2027"])] = None,
    region: Annotated[
        str | None, Query(description="INSEE region code", examples=["84"], max_length=3)
    ] = None,
    workflow: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Text in the territory's name")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    engine = engine_of(request)
    _check_filters(engine, state, campaign, region, workflow)
    cases, total = engine.list_cases(
        user.actor,
        workflow=workflow,
        state=state,
        campaign=campaign,
        region=region,
        text=q,
        limit=limit,
        offset=offset,
    )
    items = [case_view(c, with_data=False) for c in cases]
    return JSONResponse({"total": total, "limit": limit, "offset": offset, "items": items})


def _check_target(engine: Engine, workflow: str, campaign: str) -> None:
    """An unknown workflow or campaign in the body is bad data (422), not a missing page."""
    errors = []
    if workflow not in engine.catalog.current:
        known = ", ".join(sorted(engine.catalog.current))
        errors.append(FieldError("workflow", f"unknown workflow {workflow!r}; known: {known}"))
    if campaign not in engine.catalog.campaigns:
        known = ", ".join(sorted(engine.catalog.campaigns))
        errors.append(FieldError("campaign", f"unknown campaign {campaign!r}; known: {known}"))
    if errors:
        raise InvalidData("request", errors)


def _check_filters(
    engine: Engine, state: str | None, campaign: str | None, region: str | None, wf: str | None
) -> None:
    catalog = engine.catalog
    states = sorted({s for d in catalog.definitions.values() for s in d.state_names})
    errors = []
    if state is not None and state not in states:
        errors.append(
            FieldError("query.state", f"unknown state {state!r}; known: {', '.join(states)}")
        )
    if campaign is not None and campaign not in catalog.campaigns:
        known = ", ".join(sorted(catalog.campaigns))
        errors.append(
            FieldError("query.campaign", f"unknown campaign {campaign!r}; known: {known}")
        )
    if region is not None and not REGION_RE.match(region):
        errors.append(
            FieldError("query.region", f"an INSEE region code such as 84, got {region!r}")
        )
    if wf is not None and wf not in catalog.current:
        known = ", ".join(sorted(catalog.current))
        errors.append(FieldError("query.workflow", f"unknown workflow {wf!r}; known: {known}"))
    if errors:
        raise InvalidData("query", errors)


@router.get("/cases/{case_id}", response_model=CaseOut, responses=READS, summary="Read a case")
def get_case(request: Request, case_id: CaseId, user: Caller) -> JSONResponse:
    return _case_response(case_view(engine_of(request).get(case_id, user.actor)))


@router.put(
    "/cases/{case_id}/data",
    response_model=CaseOut,
    responses=WRITES,
    summary="Replace the draft's candidacy file (its candidate, in draft only)",
)
async def update_data(
    request: Request,
    case_id: CaseId,
    user: Caller,
    data: Annotated[CandidacyForm, Body(examples=[CANDIDACY_EXAMPLE])],
    if_match: IfMatch = None,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    check_sirens(data, "")
    expected = expected_version(if_match)
    engine = engine_of(request)
    clean = normalise(data)

    def act() -> dict[str, Any]:
        return case_view(engine.update_data(case_id, clean, user.actor, expected))

    return await write(
        request,
        lambda: _write(
            request, user, idempotency_key, clean, 200, lambda c: case_view(c.case), act
        ),
    )


@router.post(
    "/cases/{case_id}/triggers/{trigger}",
    response_model=FireOut,
    responses=WRITES,
    summary="Fire a trigger on a case, with its payload",
)
async def fire(
    request: Request,
    case_id: CaseId,
    trigger: Annotated[str, Path(max_length=100, examples=["submit", "give_opinion", "label"])],
    user: Caller,
    payload: Annotated[
        dict[str, Any] | None,
        Body(
            description="The transition's declared fields (see GET .../triggers); "
            "unknown fields are refused.",
            openapi_examples=PAYLOAD_EXAMPLES,
        ),
    ] = None,
    if_match: IfMatch = None,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    expected = expected_version(if_match)
    engine = engine_of(request)
    body = payload or {}

    def act() -> dict[str, Any]:
        result = engine.fire(case_id, trigger, user.actor, body, expected)
        return {
            "case": case_view(result.case),
            "events": [event_view(e) for e in result.events],
            "warnings": result.warnings,
        }

    return await write(
        request, lambda: _write(request, user, idempotency_key, body, 200, _fire_view, act)
    )


@router.get(
    "/cases/{case_id}/triggers",
    response_model=list[TriggerOut],
    responses=READS,
    summary="Triggers the caller could fire now, with the rules that would refuse them",
)
def triggers(request: Request, case_id: CaseId, user: Caller) -> JSONResponse:
    options = engine_of(request).available_triggers(case_id, user.actor)
    return JSONResponse([option_view(o) for o in options])


@router.get(
    "/cases/{case_id}/history",
    response_model=HistoryOut,
    responses=READS,
    summary="Every event of the case, in order, with its hash chain",
)
def history(request: Request, case_id: CaseId, user: Caller) -> JSONResponse:
    events = engine_of(request).history(case_id, user.actor)
    return JSONResponse({"case_id": case_id, "events": [event_view(e) for e in events]})
