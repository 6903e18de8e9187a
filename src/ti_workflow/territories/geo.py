"""The territories' outlines for maps: the ANCT polygons of November 2023, simplified and
shipped in ``ti_workflow/data/geo`` (see its PROVENANCE.md), used only where they still
hold: a territory is drawn on a day when its members that day are exactly those of the
November 2023 list; otherwise (labelled through a candidacy, or amended since) its
outline is unknown and the map lists it instead.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import Connection

from ti_workflow.domain.reference import Referential
from ti_workflow.territories import store

GEO = "geo"
LIST_2023 = "ti_2023_2027_liste20231114_membres.csv"


def _data_text(*parts: str) -> str:
    path = resources.files("ti_workflow.data")
    for part in parts:
        path = path.joinpath(part)
    return path.read_text(encoding="utf-8")


@cache
def layer(name: str) -> dict[str, Any]:
    """A shipped layer: ``regions``, ``departements`` or ``territoires_2023``."""
    data: dict[str, Any] = json.loads(_data_text(GEO, f"{name}.geojson"))
    return data


@cache
def outlines_2023() -> dict[str, dict[str, Any]]:
    """Territory id → its simplified MultiPolygon (November 2023)."""
    return {f["properties"]["id"]: f["geometry"] for f in layer("territoires_2023")["features"]}


@cache
def members_2023() -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    for row in csv.DictReader(_data_text(LIST_2023).splitlines()):
        found.setdefault(row["id_ti"], set()).add(row["siren_groupement"])
    return {k: frozenset(v) for k, v in found.items()}


@dataclass
class MapTerritory:
    id: str
    name: str
    regions: list[str]
    lead_region: str | None
    members: list[str]
    drawable: bool
    why_not: str | None = None
    geometry: dict[str, Any] | None = field(default=None, repr=False)


def lead_region(reference: Referential, sirens: list[str]) -> str | None:
    """The region holding most of the members (ties: the smaller code)."""
    counts: dict[str, int] = {}
    for siren in sirens:
        g = reference.groupement(siren)
        for r in g.regions if g else ():
            counts[r] = counts.get(r, 0) + 1
    return min(counts, key=lambda r: (-counts[r], r)) if counts else None


def why_not_drawn(tid: str, sirens: list[str]) -> str | None:
    """``None`` when the 2023 outline holds; otherwise the French reason it does not."""
    known = members_2023().get(tid)
    if tid not in outlines_2023() or known is None:
        return "territoire sans contour connu (labellisé après la liste de novembre 2023)"
    if frozenset(sirens) != known:
        return "périmètre modifié depuis novembre 2023\u00a0: contour inconnu"
    return None


def territories_on(
    conn: Connection, reference: Referential, day: date, tid: str | None = None
) -> list[MapTerritory]:
    found = []
    for t, name, sirens in store.list_territories(conn, day):
        if tid is not None and t.id != tid:
            continue
        reason = why_not_drawn(t.id, sirens)
        found.append(
            MapTerritory(
                id=t.id,
                name=name or t.id,
                regions=list(reference.regions_of(sirens)),
                lead_region=lead_region(reference, sirens),
                members=sirens,
                drawable=reason is None,
                why_not=reason,
                geometry=outlines_2023().get(t.id) if reason is None else None,
            )
        )
    return found
