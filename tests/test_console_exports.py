"""Exports of the console's lists over real HTTP: the downloads are parsed (csv module,
openpyxl) and checked for headers, French labels, Paris time, filters and scope."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook

from conftest import AUDITOR, CANDIDATE, candidacy, drive_to_regional_review, give_all_opinions
from console_support import EPCI_27, EPCI_84, Console, serve_console
from ti_workflow.clock import PARIS
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.http import accounts


@pytest.fixture
def console(engine: Engine) -> Iterator[Console]:
    with serve_console(engine) as served:
        yield served


@pytest.fixture
def cases(console: Console) -> dict[str, int]:
    """Arve (84 only, regional review), Jura (84 and 27, regional review), a draft (84)."""
    engine = console.engine
    arve = drive_to_regional_review(engine, candidacy(territory_name="Vallée de l'Arve"))
    jura = drive_to_regional_review(
        engine,
        candidacy(
            territory_name="Arve et Haut-Jura",
            perimeter={
                "members": [EPCI_84, EPCI_27],
                "single_member_justification": None,
                "metropole_justification": None,
            },
        ),
    )
    draft = engine.create_case(
        "candidacy", "ti-2023-2027", candidacy(territory_name="Brouillon du Chablais"), CANDIDATE
    )
    return {"arve": arve, "jura": jura, "draft": draft.id}


def get_csv(console: Console, who: str, path: str) -> tuple[list[str], list[dict[str, str]]]:
    with console.client(who) as client:
        answer = client.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith(b"\xef\xbb\xbf")  # UTF-8 byte order mark
    text = answer.content.decode("utf-8-sig")
    separator = ";" if "separateur=point-virgule" in path else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=separator)
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def get_xlsx(console: Console, who: str, path: str) -> list[tuple[object, ...]]:
    with console.client(who) as client:
        answer = client.get(path)
    assert answer.status_code == 200, answer.text
    book = load_workbook(io.BytesIO(answer.content))
    return [tuple(r) for r in book.active.iter_rows(values_only=True)]  # type: ignore[union-attr]


def test_the_committee_exports_every_case_with_french_headers_and_paris_time(
    console: Console, cases: dict[str, int]
) -> None:
    headers, rows = get_csv(console, "committee", "/exports/dossiers.csv")
    assert headers == [
        "N°",
        "Territoire",
        "État",
        "Campagne",
        "Régions concernées",
        "Avis régionaux",
        "Échéance des avis",
        "Créé le",
        "Modifié le",
    ]
    by_id = {int(r["N°"]): r for r in rows}
    assert set(by_id) == set(cases.values())
    jura = by_id[cases["jura"]]
    assert jura["État"] == "Avis d'opportunité régional"
    assert set(jura["Régions concernées"].split(", ")) == {
        "Auvergne-Rhône-Alpes",
        "Bourgogne-Franche-Comté",
    }
    assert "Bourgogne-Franche-Comté, Services de l'État en région (SGAR)" in jura["Avis régionaux"]
    assert "en attente" in jura["Avis régionaux"]
    assert by_id[cases["draft"]]["État"] == "Brouillon"
    updated = console.engine.get(cases["jura"], AUDITOR).updated_at
    assert jura["Modifié le"] == updated.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
    assert "regional_review" not in str(rows) and "84" not in jura["Régions concernées"]


def test_the_filters_of_the_list_apply_and_the_semicolon_option(
    console: Console, cases: dict[str, int]
) -> None:
    _, review = get_csv(console, "committee", "/exports/dossiers.csv?etat=regional_review&tri=-id")
    assert [int(r["N°"]) for r in review] == sorted([cases["arve"], cases["jura"]], reverse=True)
    _, named = get_csv(
        console, "committee", "/exports/dossiers.csv?q=Haut-Jura&separateur=point-virgule"
    )
    assert [r["Territoire"] for r in named] == ["Arve et Haut-Jura"]
    _, in_27 = get_csv(console, "committee", "/exports/dossiers.csv?region=27")
    assert [int(r["N°"]) for r in in_27] == [cases["jura"]]


def test_a_region_exports_only_what_it_sees(console: Console, cases: dict[str, int]) -> None:
    rows = get_xlsx(console, "council_27", "/exports/dossiers.xlsx")
    assert rows[0][:3] == ("N°", "Territoire", "État")
    assert [r[0] for r in rows[1:]] == [cases["jura"]]
    assert "Auvergne-Rhône-Alpes, Conseil régional" not in str(rows[1])  # not its region
    assert get_xlsx(console, "council_11", "/exports/dossiers.xlsx")[1:] == []
    # A filter cannot widen the scope.
    assert [r[0] for r in get_xlsx(console, "council_27", "/exports/dossiers.xlsx?region=84")][
        1:
    ] == [cases["jura"]]


def test_the_opinions_export_shows_contents_by_scope(
    console: Console, cases: dict[str, int]
) -> None:
    engine = console.engine
    give_all_opinions(engine, cases["jura"], "unfavourable")
    engine.fire(
        cases["arve"],
        "give_opinion",
        Actor("regional_council", region="84"),
        {"opinion": "favourable", "reasons": "Projet industriel solide"},
    )
    rows = get_xlsx(console, "committee", "/exports/avis.xlsx")
    assert rows[0] == (
        "N° du dossier",
        "Territoire",
        "État du dossier",
        "Région",
        "Instance",
        "Avis",
        "Motifs",
        "Rendu le",
        "Échéance des avis",
    )
    jura = [r for r in rows[1:] if r[0] == cases["jura"]]
    assert len(jura) == 4 and {r[5] for r in jura} == {"Défavorable"}
    assert all(isinstance(r[7], datetime) for r in jura)
    arve = {r[4]: r for r in rows[1:] if r[0] == cases["arve"]}
    assert arve["Conseil régional"][5:7] == ("Favorable", "Projet industriel solide")
    assert arve["Services de l'État en région (SGAR)"][5] == "En attente"
    # The other body of region 84 learns that the council answered, not what.
    _, seen = get_csv(console, "state_84", "/exports/avis.csv?separateur=point-virgule")
    council = next(
        r
        for r in seen
        if r["N° du dossier"] == str(cases["arve"]) and r["Instance"] == "Conseil régional"
    )
    assert council["Avis"] == "Rendu" and council["Motifs"] == ""
    assert {r["Région"] for r in seen} == {"Auvergne-Rhône-Alpes"}
    # Region 27 exports only its own two rows.
    _, in_27 = get_csv(console, "council_27", "/exports/avis.csv")
    assert [(r["Région"], r["Instance"]) for r in in_27] == [
        ("Bourgogne-Franche-Comté", "Conseil régional"),
        ("Bourgogne-Franche-Comté", "Services de l'État en région (SGAR)"),
    ]


def test_a_candidate_exports_its_own_cases_and_no_opinions(
    console: Console, cases: dict[str, int]
) -> None:
    with console.client() as client:
        anonymous = client.get("/exports/dossiers.csv")
    assert anonymous.status_code == 303  # to the sign-in page
    console.users["candidate"] = _candidate(console)
    headers, rows = get_csv(console, "candidate", "/exports/dossiers.csv")
    assert "Avis régionaux" not in headers
    assert {int(r["N°"]) for r in rows} == set(cases.values())  # all three are its own
    with console.client("candidate") as client:
        assert client.get("/exports/avis.csv").status_code == 404
        assert client.get("/exports/dossiers.pdf").status_code == 404


def _candidate(console: Console) -> accounts.User:
    return accounts.add_user(
        console.engine.db, "candidat-arve", "candidate", datetime.now(UTC), None, CANDIDATE.email
    )


def test_a_name_that_looks_like_a_formula_stays_text(console: Console) -> None:
    drive_to_regional_review(console.engine, candidacy(territory_name='=HYPERLINK("x";"y")'))
    _, rows = get_csv(console, "committee", "/exports/dossiers.csv")
    assert rows[0]["Territoire"] == "'" + '=HYPERLINK("x";"y")'
    with console.client("committee") as client:
        answer = client.get("/exports/dossiers.xlsx")
    cell = load_workbook(io.BytesIO(answer.content)).active["B2"]  # type: ignore[index]
    assert cell.value == '=HYPERLINK("x";"y")' and cell.data_type == "s"
