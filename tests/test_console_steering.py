"""The steering dashboard and the map over real HTTP: the numbers a user reads, in the
scope of their role; the map's data at a date (amendments make an outline unknown).

Simulated clock: 3 July 2023, the filing window open (FAQ 1.2: 23 June to 22 September
2023 inclusive); the regional review due date is the campaign's (FAQ 1.3).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from conftest import (
    CANDIDATE,
    COMMITTEE,
    candidacy,
    drive_to_regional_review,
    give_all_opinions,
    paris,
)
from console_support import Console, serve_console
from territories_helpers import (
    ARDECHE,
    TARENTAISE,
    all_favourable,
    amendment,
    file_amendment,
    import_shipped,
)
from ti_workflow.clock import SimulatedClock
from ti_workflow.console.dashboard import numbers
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.http import accounts
from ti_workflow.scheduling.sweep import sweep

# Haut-Jura Saint-Claude (Bourgogne-Franche-Comté, 27): with the two EPCI of the Arve
# (Auvergne-Rhône-Alpes, 84) an interregional perimeter (FAQ 2.5).
EPCI_27 = "200026573"


@pytest.fixture
def console(engine: Engine) -> Iterator[Console]:
    with serve_console(engine) as served:
        yield served


def text(body: str) -> str:
    plain = html.unescape(re.sub(r"<[^>]+>", " ", body))
    return " ".join(plain.replace("\u00a0", " ").replace("\u202f", " ").split())


def table(body: str, table_id: str) -> list[list[str]]:
    """The rows of one table of the page (header cells and data cells), as text."""
    found = re.search(rf'id="{table_id}".*?<table>(.*?)</table>', body, re.S)
    assert found, f"no table {table_id}"
    return [
        [text(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S)
    ]


def campaign_of(engine: Engine) -> None:
    """Four cases: a draft; one filed on 3 July; one filed on 4 July, in regional review,
    interregional, with one opinion given; one with every opinion (national selection)."""
    clock = engine.clock
    assert isinstance(clock, SimulatedClock)
    engine.create_case(
        "candidacy", "ti-2023-2027", candidacy(territory_name="Brouillon"), CANDIDATE
    )
    filed = engine.create_case(
        "candidacy", "ti-2023-2027", candidacy(territory_name="Déposé"), CANDIDATE
    )
    engine.fire(filed.id, "submit", CANDIDATE)
    clock.advance(timedelta(days=1))
    inter = candidacy(territory_name="Jura-Arve")
    inter["perimeter"]["members"] = ["200000172", "200033116", EPCI_27]
    review = drive_to_regional_review(engine, inter)
    engine.fire(
        review,
        "give_opinion",
        Actor("regional_council", region="84"),
        {"opinion": "favourable", "reasons": "motivé"},
    )
    decided = drive_to_regional_review(
        engine,
        candidacy(territory_name="Attente", perimeter={"members": ["200023299"]})
        | {"perimeter": {"members": ["200023299", "200011773"]}},
    )
    give_all_opinions(engine, decided)


def test_the_committee_reads_the_national_figures(console: Console) -> None:
    """FAQ 1.2 (window, line 72 for phase 1) and 1.3 (regional opinions, then selection)."""
    engine = console.engine
    campaign_of(engine)
    with console.client("committee") as client:
        got = client.get("/pilotage")
    assert got.status_code == 200, got.text
    body = got.text
    regions = {row[0]: row[1:] for row in table(body, "tableau-regions")[1:]}
    header = table(body, "tableau-regions")[0]
    col = {name: i - 1 for i, name in enumerate(header)}
    ara = regions["Auvergne-Rhône-Alpes"]
    # Four cases in 84 (the interregional one counts in both regions), one in 27.
    assert ara[col["Total"]] == "4"
    assert ara[col["Brouillon"]] == "1" and ara[col["Déposée"]] == "1"
    assert ara[col["Avis d'opportunité régional"]] == "1"
    assert ara[col["Sélection nationale"]] == "1"
    assert regions["Bourgogne-Franche-Comté"][col["Total"]] == "1"
    campaigns = table(body, "tableau-campagnes")
    assert campaigns[1][0] == "Territoires d'industrie 2023-2027" and campaigns[1][-1] == "4"
    days = dict(table(body, "tableau-depots")[1:])
    assert days == {"3 juillet 2023": "1", "4 juillet 2023": "2"}
    missing = table(body, "tableau-avis")[1:]
    assert [m[:3] for m in missing] == [
        ["Auvergne-Rhône-Alpes", "Services de l'État en région (SGAR)", "1"],
        ["Bourgogne-Franche-Comté", "Conseil régional", "1"],
        ["Bourgogne-Franche-Comté", "Services de l'État en région (SGAR)", "1"],
    ]
    assert all(m[3] for m in missing) and "non fixée" not in missing[0][3]
    pending = table(body, "tableau-decisions")[1:]
    assert len(pending) == 1 and pending[0][1] == "Attente" and pending[0][3] == "2 sur 2"
    plain = text(body)
    # Vallée de l'Arve and Haut-Jura (2019-2022) filed again (cases 2 and 3 share members
    # with the first, case 3 with the second); the other 147 did not. The draft (case 1)
    # was never filed: it does not count.
    assert "2 des 149 territoires de la phase 1 ont déposé" in plain
    phase1 = dict(table(body, "tableau-phase-1")[1:])
    assert phase1["Vallée de l'Arve"] == "n° 2 , n° 3" and phase1["Haut-Jura"] == "n° 3"
    assert len(phase1) == 149 and list(phase1.values()).count("non") == 147
    assert "Clôture" in body and 'role="img"' in body and "<title" in body
    assert "Aucune échéance en retard" in plain


def test_a_region_sees_its_own_and_a_candidate_nothing(console: Console) -> None:
    engine = console.engine
    campaign_of(engine)
    with console.client("council_27") as client:
        body = client.get("/pilotage").text
    regions = table(body, "tableau-regions")
    assert [r[0] for r in regions[1:]] == ["Bourgogne-Franche-Comté"]
    assert regions[1][-1] == "1"
    assert dict(table(body, "tableau-depots")[1:]) == {"4 juillet 2023": "1"}
    assert [m[:3] for m in table(body, "tableau-avis")[1:]] == [
        ["Bourgogne-Franche-Comté", "Conseil régional", "1"],
        ["Bourgogne-Franche-Comté", "Services de l'État en région (SGAR)", "1"],
    ]
    assert "Aucune décision en attente" in text(body)
    # The figures follow the next event (the dashboard reuses them only while no case in
    # scope changed): the SGAR of 27 gives its opinion, its row goes.
    engine.fire(
        3,
        "give_opinion",
        Actor("state_services", region="27"),
        {"opinion": "favourable", "reasons": "vu"},
    )
    with console.client("council_27") as client:
        again = client.get("/pilotage").text
    assert [m[:3] for m in table(again, "tableau-avis")[1:]] == [
        ["Bourgogne-Franche-Comté", "Conseil régional", "1"]
    ]
    phase1 = dict(table(body, "tableau-phase-1")[1:])
    assert phase1["Haut-Jura"] == "n° 3" and "Vallée de l'Arve" not in phase1
    assert f"1 des {len(phase1)} territoires de la phase 1 de la région" in text(body)
    with console.client() as anonymous:
        assert anonymous.get("/pilotage").status_code == 303
    console.users["candidate"] = accounts.add_user(
        engine.db, "candidate", "candidate", engine.clock.now(), None, "ti@arve.example.org"
    )
    with console.client("candidate") as client:
        assert client.get("/pilotage").status_code == 404
        assert client.get("/carte").status_code == 404


def test_late_timers_and_escalations_are_listed(console: Console) -> None:
    """FAQ 1.3: the regional review deadline and the announcement; a timer past due that no
    scheduler ran shows as late; the general assembly invitation run late escalates."""
    engine = console.engine
    labelled = drive_to_regional_review(engine)
    give_all_opinions(engine, labelled)
    engine.fire(labelled, "label", COMMITTEE)
    clock = engine.clock
    assert isinstance(clock, SimulatedClock)
    sweep(engine)  # 3 July 2023: the campaign's timers created, the opening one run
    clock.set(paris("2024-01-20T09:00:00"))  # no scheduler ran since July
    with console.client("committee") as client:
        late = table(client.get("/pilotage").text, "tableau-retards")[1:]
        names = {r[0]: r for r in late}
        assert "Échéance des avis régionaux" in names
        assert "Clôture du dépôt des candidatures" in names
        assert names["Échéance des avis régionaux"][1] == "toute la campagne"
        assert {r[3] for r in late} == {"En retard"}
        sweep(engine)  # the scheduler catches up: what was late runs or escalates
        after = table(client.get("/pilotage").text, "tableau-retards")[1:]
    assert [(r[0], r[3]) for r in after] == [
        ("Invitation à l'assemblée générale (J+1)", "Signalé au comité national")
    ]


def test_the_map_draws_known_outlines_and_lists_the_others(console: Console) -> None:
    engine = console.engine
    import_shipped(engine)
    case_id = file_amendment(
        engine, amendment(ARDECHE, add=[TARENTAISE], effective_on="2024-06-01")
    )
    assert all_favourable(engine, case_id) == "national_review"
    engine.fire(case_id, "approve", COMMITTEE)  # FAQ 2.3: then the Délégation decides
    with console.client("state_84") as client:
        before = client.get("/carte/territoires.json?date=2024-05-31").json()
        after = client.get("/carte/territoires.json?date=2024-06-01").json()
        bad = client.get("/carte/territoires.json?date=31/05/2024")
        page = client.get("/carte?date=2024-06-01")
        outlines = client.get("/carte/contours.json")
        territory = client.get(f"/territoires/{ARDECHE}?date=2024-06-01")
        unknown = client.get("/territoires/ti-9999")
    assert len(before["territories"]["features"]) == 183 and before["undrawn"] == []
    drawn = {f["properties"]["id"] for f in after["territories"]["features"]}
    assert len(drawn) == 182 and ARDECHE not in drawn
    assert [u["id"] for u in after["undrawn"]] == [ARDECHE]
    assert "périmètre modifié" in after["undrawn"][0]["why"]
    assert bad.status_code == 422 and "AAAA-MM-JJ" in bad.json()["erreur"]
    assert "Ardèche" in text(page.text.split('id="liste-non-dessines"')[1].split("</ul>")[0])
    assert "183 territoires labellisés au 1er juin 2024 ; 182 dessinés" in text(page.text)
    # The national map: its page, the outlines and the territories, under 1 MB in all.
    sizes = len(outlines.content) + len(page.content) + len(json.dumps(after).encode())
    assert sizes < 1_000_000, sizes
    assert len(outlines.json()["regions"]["features"]) == 18
    assert len(outlines.json()["departements"]["features"]) == 101
    body = text(territory.text)
    assert "Ce territoire n'est pas dessiné" in body
    assert "Cœur de Tarentaise" in body or "Coeur de Tarentaise" in body or TARENTAISE in body
    # FAQ 2.3: the added member holds from the effective date, through the amendment case.
    added = [r for r in table(territory.text, "historique")[1:] if TARENTAISE in r[0]]
    assert added == [[added[0][0], "1er juin 2024", "en vigueur", f"n° {case_id}"]]
    assert unknown.status_code == 404


def test_the_figures_on_both_databases(make_engine: Any, db_url: str) -> None:
    """The storage reads behind the dashboard (JSON paths, grouped counts, the events
    index) on SQLite and PostgreSQL alike. FAQ 1.3: both bodies of each region."""
    engine = make_engine(db_url)
    case_id = drive_to_regional_review(engine)
    engine.fire(
        case_id,
        "give_opinion",
        Actor("regional_council", region="84"),
        {"opinion": "favourable", "reasons": "vu"},
    )
    got = numbers(engine, COMMITTEE)
    assert [(r["name"], r["total"]) for r in got["region_rows"]] == [("Auvergne-Rhône-Alpes", 1)]
    assert [(m["body"], m["count"], m["cases"]) for m in got["missing"]] == [
        ("Services de l'État en région (SGAR)", 1, [case_id])
    ]
    assert got["phase1_refiled"] == 1 and got["filed_in_window"] == 1
    assert [p.territory.name for p in got["phase1"] if p.cases] == ["Vallée de l'Arve"]
