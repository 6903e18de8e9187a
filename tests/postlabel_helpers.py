"""Shared data and steps of the post-label tests (fiches-actions, FAQ 3)."""

from __future__ import annotations

from typing import Any

from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine

CAMPAIGN = "ti-2023-2027"
ARDECHE = "ti-8401"  # Ardèche Drôme Nord (84)
ALENCON = "ti-2801"  # Alençon, interregional: Normandie (28) and Pays de la Loire (52)
CAP_EXCELLENCE = "ti-0102"  # Guadeloupe (01)


def manager(tid: str) -> Actor:
    return Actor("project_manager", territory=tid)


def governance(tid: str) -> Actor:
    return Actor("territory_governance", territory=tid)


def owner(tid: str) -> Actor:
    return Actor("project_owner", territory=tid)


def sheet(tid: str, **overrides: Any) -> dict[str, Any]:
    """A complete fiche-action (FAQ 3.2 lines 171-177) of territory ``tid``."""
    data: dict[str, Any] = {
        "territory_id": tid,
        "origin": "new",
        "title": "Plateforme mutualisée de formation aux métiers de l'usinage",
        "priority": "skills",
        "description": "Former 120 opérateurs par an avec les industriels du bassin.",
        "owner_name": "Communauté de communes porteuse",
        "owner_kind": "intercommunality",
        "partners": [{"name": "Lycée professionnel", "role": "formation"}],
        "estimated_cost": 500000,
        "financing": [
            {"source": "Région", "amount": 200000, "status": "secured"},
            {"source": "Industriels", "amount": 150000.5, "status": "requested"},
            {"source": "À trouver", "amount": 149999.5, "status": "sought"},
        ],
        "starts_on": "2024-03-01",
        "ends_on": "2026-12-31",
        "indicators": [{"name": "Opérateurs formés", "unit": "personnes", "target": 360}],
        "maturity": "ready",
    }
    data.update(overrides)
    return data


def file_sheet(engine: Engine, tid: str, **overrides: Any) -> int:
    case = engine.create_case("action_sheet", CAMPAIGN, sheet(tid, **overrides), manager(tid))
    return case.id


def validate_sheet(engine: Engine, case_id: int, tid: str, region: str) -> None:
    engine.fire(case_id, "submit", manager(tid))
    engine.fire(case_id, "validate_locally", governance(tid))
    engine.fire(case_id, "validate_regionally", Actor("state_services", region=region))


def progress(engine: Engine, case_id: int, tid: str, value: int, spent: int) -> None:
    engine.fire(
        case_id,
        "report_progress",
        manager(tid),
        {"indicator": "Opérateurs formés", "value": value, "spent_eur": spent},
    )
