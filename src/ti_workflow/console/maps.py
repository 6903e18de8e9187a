"""The map of the territories and a territory's page (Leaflet, vendored; no tile server).

The layers are the region and département outlines and the territories' own polygons,
shipped simplified in ``ti_workflow/data/geo`` (``territories.geo``). The map at a date
shows the territories labelled that day; a territory whose perimeter differs from the
November 2023 list (labelled through a candidacy, or amended) has no known outline: the
page lists it instead of drawing it. Data reach the page as JSON from a route (the CSP
allows no inline script).

Who: the national committee, the auditor and the regional bodies (the list of labelled
territories is public; every territory is shown to each of them). Candidates: 404.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ti_workflow.clock import paris
from ti_workflow.console.dashboard import steering_actor
from ti_workflow.console.web import engine_of, page
from ti_workflow.domain.amendment_forms import AMENDMENT_WORKFLOWS
from ti_workflow.engine import Engine
from ti_workflow.errors import NotFound
from ti_workflow.storage import stats
from ti_workflow.storage.database import read
from ti_workflow.territories import geo, store
from ti_workflow.territories.geo import MapTerritory

router = APIRouter(include_in_schema=False)
REGION_COLOURS = (
    "#000091",
    "#b34000",
    "#18753c",
    "#7f3e98",
    "#ce0500",
    "#0063cb",
    "#716043",
    "#a94645",
    "#006a6f",
    "#8d533e",
    "#3558a2",
    "#66673d",
    "#9c3f5d",
    "#465f9d",
    "#4f6d3b",
    "#6e445a",
    "#00726e",
    "#8c5a1f",
)
STATES = {
    "labelled": ("Labellisé", "#18753c"),
    "amending": ("Modification en cours", "#b34000"),
}
DateParam = Annotated[str, Query(alias="date", max_length=10)]


def parse_day(engine: Engine, text: str) -> tuple[date, str | None]:
    """The map's day (default: today in Paris) and, for a bad value, the French error."""
    today = paris(engine.clock.now()).date()
    if not text:
        return today, None
    try:
        return date.fromisoformat(text), None
    except ValueError:
        return today, "Indiquez une date valide au format AAAA-MM-JJ, par exemple 2023-11-14."


def _amending(engine: Engine) -> dict[str, list[int]]:
    finals = {
        s.name
        for w in AMENDMENT_WORKFLOWS
        if w in engine.catalog.current
        for s in engine.catalog.current_definition(w).states
        if s.final
    }
    with read(engine.db) as conn:
        return stats.open_by_territory(conn, AMENDMENT_WORKFLOWS, finals)


def map_data(engine: Engine, day: date, tid: str | None = None) -> dict[str, Any]:
    """The territories of ``day`` (or one of them): drawable as GeoJSON, the others listed."""
    ref = engine.catalog.reference
    with read(engine.db) as conn:
        found = geo.territories_on(conn, ref, day, tid)
    amending = _amending(engine)
    codes = sorted(ref.regions)
    colours = {c: REGION_COLOURS[i % len(REGION_COLOURS)] for i, c in enumerate(codes)}
    features, undrawn = [], []
    for t in found:
        state = "amending" if amending.get(t.id) else "labelled"
        props = {
            "id": t.id,
            "name": t.name,
            "url": f"/territoires/{t.id}?date={day.isoformat()}",
            "region": ref.region_name(t.lead_region) if t.lead_region else "",
            "regionColour": colours.get(t.lead_region or "", "#3a3a3a"),
            "state": STATES[state][0],
            "stateColour": STATES[state][1],
        }
        if t.drawable:
            features.append({"type": "Feature", "properties": props, "geometry": t.geometry})
        else:
            undrawn.append({**props, "why": t.why_not})
    used = sorted({t.lead_region for t in found if t.lead_region}, key=ref.region_name)
    return {
        "day": day.isoformat(),
        "territories": {"type": "FeatureCollection", "features": features},
        "undrawn": undrawn,
        "legend": {
            "region": [{"name": ref.region_name(c), "colour": colours[c]} for c in used],
            "state": [{"name": n, "colour": c} for n, c in STATES.values()],
        },
    }


