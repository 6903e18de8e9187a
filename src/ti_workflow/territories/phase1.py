"""The 149 territories of phase 1 (2019-2022) and how a perimeter overlaps them.

FAQ 1.2 (line 72): phase-1 territories may apply again for 2023-2027. Showing a
candidacy's overlap with them is informative for the regional and national reviewers:
never a rule, nothing refuses on it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

TERRITORIES = "ti_2019_2022_territoires.csv"
MEMBERS = "ti_2019_2022_membres.csv"


@dataclass(frozen=True)
class Phase1Territory:
    id: str
    name: str
    members: frozenset[str]


@cache
def phase1_territories() -> tuple[Phase1Territory, ...]:
    """The shipped list (``ti_workflow/data``, see PROVENANCE.md), read once."""
    text = (resources.files("ti_workflow.data") / MEMBERS).read_text(encoding="utf-8")
    members: dict[str, set[str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        members.setdefault(row["id_ti"], set()).add(row["siren_groupement"])
    text = (resources.files("ti_workflow.data") / TERRITORIES).read_text(encoding="utf-8")
    return tuple(
        Phase1Territory(row["id_ti"], row["lib_ti"], frozenset(members.get(row["id_ti"], ())))
        for row in csv.DictReader(io.StringIO(text))
    )


def phase1_overlap(sirens: Iterable[str]) -> list[dict[str, Any]]:
    """Each phase-1 territory sharing groupements with this perimeter, most shared first:
    the shared SIRENs, and the share of the perimeter and of the phase-1 territory."""
    perimeter = set(sirens)
    out = []
    for t in phase1_territories():
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
