"""Phase 1 of the programme (2019-2022, FAQ 1.2 line 72: the 149 territories "have
vocation" to apply again): which of them filed again, matched by perimeter overlap.

A phase-1 territory filed again when at least one filed candidacy (a case submitted at
least once) shares at least one member groupement (SIREN) with it. The list is shipped in
``ti_workflow/data`` (PROVENANCE.md). A candidacy's own overlap is informative for the
regional and national reviewers: never a rule, nothing refuses on it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

TERRITORIES = "ti_2019_2022_territoires.csv"


@dataclass(frozen=True)
class Phase1Territory:
    id: str
    name: str
    regions: tuple[str, ...]
    members: frozenset[str]


@cache
def phase1() -> tuple[Phase1Territory, ...]:
    text = resources.files("ti_workflow.data").joinpath(TERRITORIES).read_text(encoding="utf-8")
    return tuple(
        Phase1Territory(
            row["id_ti"],
            row["lib_ti"],
            tuple(r for r in row["regions"].split(";") if r),
            frozenset(s for s in row["sirens_groupements"].split(";") if s),
        )
        for row in csv.DictReader(text.splitlines())
    )


@dataclass(frozen=True)
class Refiled:
    territory: Phase1Territory
    cases: tuple[int, ...]
    """The filed candidacies sharing a member with it (empty: it did not file again)."""


def refiled(perimeters: dict[int, list[str]], region: str | None = None) -> list[Refiled]:
    """Each phase-1 territory (of ``region`` when given) with the filed cases overlapping it."""
    holders: dict[str, list[int]] = {}
    for case_id, sirens in sorted(perimeters.items()):
        for siren in set(sirens):
            holders.setdefault(siren, []).append(case_id)
    found = []
    for t in phase1():
        if region and region not in t.regions:
            continue
        cases = sorted({c for s in t.members for c in holders.get(s, [])})
        found.append(Refiled(t, tuple(cases)))
    return found


def phase1_overlap(sirens: Iterable[str]) -> list[dict[str, Any]]:
    """Each phase-1 territory sharing groupements with this perimeter, most shared first:
    the shared SIRENs, and the share of the perimeter and of the phase-1 territory."""
    perimeter = set(sirens)
    out = []
    for t in phase1():
        shared = perimeter & t.members
        if shared:
            out.append(
                {
                    "id": t.id,
                    "name": t.name,
                    "shared": sorted(shared),
                    "share_of_perimeter": round(len(shared) / len(perimeter), 3),
                    "share_of_phase1_territory": round(len(shared) / len(t.members), 3),
                }
            )
    return sorted(out, key=lambda o: (-len(o["shared"]), o["id"]))