@router.get("/carte/contours.json")
def outlines(request: Request) -> Response:
    """Region and département outlines (the same for every date: cached by the browser)."""
    steering_actor(request)
    return JSONResponse(
        {"regions": geo.layer("regions"), "departements": geo.layer("departements")}
    )


@router.get("/carte/territoires.json")
def territories_json(request: Request, jour: DateParam = "") -> Response:
    steering_actor(request)
    engine = engine_of(request)
    day, error = parse_day(engine, jour)
    if error:
        return JSONResponse({"erreur": error, "champ": "date"}, status_code=422)
    return JSONResponse(map_data(engine, day))


@router.get("/carte", response_class=HTMLResponse)
def map_page(request: Request, jour: DateParam = "") -> HTMLResponse:
    session, _ = steering_actor(request)
    engine = engine_of(request)
    day, error = parse_day(engine, jour)
    data = map_data(engine, day)
    return page(
        request,
        "pages/map.html",
        status=422 if error else 200,
        session=session,
        day=day,
        error=error,
        data=data,
        source=f"/carte/territoires.json?date={day.isoformat()}",
    )


def _territory(engine: Engine, tid: str, day: date) -> tuple[MapTerritory | None, Any]:
    with read(engine.db) as conn:
        territory = store.find_territory(conn, tid[:40])
        if territory is None:
            raise NotFound("territory", tid)
        found = geo.territories_on(conn, engine.catalog.reference, day, territory.id)
        return (found[0] if found else None), store.history(conn, territory.id)


@router.get("/territoires/{tid}/donnees.json")
def territory_json(request: Request, tid: str, jour: DateParam = "") -> Response:
    steering_actor(request)
    engine = engine_of(request)
    day, error = parse_day(engine, jour)
    if error:
        return JSONResponse({"erreur": error, "champ": "date"}, status_code=422)
    _territory(engine, tid, day)
    return JSONResponse(map_data(engine, day, tid))


@router.get("/territoires/{tid}", response_class=HTMLResponse)
def territory_page(request: Request, tid: str, jour: DateParam = "") -> HTMLResponse:
    session, _ = steering_actor(request)
    engine = engine_of(request)
    day, error = parse_day(engine, jour)
    current, history = _territory(engine, tid, day)
    ref = engine.catalog.reference
    members = []
    for siren in current.members if current else []:
        g = ref.groupement(siren)
        members.append(
            {
                "siren": siren,
                "name": g.name if g else "groupement inconnu du référentiel",
                "nature": g.nature if g else None,
                "regions": [ref.region_name(r) for r in g.regions] if g else [],
            }
        )
    names = {p["siren"]: ref.groupement(p["siren"]) for p in history["members"]}
    changes = sorted(
        [
            {
                "from": p["valid_from"],
                "to": p["valid_to"],
                "what": "Nom\u00a0: " + p["name"],
                "case_id": p.get("case_id"),
            }
            for p in history["names"]
        ]
        + [
            {
                "from": p["valid_from"],
                "to": p["valid_to"],
                "what": "Membre\u00a0: "
                + (names[p["siren"]].name if names[p["siren"]] else p["siren"])  # type: ignore[union-attr]
                + f" (SIREN {p['siren']})",
                "case_id": p.get("case_id"),
            }
            for p in history["members"]
        ]
        + [
            {
                "from": p["valid_from"],
                "to": p["valid_to"],
                "what": f"Gouvernance\u00a0: {len(p['members'] or [])} membres",
                "case_id": p.get("case_id"),
            }
            for p in history["governance"]
        ],
        key=lambda c: (str(c["from"]), c["what"]),
    )
    for c in changes:  # a period ends the day before ``valid_to`` (exclusive)
        c["last"] = date.fromisoformat(c["to"]) - timedelta(days=1) if c["to"] else None
    return page(
        request,
        "pages/territory.html",
        status=422 if error else 200,
        session=session,
        tid=tid,
        current=current,
        day=day,
        error=error,
        members=members,
        changes=changes,
        region_names=[ref.region_name(r) for r in current.regions] if current else [],
        source=f"/territoires/{tid}/donnees.json?date={day.isoformat()}",
    )
