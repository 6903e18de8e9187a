"""``audit verify`` on honest amendment cases (issue 12, item 1), SQLite and PostgreSQL.

FAQ 2.3 (line 140) asks for the opinions of the regional council and of the State services
"en région"; FAQ 2.5 (line 148) makes every region concerned take part. The live engine
reads the regions concerned from the database (the territory's own regions, those of the
communes moved) and the territory as it stands on the effective date: each event records
what its rules read (its ``context`` annotation) and the replay uses exactly that. One
test per kind of amendment: groupements, communes, rename, governance, mixed, multi-region.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from conftest import AUDITOR, EngineFactory, paris
from territories_helpers import (
    ARDECHE,
    ARVE,
    PLAINE_DIJONNAISE,
    TARENTAISE,
    amendment,
    decide_favourably,
    file_amendment,
    import_shipped,
    members_on,
)
from ti_workflow.audit.snapshot import snapshot
from ti_workflow.audit.verify import verify
from ti_workflow.clock import SimulatedClock
from ti_workflow.engine import Engine
from ti_workflow.storage import repository

NEVERS = "ti-2707"  # Nevers Val de Loire: gained the commune of Cercy-la-Tour in 2024
CERCY_LA_TOUR = "58046"  # of CC Bazois Loire Morvan (200067882), Bourgogne-Franche-Comté
EST_DU_LOIRET = "ti-2404"  # members in Centre-Val de Loire (24) and in 27


@pytest.fixture
def engine(make_engine: EngineFactory, db_url: str, clock: SimulatedClock) -> Engine:
    clock.set(paris("2024-03-01T10:00:00"))
    e = make_engine(db_url)
    import_shipped(e)
    return e


def assert_honest(engine: Engine, case_id: int) -> None:
    """What an auditor runs: no finding, and the replay gives the live case back."""
    report = verify(engine)
    assert report.ok, [str(f) for f in report.findings]
    replayed = {s.case.case_id: s.case for s in snapshot(engine, engine.clock.now()) if s.case}
    live, got = engine.get(case_id, AUDITOR), replayed[case_id]
    assert (got.state, got.regions, got.facts) == (live.state, live.regions, live.facts)


def approve(engine: Engine, data: dict[str, Any], workflow: str = "perimeter_amendment") -> int:
    case_id = file_amendment(engine, data, workflow)
    assert decide_favourably(engine, case_id) == "approved"
    return case_id


def test_groupements_added_verify(engine: Engine) -> None:
    case_id = approve(engine, amendment(ARDECHE, add=[TARENTAISE], effective_on="2024-06-01"))
    assert_honest(engine, case_id)


def test_communes_only_verify_the_cercy_la_tour_case(engine: Engine) -> None:
    """FAQ 2.3 line 140: ti-2707 gained Cercy-la-Tour; no groupement moves, yet the region
    of the territory (and of the commune) gives its opinions."""
    data = amendment(NEVERS, add_communes=[CERCY_LA_TOUR], effective_on="2024-06-01")
    case_id = approve(engine, data)
    assert "27" in engine.get(case_id, AUDITOR).regions
    assert_honest(engine, case_id)


def test_rename_only_verifies(engine: Engine) -> None:
    """FAQ 2.3 line 140: a new name only is still reviewed by the territory's region."""
    case_id = approve(engine, amendment(ARVE, new_name="Arve industrielle"))
    assert engine.get(case_id, AUDITOR).regions == ("84",)
    assert_honest(engine, case_id)


def test_governance_amendment_verifies(engine: Engine) -> None:
    """FAQ 2.3 line 140 (gouvernance) and 4.1 line 198 (binôme élu-industriel)."""
    data = amendment(
        ARVE,
        add_members=[
            {"name": "Mme Élue", "role": "elected", "organisation": "CC Faucigny-Glières"},
            {"name": "M. Industriel", "role": "industrial", "organisation": "Décolletage SA"},
        ],
    )
    case_id = approve(engine, data, "governance_amendment")
    assert engine.get(case_id, AUDITOR).regions == ("84",)
    assert_honest(engine, case_id)


def test_mixed_amendment_verifies(engine: Engine) -> None:
    data = amendment(
        NEVERS,
        add_communes=[CERCY_LA_TOUR],
        new_name="Nevers Val de Loire et Bazois",
        effective_on="2024-06-01",
    )
    case_id = approve(engine, data)
    assert_honest(engine, case_id)
    ardeche = approve(
        engine, amendment(ARDECHE, add=[TARENTAISE], new_name="Ardèche Drôme Nord et Savoie")
    )
    assert_honest(engine, ardeche)


def test_a_groupement_of_another_region_on_a_two_region_territory_verifies(
    engine: Engine,
) -> None:
    """FAQ 2.5 line 148: every region concerned takes part, the territory's two and the
    added groupement's."""
    case_id = file_amendment(engine, amendment(EST_DU_LOIRET, add=[TARENTAISE]))
    regions = engine.get(case_id, AUDITOR).regions
    assert set(regions) >= {"24", "27", "84"}
    assert decide_favourably(engine, case_id) == "approved"
    assert TARENTAISE in members_on(engine, EST_DU_LOIRET, "2024-03-01")
    assert_honest(engine, case_id)
    second = approve(engine, amendment(ARDECHE, add=[PLAINE_DIJONNAISE]))
    assert engine.get(second, AUDITOR).regions == ("27", "84")
    assert_honest(engine, second)


def test_editing_the_recorded_regions_is_caught(engine: Engine) -> None:
    """The regions the live engine used are in the create event: rewriting them (to let
    a region out of the review) is a finding, not a silent change of the replay."""
    case_id = approve(engine, amendment(NEVERS, add_communes=[CERCY_LA_TOUR]))
    create = engine.history(case_id, AUDITOR)[0]
    notes = {**create.annotations, "context": {"regions": []}}
    events_t = repository.events
    where = (events_t.c.case_id == case_id) & (events_t.c.seq == 1)
    with engine.db.begin() as conn:
        conn.execute(update(events_t).where(where).values(annotations=notes))
    findings = verify(engine).findings
    assert any(f.case_id == case_id and f.seq == 1 for f in findings)
