"""Console pages over real HTTP (no browser): lists and filters, decisions that need a
reason, a return for completion answered, the reference search, the case at a date."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest

from conftest import (
    CANDIDATE,
    COMMITTEE,
    candidacy,
    drive_to_regional_review,
    give_all_opinions,
    paris,
)
from console_support import CANDIDATE_EMAIL, Console, csrf_of, serve_console
from ti_workflow.clock import SimulatedClock
from ti_workflow.console import auth
from ti_workflow.engine import Engine


@pytest.fixture
def console(engine: Engine) -> Iterator[Console]:
    with serve_console(engine) as served:
        yield served


def text(body: str) -> str:
    """What a reader sees: no tags, entities decoded, one kind of space."""
    plain = html.unescape(re.sub(r"<[^>]+>", "", body))
    return " ".join(plain.replace("\u00a0", " ").replace("\u202f", " ").split())


def test_the_committee_lists_filters_sorts_and_pages(console: Console) -> None:
    engine = console.engine
    for i in range(55):
        engine.create_case(
            "candidacy", "ti-2023-2027", candidacy(territory_name=f"Territoire {i:02d}"), CANDIDATE
        )
    drive_to_regional_review(engine, candidacy(territory_name="Zénith industriel"))
    with console.client("committee") as client:
        first = text(client.get("/candidatures").text)
        second = text(client.get("/candidatures?page=2").text)
        review = text(client.get("/candidatures?etat=regional_review").text)
        named = text(client.get("/candidatures?q=territoire 1").text)
        by_name = text(client.get("/candidatures?tri=-title").text)
    assert "56 dossiers — page 1 sur 2" in first and "Territoire 00" in first
    assert "Territoire 54" not in first and "Territoire 54" in second
    assert "1 dossier" in review and "Zénith industriel" in review
    assert "Territoire 10" in named and "Territoire 19" in named and "Territoire 20" not in named
    assert by_name.index("Zénith industriel") < by_name.index("Territoire 54")


def test_a_regional_queue_holds_only_its_regions_cases(console: Console) -> None:
    engine = console.engine
    drive_to_regional_review(engine, candidacy(territory_name="Vallée de l'Arve"))
    with console.client("council_84") as client:
        mine = text(client.get("/candidatures").text)
    with console.client("council_11") as client:
        other = text(client.get("/candidatures").text)
    assert "Dossiers de la région Auvergne-Rhône-Alpes" in mine and "Vallée de l'Arve" in mine
    assert "en attente" in mine
    assert "0 dossier" in other and "Vallée de l'Arve" not in other


def test_a_rejection_needs_a_reason_and_stores_nothing_without_it(console: Console) -> None:
    engine = console.engine
    case_id = drive_to_regional_review(engine)
    give_all_opinions(engine, case_id, "unfavourable")
    before = engine.get(case_id, COMMITTEE)
    with console.client("committee") as client:
        form = client.get(f"/candidatures/{case_id}/actions/reject")
        assert "Défavorable" in text(form.text)  # every region's two opinions, before the click
        refused = client.post(
            f"/candidatures/{case_id}/actions/reject",
            data={"csrf": csrf_of(form.text), "reason": " "},
        )
        assert refused.status_code == 422
        assert "Indiquez le motif : il est obligatoire" in text(refused.text)
        assert engine.get(case_id, COMMITTEE).version == before.version
        done = client.post(
            f"/candidatures/{case_id}/actions/reject",
            data={"csrf": csrf_of(form.text), "reason": "Périmètre sans cohérence industrielle"},
        )
    assert done.status_code == 303
    assert engine.get(case_id, COMMITTEE).state == "not_selected"


def test_a_return_for_completion_is_answered_by_the_candidate(console: Console) -> None:
    engine = console.engine
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    engine.fire(case.id, "submit", CANDIDATE)
    with console.client("committee") as client:
        form = client.get(f"/candidatures/{case.id}/actions/return_for_completion")
        client.post(
            f"/candidatures/{case.id}/actions/return_for_completion",
            data={"csrf": csrf_of(form.text), "reason": "Joindre la lettre de la CC"},
        )
    assert engine.get(case.id, CANDIDATE).state == "draft"
    candidate = console.users.get("candidate")
    assert candidate is None  # the candidate registers, as a territory would
    with console.client() as client:
        page = client.get("/inscription")
        client.post("/inscription", data={"csrf": csrf_of(page.text), "email": CANDIDATE_EMAIL})
    with console.client() as client:
        link = console.link_for(CANDIDATE_EMAIL).rsplit("jeton=", 1)[1]
        page = client.get(f"/connexion/lien?jeton={link}")
        opened = client.post("/connexion/lien", data={"csrf": csrf_of(page.text), "jeton": link})
        client.cookies.set(auth.COOKIE, opened.cookies[auth.COOKIE])
        edit = text(client.get(f"/candidatures/{case.id}/modifier").text)
        assert "Dossier renvoyé pour complément" in edit
        assert "Joindre la lettre de la CC" in edit
        assert "Le dossier respecte toutes les règles du dépôt" in edit
        form = client.get(f"/candidatures/{case.id}/actions/submit")
        again = client.post(
            f"/candidatures/{case.id}/actions/submit", data={"csrf": csrf_of(form.text)}
        )
    assert again.status_code == 303
    assert engine.get(case.id, CANDIDATE).state == "submitted"


def test_the_reference_search_shows_nature_departement_and_region(console: Console) -> None:
    with console.client("committee") as client:
        by_name = text(client.get("/referentiel/groupements?recherche=faucigny glieres").text)
        by_siren = text(client.get("/referentiel/groupements?recherche=20002657").text)
        nothing = text(client.get("/referentiel/groupements?recherche=zzzz").text)
    assert "CC Faucigny-Glières" in by_name and "SIREN 200000172" in by_name
    assert "Communauté de communes" in by_name and "département 74" in by_name
    assert "Auvergne-Rhône-Alpes" in by_name
    assert "CC Haut-Jura Saint-Claude" in by_siren and "Bourgogne-Franche-Comté" in by_siren
    assert "Aucune intercommunalité ne correspond" in nothing


def test_the_case_at_a_date_and_a_wrong_date(console: Console) -> None:
    engine = console.engine
    case_id = drive_to_regional_review(engine)
    with console.client("auditor") as client:
        before = text(client.get(f"/candidatures/{case_id}/etat?instant=2023-07-01T10:00").text)
        now = text(client.get(f"/candidatures/{case_id}/etat?instant=2023-07-03T11:00").text)
        wrong = client.get(f"/candidatures/{case_id}/etat?instant=hier")
    assert "n'existait pas encore le 1er juillet 2023 à 10 h 00" in before
    assert "Avis d'opportunité régional" in now and "3 juillet 2023 à 11 h 00" in now
    assert wrong.status_code == 422 and "Indiquez une date et une heure valides" in text(wrong.text)


def test_the_new_candidacy_page_counts_down_to_the_closing_instant(console: Console) -> None:
    with console.client() as client:
        page = client.get("/inscription")
        client.post("/inscription", data={"csrf": csrf_of(page.text), "email": CANDIDATE_EMAIL})
        link = console.link_for(CANDIDATE_EMAIL).rsplit("jeton=", 1)[1]
        page = client.get(f"/connexion/lien?jeton={link}")
        opened = client.post("/connexion/lien", data={"csrf": csrf_of(page.text), "jeton": link})
        client.cookies.set(auth.COOKIE, opened.cookies[auth.COOKIE])
        new = text(client.get("/candidatures/nouvelle").text)
    # 3 July 2023 10:00 -> 22 September 2023 23:59:59 Paris (FAQ 1.2)
    assert "ouvert jusqu'au 22 septembre 2023 à 23 h 59" in new
    assert "il reste 81 jours et 13 heures" in new


def candidate_client(console: Console) -> httpx.Client:
    """The candidate of ``conftest.CANDIDATE`` signed in through the e-mailed link."""
    client = console.client()
    page = client.get("/inscription")
    client.post("/inscription", data={"csrf": csrf_of(page.text), "email": CANDIDATE_EMAIL})
    link = console.link_for(CANDIDATE_EMAIL).rsplit("jeton=", 1)[1]
    page = client.get(f"/connexion/lien?jeton={link}")
    opened = client.post("/connexion/lien", data={"csrf": csrf_of(page.text), "jeton": link})
    client.cookies.set(auth.COOKIE, opened.cookies[auth.COOKIE])
    return client


def test_the_candidate_learns_the_decision_when_it_is_announced(
    console: Console, clock: SimulatedClock
) -> None:
    """FAQ 1.3 (line 93): "La nouvelle carte ... sera annoncée en novembre 2023"; the
    campaign announces on 14/11/2023. Before that the candidate sees national selection."""
    engine = console.engine
    case_id = drive_to_regional_review(engine)
    give_all_opinions(engine, case_id)
    clock.set(paris("2023-10-31T15:00:00"))
    engine.fire(case_id, "label", COMMITTEE)
    client = candidate_client(console)
    try:
        before = text(client.get(f"/candidatures/{case_id}").text)
        listed = text(client.get("/candidatures").text)
        path = text(client.get(f"/candidatures/{case_id}/parcours").text)
        clock.set(paris("2023-11-14T12:00:00"))  # announced that day (campaign file)
        after = text(client.get(f"/candidatures/{case_id}").text)
    finally:
        client.close()
    with console.client("committee") as client:
        committee = text(client.get(f"/candidatures/{case_id}").text)
    assert "État : Sélection nationale" in before and "Labellisé" not in before
    assert "Labellisé" not in listed and "Labellisé (empruntée)" not in path
    assert "État : Labellisé" in after
    assert "État : Labellisé" in committee
