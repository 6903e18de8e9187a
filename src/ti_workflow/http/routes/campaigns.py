"""``/v1/campaigns``: each campaign's filing window and dated parameters, Paris and UTC."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.events import iso_utc
from ti_workflow.http.context import Caller, engine_of
from ti_workflow.http.problems import error_responses
from ti_workflow.http.schemas import CampaignOut

router = APIRouter(prefix="/v1", tags=["campaigns"])


def _instant(value: datetime, campaign: Campaign) -> dict[str, str]:
    return {"utc": iso_utc(value), "local": value.astimezone(campaign.zone).isoformat()}


def _day(day: date, campaign: Campaign) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0, 0), campaign.zone)
    end = datetime.combine(day + timedelta(days=1), time(0, 0), campaign.zone)
    return start, end - timedelta(microseconds=1)


def campaign_view(campaign: Campaign, now: datetime) -> dict[str, Any]:
    timetable = []
    for name, value in sorted(campaign.parameters.items(), key=lambda kv: str(kv[1])):
        if isinstance(value, date) and not isinstance(value, datetime):
            start, end = _day(value, campaign)
            timetable.append(
                {
                    "name": name,
                    "date": value.isoformat(),
                    "day_starts": _instant(start, campaign),
                    "day_ends": _instant(end, campaign),
                }
            )
    return {
        "id": campaign.id,
        "name": campaign.name,
        "timezone": campaign.timezone,
        "opens_on": campaign.opens_on.isoformat(),
        "closes_on": campaign.closes_on.isoformat(),
        "opens_at": _instant(campaign.opens_at, campaign),
        "closes_at": _instant(campaign.closes_at, campaign),
        "open_now": campaign.window_contains(now),
        "parameters": {
            k: v.isoformat() if isinstance(v, date) else v for k, v in campaign.parameters.items()
        },
        "timetable": timetable,
    }


@router.get(
    "/campaigns",
    response_model=list[CampaignOut],
    responses=error_responses(401, 500),
    summary="Campaigns, their filing window and timetable",
)
def list_campaigns(request: Request, user: Caller) -> JSONResponse:
    engine = engine_of(request)
    now = engine.clock.now()
    campaigns = sorted(engine.catalog.campaigns.values(), key=lambda c: c.opens_on)
    return JSONResponse([campaign_view(c, now) for c in campaigns])


@router.get(
    "/campaigns/{campaign_id}",
    response_model=CampaignOut,
    responses=error_responses(401, 404, 422, 500),
    summary="One campaign's window (Europe/Paris and UTC) and dated parameters",
)
def get_campaign(
    request: Request,
    campaign_id: Annotated[str, Path(max_length=100, examples=["ti-2023-2027"])],
    user: Caller,
) -> JSONResponse:
    engine = engine_of(request)
    return JSONResponse(campaign_view(engine.catalog.campaign(campaign_id), engine.clock.now()))
