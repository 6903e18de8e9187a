"""Territory records: created by labelling, imported from the November 2023 list, renamed
and re-governed by amendments, all effective-dated (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, inspect, select

from conftest import (
    ARA_1,
    AUDITOR,
    CANDIDATE,
    COMMITTEE,
    EngineFactory,
    candidacy,
    drive_to_regional_review,
    give_all_opinions,
    paris,
)
from territories_helpers import (
    ARVE,
    FAUCIGNY,
    TERRITORY_OWNER,
    amendment,
    decide_favourably,
    file_amendment,
    import_shipped,
    members_on,
    territory_of,
)
from ti_workflow.clock import SimulatedClock
from ti_workflow.engine import Engine
from ti_workflow.errors import GuardRefused, InvalidData
from ti_workflow.storage.database import read
from ti_workflow.territories import importer, store
from ti_workflow.territories.errors import TerritoryRefused

TABLES = ("territories", "territory_names", "territory_members", "territory_communes",
          "territory_governance")  # fmt: skip


@pytest.fixture
def engine(make_engine: EngineFactory, db_url: str) -> Engine:
    return make_engine(db_url)


def label(engine: Engine, clock: SimulatedClock) -> int:
    case_id = drive_to_regional_review(engine)
    give_all_opinions(engine, case_id)
    clock.set(paris("2023-11-14T11:00:00"))
    engine.fire(case_id, "label", COMMITTEE)
    return case_id


def test_init_creates_the_territory_tables(engine: Engine) -> None:
    with engine.db.connect() as conn:
        present = set(inspect(conn).get_table_names())
    assert set(TABLES) <= present


def test_the_real_2023_list_imports_as_183_territories_and_630_memberships(
    engine: Engine,
) -> None:
    report = import_shipped(engine)
    assert (report.territories, report.memberships, len(report.created)) == (183, 630, 183)
    with read(engine.db) as conn:
        assert conn.execute(select(func.count()).select_from(store.territories_t)).scalar() == 183
        rows = conn.execute(select(store.members_t.c.siren)).scalars().all()
        start = {d for (d,) in conn.execute(select(store.members_t.c.valid_from)).all()}
    assert len(rows) == 630
    assert len(set(rows)) == 630  # no groupement in two territories
    assert start == {date(2023, 11, 14)}  # the campaign's announcement_on
    assert territory_of(engine, FAUCIGNY, "2023-11-13") is None
    assert territory_of(engine, FAUCIGNY, "2023-11-14") == ARVE


def test_a_second_import_changes_nothing(engine: Engine) -> None:
    import_shipped(engine)
    again = import_shipped(engine)
    assert (len(again.created), len(again.unchanged), again.differing) == (0, 183, ())
    with read(engine.db) as conn:
        assert conn.execute(select(func.count()).select_from(store.members_t)).scalar() == 630


def test_an_import_listing_a_groupement_twice_is_refused_with_its_lines(engine: Engine) -> None:
    text = (
        "id_ti,lib_ti,siren_groupement\n"
        f"ti-1,Un,{ARA_1}\n"
        f"ti-2,Deux,{ARA_1}\n"
        "ti-2,Deux,123456789\n"
        "ti-3,Trois,100000009\n"
    )
    with pytest.raises(InvalidData) as exc:
        importer.parse_list("list.csv", text, engine.catalog.reference)
    assert [e.location for e in exc.value.errors] == [
        "list.csv: line 3: siren_groupement",
        "list.csv: line 4: siren_groupement",
        "list.csv: line 5: siren_groupement",
    ]
    assert "already in territory ti-1 (line 2)" in exc.value.errors[0].message


def test_an_import_clashing_with_a_territory_in_the_database_writes_nothing(
    engine: Engine,
) -> None:
    import_shipped(engine)
    listed = importer.parse_list(
        "new.csv", f"id_ti,lib_ti,siren_groupement\nti-new,Nouveau,{FAUCIGNY}\n",
        engine.catalog.reference,
    )  # fmt: skip
    with pytest.raises(TerritoryRefused, match="ti-8422"), engine.db.begin() as conn:
        importer.import_territories(
            conn, engine.catalog.campaign("ti-2023-2027"), "new.csv", listed, engine.clock.now()
        )
    with read(engine.db) as conn:
        assert store.find_territory(conn, "ti-new") is None


def test_a_labelled_candidacy_becomes_a_territory(engine: Engine, clock: SimulatedClock) -> None:
    case_id = label(engine, clock)
    tid = f"ti-c{case_id:04d}"
    with read(engine.db) as conn:
        t = store.load_territory(conn, tid)
        snap = store.snapshot(conn, t, date(2023, 11, 14))
        before = store.snapshot(conn, t, date(2023, 11, 13))
    assert (t.source, t.case_id, t.labelled_on) == ("candidacy", case_id, date(2023, 11, 14))
    assert snap.name == "Vallée de l'Arve" and sorted(snap.sirens) == sorted(
        candidacy()["perimeter"]["members"]
    )
    assert [m["role"] for m in snap.governance] == ["elected", "industrial"]
    assert before.sirens == [] and not before.labelled


def test_labelling_a_groupement_already_in_a_territory_is_refused(
    engine: Engine, clock: SimulatedClock
) -> None:
    import_shipped(engine)  # CC Faucigny-Glières is in ti-8422 from 2023-11-14
    with pytest.raises(TerritoryRefused, match="ti-8422"):
        label(engine, clock)
    # the label event was rolled back with the territory
    case = engine.list_cases(AUDITOR, workflow="candidacy")[0][0]
    assert case.state == "national_review"


def test_governance_amendment_replaces_the_industrialist(
    engine: Engine, clock: SimulatedClock
) -> None:
    tid = f"ti-c{label(engine, clock):04d}"
    clock.set(paris("2024-03-01T10:00:00"))
    data = amendment(
        tid,
        remove_members=["M. Industriel"],
        add_members=[{"name": "Mme Nouvelle", "role": "industrial", "organisation": "Arve SA"}],
        new_name="Vallée de l'Arve et Faucigny",
        effective_on="2024-04-01",
    )
    case_id = file_amendment(engine, data, "governance_amendment", CANDIDATE)
    assert engine.get(case_id, AUDITOR).regions == ("84",)
    assert decide_favourably(engine, case_id) == "approved"
    with read(engine.db) as conn:
        t = store.load_territory(conn, tid)
        old = store.snapshot(conn, t, date(2024, 3, 31))
        new = store.snapshot(conn, t, date(2024, 4, 1))
    assert [m["name"] for m in old.governance] == ["Mme Élue", "M. Industriel"]
    assert [m["name"] for m in new.governance] == ["Mme Élue", "Mme Nouvelle"]
    assert (old.name, new.name) == ("Vallée de l'Arve", "Vallée de l'Arve et Faucigny")
    assert old.sirens == new.sirens


def test_governance_keeps_the_candidacy_rules(engine: Engine, clock: SimulatedClock) -> None:
    tid = f"ti-c{label(engine, clock):04d}"
    clock.set(paris("2024-03-01T10:00:00"))
    data = amendment(
        tid,
        remove_members=["Mme Élue", "M. Inconnu"],
        add_members=[{"name": "M. Second", "role": "industrial", "organisation": ""}],
    )
    case = engine.create_case("governance_amendment", "ti-2023-2027", data, CANDIDATE)
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case.id, "submit", CANDIDATE)
    assert {r.code for r in exc.value.rules} == {
        "governance_remove_unknown_member",  # M. Inconnu
        "governance_no_elected",  # FAQ 4.1
    }
    polynome = amendment(
        tid, add_members=[{"name": "M. Troisième", "role": "industrial", "organisation": ""}]
    )
    case = engine.create_case("governance_amendment", "ti-2023-2027", polynome, CANDIDATE)
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case.id, "submit", CANDIDATE)
    assert {r.code for r in exc.value.rules} == {"governance_extended_unjustified"}  # FAQ 4.4


def test_a_commune_of_a_split_groupement_moves_on_its_own(
    engine: Engine, clock: SimulatedClock
) -> None:
    import_shipped(engine)
    clock.set(paris("2024-03-01T10:00:00"))
    # Brizon (74049) leaves Vallée de l'Arve with its groupement staying in; Ardèche Drôme
    # Nord may only take it once it is out.
    early = engine.create_case(
        "perimeter_amendment",
        "ti-2023-2027",
        amendment("ti-8401", add_communes=["74049"], effective_on="2024-06-01"),
        TERRITORY_OWNER,
    )
    with pytest.raises(GuardRefused) as exc:
        engine.fire(early.id, "submit", TERRITORY_OWNER)
    assert {r.code for r in exc.value.rules} == {"commune_double_membership"}
    give = file_amendment(
        engine, amendment(ARVE, remove_communes=["74049"], effective_on="2024-06-01")
    )
    assert decide_favourably(engine, give) == "approved"
    take = file_amendment(
        engine, amendment("ti-8401", add_communes=["74049"], effective_on="2024-06-01")
    )
    assert decide_favourably(engine, take) == "approved"
    with read(engine.db) as conn:
        assert store.commune_holders(conn, "74049", FAUCIGNY, date(2024, 5, 31)) == [ARVE]
        assert store.commune_holders(conn, "74049", FAUCIGNY, date(2024, 6, 1)) == ["ti-8401"]
    assert FAUCIGNY in members_on(engine, ARVE, "2024-06-01")


def test_a_groupement_joins_without_its_commune_held_elsewhere(
    engine: Engine, clock: SimulatedClock
) -> None:
    """FAQ 2.1: no double membership at commune level either, once a groupement is split."""
    import_shipped(engine)
    clock.set(paris("2024-03-01T10:00:00"))
    for tid, change in ((ARVE, "remove_communes"), ("ti-8401", "add_communes")):
        case_id = file_amendment(
            engine, amendment(tid, effective_on="2024-06-01", **{change: ["74049"]})
        )
        assert decide_favourably(engine, case_id) == "approved"
    leave = file_amendment(
        engine,
        amendment(
            ARVE,
            remove=[FAUCIGNY],
            effective_on="2024-07-01",
            single_member_justification="Vallée industrielle de taille critique",  # FAQ 2.2
        ),
    )
    assert decide_favourably(engine, leave) == "approved"
    assert territory_of(engine, FAUCIGNY, "2024-07-01") is None
    join = amendment("ti-8402", add=[FAUCIGNY], effective_on="2024-07-01")
    case = engine.create_case("perimeter_amendment", "ti-2023-2027", join, TERRITORY_OWNER)
    with pytest.raises(GuardRefused) as exc:
        engine.fire(case.id, "submit", TERRITORY_OWNER)
    assert {r.code for r in exc.value.rules} == {"amendment_commune_elsewhere"}
    engine.update_data(case.id, {**join, "remove_communes": ["74049"]}, TERRITORY_OWNER)
    assert engine.fire(case.id, "submit", TERRITORY_OWNER).case.state == "submitted"
