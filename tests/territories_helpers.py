"""Shared helpers of the territories tests (imported by tests/test_territories_*.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

from conftest import AUDITOR, COMMITTEE, SYSTEM
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.storage.database import read
from ti_workflow.territories import importer, store, writes

# From the shipped November 2023 list (Auvergne-Rhône-Alpes = 84, Bourgogne-Franche-Comté = 27)
ARDECHE = "ti-8401"  # Ardèche Drôme Nord, 8 groupements, region 84
ARVE = "ti-8422"  # Vallée de l'Arve, 2 groupements: 200000172, 200033116
CAP_EXCELLENCE = "ti-0102"  # one groupement, 200018653 (Guadeloupe)
FAUCIGNY = "200000172"  # CC Faucigny-Glières, member of ti-8422
TARENTAISE = "200023299"  # CC Coeur de Tarentaise (84), in no territory
ANNEMASSE = "200011773"  # CA Annemasse-Les Voirons (84), in no territory
PLAINE_DIJONNAISE = "200000925"  # CC de la Plaine Dijonnaise (27), in no territory
TERRITORY_OWNER = Actor("candidate", email="ti@territoire.example.org")


def import_shipped(
    engine: Engine, contact: str | None = TERRITORY_OWNER.email
) -> importer.ImportReport:
    """The shipped list; ``contact``: the account the Délégation attaches to each territory
    (FAQ 2.3: only an attached account files an amendment), none: no contact set."""
    listed = importer.parse_list("shipped", importer.shipped_list(), engine.catalog.reference)
    now = engine.clock.now()
    with engine.db.begin() as conn:
        report = importer.import_territories(
            conn, engine.catalog.campaign("ti-2023-2027"), "shipped", listed, now
        )
        if contact:
            for tid in listed:
                writes.set_contact(conn, tid, contact, by="national_committee", now=now)
    return report


def amendment(territory_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "territory_id": territory_id,
        "contact_email": TERRITORY_OWNER.email,
        "justification": "Coopération industrielle de bassin d'emploi (FAQ 2.3)",
        **fields,
    }


def file_amendment(
    engine: Engine,
    data: dict[str, Any],
    workflow: str = "perimeter_amendment",
    owner: Actor = TERRITORY_OWNER,
) -> int:
    """Create, submit and open the regional review of an amendment; returns its case id."""
    case = engine.create_case(workflow, "ti-2023-2027", data, owner)
    engine.fire(case.id, "submit", owner)
    engine.fire(case.id, "start_regional_review", SYSTEM)
    return case.id


def opinion(engine: Engine, case_id: int, body: str, region: str, value: str) -> str:
    result = engine.fire(
        case_id, "give_opinion", Actor(body, region=region), {"opinion": value, "reasons": "vu"}
    )
    return result.case.state


def all_favourable(engine: Engine, case_id: int) -> str:
    state = ""
    for region in engine.get(case_id, AUDITOR).regions:
        for body in ("regional_council", "state_services"):
            state = opinion(engine, case_id, body, region, "favourable")
    return state


def decide(engine: Engine, case_id: int, reason: str | None = None) -> str:
    """The Délégation's approval (FAQ 2.3: the opinions are necessary, not sufficient)."""
    payload = {"reason": reason} if reason else {}
    return engine.fire(case_id, "approve", COMMITTEE, payload).case.state


def members_on(engine: Engine, territory_id: str, day: str) -> list[str]:
    with read(engine.db) as conn:
        t = store.load_territory(conn, territory_id)
        return store.snapshot(conn, t, date.fromisoformat(day)).sirens


def territory_of(engine: Engine, siren: str, day: str) -> str | None:
    with read(engine.db) as conn:
        found = store.memberships(conn, [siren], on=date.fromisoformat(day))
    assert len(found) <= 1, found
    return found[0].territory_id if found else None


def decide_favourably(engine: Engine, case_id: int) -> str:
    """Every region's two favourable opinions, then the Délégation's approval (with a
    reason where the change is flagged as beyond the margin)."""
    assert all_favourable(engine, case_id) == "national_review"
    major = engine.get(case_id, AUDITOR).facts["scope"]["major_change"]
    return decide(engine, case_id, "jugée marginale au regard du bassin" if major else None)
