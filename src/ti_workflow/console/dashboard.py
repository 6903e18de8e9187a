"""The steering dashboard: counts by state and region, by campaign, filings per day against
the window, missing opinions, late timers, pending decisions, phase 1 filing again.

The national committee and the auditor see every case; a regional body sees the cases
concerning its region (the engine's scope for lists). Candidates have no dashboard (404).
Numbers come from the storage and scheduling areas' read functions (``storage.stats``,
``scheduling.timers``), never from table queries here. Charts are server-rendered SVG with
their numbers in a table beside them.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection

from ti_workflow.clock import PARIS
from ti_workflow.console import fr
from ti_workflow.console.pages import WORKFLOW
from ti_workflow.console.web import engine_of, page, signed_in
from ti_workflow.domain.actors import AUDITOR, NATIONAL_COMMITTEE, REGIONAL_ROLES, Actor
from ti_workflow.engine import Engine
from ti_workflow.errors import NotFound
from ti_workflow.scheduling.timers import late_or_escalated
from ti_workflow.storage import stats
from ti_workflow.storage.database import read
from ti_workflow.territories.phase1 import refiled

router = APIRouter(include_in_schema=False)
STEERING_ROLES = (NATIONAL_COMMITTEE, AUDITOR, *REGIONAL_ROLES)
PALETTE = (
    "#6a6af4",  # draft
    "#0063cb",  # submitted
    "#b34000",  # regional review
    "#7f3e98",  # national review
    "#18753c",  # labelled
    "#ce0500",  # not selected
    "#3a3a3a",  # withdrawn
    "#716043",  # lapsed
)
TIMERS_FR = {
    "window_opened": "Ouverture du dépôt des candidatures",
    "closing_reminder": "Rappel avant la clôture du dépôt",
    "window_closing": "Clôture du dépôt des candidatures",
    "opinion_reminder": "Rappel aux instances régionales",
    "regional_review_deadline": "Échéance des avis régionaux",
    "decision_announcement": "Annonce des décisions",
    "general_assembly_invitation": "Invitation à l'assemblée générale",
    "completion_reminder": "Rappel de complément du dossier",
}
TIMER_STATUS_FR = {
    "pending": "En retard",
    "claimed": "En retard (en cours de traitement)",
    "escalated": "Signalé au comité national",
}


def timer_label(name: str) -> str:
    """``closing_reminder.J-14`` → ``Rappel avant la clôture du dépôt (J-14)``."""
    base, _, occurrence = name.partition(".")
    label = TIMERS_FR.get(base, "Échéance programmée")
    return f"{label} ({occurrence})" if occurrence else label


_SUMMARIES: weakref.WeakKeyDictionary[Engine, dict[int, dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


_RESULTS: weakref.WeakKeyDictionary[
    Engine, dict[tuple[str | None, str], tuple[tuple[tuple[int, int], ...], dict[str, Any]]]
] = weakref.WeakKeyDictionary()


def case_summaries(
    engine: Engine, conn: Connection, current: dict[int, int]
) -> dict[int, dict[str, Any]]:
    """The cases in scope, summarised (``stats.summaries``), read again only for the cases
    whose version changed since the last dashboard: opinions and perimeters are JSON
    documents, decoding 2,000 of them on every request would cost most of the page."""
    cache = _SUMMARIES.setdefault(engine, {})
    stale = [i for i, v in current.items() if cache.get(i, {}).get("version") != v]
    cache.update(stats.summaries(conn, stale))
    return {i: cache[i] for i in current if i in cache}


def steering_actor(request: Request) -> tuple[Any, Actor]:
    session = signed_in(request)
    if session.user.role not in STEERING_ROLES:
        raise NotFound("page", request.url.path)
    return session, session.user.actor


def scope_of(actor: Actor) -> str | None:
    return actor.region if actor.role in REGIONAL_ROLES else None


# --- charts ------------------------------------------------------------------------------


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    fill: str
    label: str


def region_chart(
    rows: list[dict[str, Any]], states: list[tuple[str, str]], colours: dict[str, str]
) -> dict[str, Any]:
    """Horizontal bars, one per region, stacked by state."""
    label_w, bar_w, row_h = 190, 420, 22
    top = max((r["total"] for r in rows), default=0) or 1
    bars: list[Bar] = []
    labels = []
    for i, row in enumerate(rows):
        y = 10 + i * row_h
        x = float(label_w)
        for state, name in states:
            n = row["counts"].get(state, 0)
            if not n:
                continue
            w = bar_w * n / top
            bars.append(Bar(x, y, w, row_h - 6, colours[state], f"{row['name']}\u00a0: {n} {name}"))
            x += w
        labels.append({"x": label_w - 6, "y": y + row_h - 10, "text": row["name"]})
        labels.append({"x": x + 4, "y": y + row_h - 10, "text": fr.number(row["total"])})
    return {
        "width": label_w + bar_w + 50,
        "height": 20 + len(rows) * row_h,
        "bars": bars,
        "labels": labels,
        "legend": [{"name": n, "fill": colours[s]} for s, n in states],
    }


def filings_chart(days: list[dict[str, Any]], closes_index: int | None) -> dict[str, Any]:
    """Vertical bars, one per day of the window; a line at the closing instant."""
    left, width, height, base = 40, 640, 180, 200
    top = max((d["count"] for d in days), default=0) or 1
    step = width / max(len(days), 1)
    bars = [
        Bar(
            left + i * step,
            base - height * d["count"] / top,
            max(step - 1, 1),
            height * d["count"] / top,
            "#0063cb",
            f"{d['label']}\u00a0: {d['count']}",
        )
        for i, d in enumerate(days)
        if d["count"]
    ]
    ticks = [
        {"x": left + i * step, "text": d["short"]}
        for i, d in enumerate(days)
        if i % max(len(days) // 6, 1) == 0
    ]
    closing = left + (closes_index + 1) * step if closes_index is not None else None
    return {
        "width": left + width + 20,
        "height": base + 40,
        "base": base,
        "left": left,
        "right": left + width,
        "top_value": top,
        "bars": bars,
        "ticks": ticks,
        "closing_x": closing,
    }


# --- the numbers -------------------------------------------------------------------------


def _window_days(campaign: Any, instants: list[datetime]) -> tuple[list[dict[str, Any]], int]:
    per_day: dict[date, int] = {}
    for at in instants:
        day = at.astimezone(PARIS).date()
        per_day[day] = per_day.get(day, 0) + 1
    first = min([campaign.opens_on, *per_day], default=campaign.opens_on)
    last = max([campaign.closes_on, *per_day], default=campaign.closes_on)
    days: list[dict[str, Any]] = []
    day = first
    closes_index = 0
    while day <= last:
        if day == campaign.closes_on:
            closes_index = len(days)
        days.append(
            {
                "day": day,
                "label": fr.fr_date(day),
                "short": f"{day.day:02d}/{day.month:02d}",
                "count": per_day.get(day, 0),
            }
        )
        day += timedelta(days=1)
    return days, closes_index


def numbers(engine: Engine, actor: Actor, campaign_id: str | None = None) -> dict[str, Any]:
    """Everything the dashboard shows, in the actor's scope (plain data: tested directly).

    The case figures are computed again only when a case in scope changed (every event
    raises its case's version; a new case adds one): otherwise the last ones are reused.
    Timers are read on every call (they are late by the clock, not by an event)."""
    region = scope_of(actor)
    campaigns = sorted(engine.catalog.campaigns.values(), key=lambda c: c.opens_on)
    now = engine.clock.now()
    campaign = (
        next((c for c in campaigns if c.id == campaign_id), None)
        or ([c for c in campaigns if c.opens_on <= now.date()] or campaigns)[-1]
    )
    results = _RESULTS.setdefault(engine, {})
    with read(engine.db) as conn:
        current = stats.versions(conn, WORKFLOW, region)
        key = tuple(sorted(current.items()))
        hit = results.get((region, campaign.id))
        if hit is not None and hit[0] == key:
            figures = hit[1]
        else:
            figures = _case_figures(engine, conn, region, campaign, campaigns, current)
            results[(region, campaign.id)] = (key, figures)
        timers = late_or_escalated(conn, now, list(current) if region else None)
    timer_rows = [
        {
            "name": timer_label(t["name"]),
            "case_id": t["case_id"],
            "due": t["due_at"],
            "status": TIMER_STATUS_FR.get(t["status"], "En retard"),
            "escalated": t["status"] == "escalated",
        }
        for t in timers
    ]
    return {
        **figures,
        "now": now,
        "timers": timer_rows,
        "escalated": sum(1 for t in timer_rows if t["escalated"]),
    }


def _case_figures(
    engine: Engine,
    conn: Connection,
    region: str | None,
    campaign: Any,
    campaigns: list[Any],
    current: dict[int, int],
) -> dict[str, Any]:
    definition = engine.catalog.current_definition(WORKFLOW)
    states = [(s.name, s.label_fr or s.name) for s in definition.states]
    colours = {s: PALETTE[i % len(PALETTE)] for i, (s, _) in enumerate(states)}
    ref = engine.catalog.reference
    grid = stats.by_state_and_region(conn, WORKFLOW, region)
    per_campaign = stats.by_campaign_and_state(conn, WORKFLOW, region)
    submits = stats.trigger_instants(conn, WORKFLOW, "submit", region, campaign.id)
    summaries = case_summaries(engine, conn, current)
    waiting = [
        c for c in summaries.values() if c["state"] in ("regional_review", "national_review")
    ]
    waiting.sort(key=lambda c: c["id"])
    filed = {i: summaries[i]["members"] for i, _ in submits if i in summaries}

    region_codes = sorted({r for r, _ in grid}, key=lambda c: ref.region_name(c))
    region_rows: list[dict[str, Any]] = []
    for code in region_codes:
        counts = {s: grid.get((code, s), 0) for s, _ in states}
        region_rows.append(
            {
                "code": code,
                "name": ref.region_name(code),
                "counts": counts,
                "total": sum(counts.values()),
            }
        )
    state_totals = {s: sum(r["counts"][s] for r in region_rows) for s, _ in states}
    campaign_rows = []
    for c in campaigns:
        counts = {s: per_campaign.get((c.id, s), 0) for s, _ in states}
        if sum(counts.values()) or c.id == campaign.id:
            campaign_rows.append(
                {"id": c.id, "name": c.name, "counts": counts, "total": sum(counts.values())}
            )

    days, closes_index = _window_days(campaign, [at for _, at in submits])

    missing: dict[tuple[str, str], dict[str, Any]] = {}
    pending = []
    for case in waiting:
        opinions = case["opinions"]
        if case["state"] == "regional_review":
            due = next(
                (
                    t.due
                    for t in engine.catalog.campaign(case["campaign"]).timers
                    if t.name == "regional_review_deadline"
                ),
                None,
            )
            for code in case["regions"]:
                if region and code != region:
                    continue
                for body in fr.BODIES:
                    if body in (opinions.get(code) or {}):
                        continue
                    row = missing.setdefault(
                        (code, body),
                        {
                            "region": ref.region_name(code),
                            "body": fr.role(body),
                            "count": 0,
                            "due": due,
                            "cases": [],
                        },
                    )
                    row["count"] += 1
                    row["cases"].append(case["id"])
        else:
            given = [
                o.get("opinion")
                for code in case["regions"]
                for o in (opinions.get(code) or {}).values()
            ]
            pending.append(
                {
                    "id": case["id"],
                    "title": case["title"],
                    "regions": [ref.region_name(c) for c in case["regions"]],
                    "favourable": given.count("favourable"),
                    "unfavourable": given.count("unfavourable"),
                    "expected": 2 * len(case["regions"]),
                    "since": case["updated_at"],
                }
            )
    missing_rows = sorted(missing.values(), key=lambda r: (r["region"], r["body"]))
    phase1 = refiled(filed, region)
    return {
        "region": ref.region_name(region) if region else None,
        "campaign": campaign,
        "campaigns": {c.id: c.name for c in campaigns},
        "states": states,
        "colours": colours,
        "region_rows": region_rows,
        "state_totals": state_totals,
        "cases_total": sum(n for (_, _), n in per_campaign.items()),
        "campaign_rows": campaign_rows,
        "days": days,
        "filed_in_window": sum(d["count"] for d in days),
        "closes_at": campaign.closes_at,
        "missing": missing_rows,
        "missing_total": sum(r["count"] for r in missing_rows),
        "pending": pending,
        "phase1": phase1,
        "phase1_total": len(phase1),
        "phase1_refiled": sum(1 for p in phase1 if p.cases),
        "region_chart": region_chart(region_rows, states, colours),
        "filings_chart": filings_chart(days, closes_index),
    }


@router.get("/pilotage", response_class=HTMLResponse)
def dashboard(request: Request, campagne: str = "") -> HTMLResponse:
    session, actor = steering_actor(request)
    engine = engine_of(request)
    return page(
        request,
        "pages/dashboard.html",
        session=session,
        n=numbers(engine, actor, campagne[:100] or None),
    )
