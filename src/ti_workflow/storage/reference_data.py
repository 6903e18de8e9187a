"""Loading the shipped 2023 reference CSVs (``ti_workflow/data``) into the database."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from importlib import resources
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from ti_workflow.domain.reference import Groupement, Referential
from ti_workflow.storage.tables import CommuneRow, DepartmentRow, GroupementRow, RegionRow

regions_t = RegionRow.__table__  # type: ignore[attr-defined]
departments_t = DepartmentRow.__table__  # type: ignore[attr-defined]
groupements_t = GroupementRow.__table__  # type: ignore[attr-defined]
communes_t = CommuneRow.__table__  # type: ignore[attr-defined]


def read_csv(name: str) -> Iterator[dict[str, str]]:
    text = (resources.files("ti_workflow.data") / name).read_text(encoding="utf-8")
    yield from csv.DictReader(io.StringIO(text, newline=""))


def _int(text: str) -> int:
    return int(text) if text.strip() else 0


def load_reference_data(conn: Connection) -> dict[str, int]:
    """Replace the reference tables with the shipped files; returns the row counts."""
    regions = [{"code": r["code"], "name": r["nom"]} for r in read_csv("regions_2023.csv")]
    departments = [
        {"code": r["code"], "name": r["nom"], "region": r["region"]}
        for r in read_csv("departements_2023.csv")
    ]
    groupements = [
        {
            "siren": r["siren"],
            "name": r["nom"],
            "nature": r["nature"],
            "departments": r["departements"],
            "regions": r["regions"],
            "population": _int(r["population_totale"]),
        }
        for name in ("epci_2023.csv", "ept_2023.csv")
        for r in read_csv(name)
    ]
    communes = [
        {
            "code_insee": r["code_insee"],
            "name": r["nom"],
            "siren": r["siren"],
            "epci_siren": r["siren_epci"] or None,
            "department": r["departement"],
            "region": r["region"],
            "population": _int(r["population"]),
        }
        for r in read_csv("communes_2023.csv")
    ]
    counts = {}
    for table, rows in (
        (regions_t, regions),
        (departments_t, departments),
        (groupements_t, groupements),
        (communes_t, communes),
    ):
        conn.execute(delete(table))
        conn.execute(insert(table), rows)
        counts[table.name] = len(rows)
    return counts


def load_referential(conn: Connection) -> Referential:
    groupements = [
        Groupement(
            siren=r.siren,
            name=r.name,
            nature=r.nature,
            departments=tuple(x for x in r.departments.split(";") if x),
            regions=tuple(x for x in r.regions.split(";") if x),
            population=r.population,
        )
        for r in conn.execute(select(groupements_t)).all()
    ]
    regions: dict[str, Any] = {r.code: r.name for r in conn.execute(select(regions_t)).all()}
    return Referential.of(groupements, regions)
