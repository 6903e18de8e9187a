"""A case's file as a PDF over real HTTP: the text is extracted with pypdf and checked
(form, opinions, decision, timeline with hashes), with the scope of each role."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from conftest import (
    AUDITOR,
    CANDIDATE,
    COMMITTEE,
    candidacy,
    drive_to_regional_review,
    give_all_opinions,
)
from console_support import Console, serve_console
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.http import accounts


@pytest.fixture
def console(engine: Engine) -> Iterator[Console]:
    with serve_console(engine) as served:
        yield served


def pdf_text(console: Console, who: str, case_id: int) -> str:
    with console.client(who) as client:
        answer = client.get(f"/candidatures/{case_id}/dossier.pdf")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(answer.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return " ".join(text.replace("\u00a0", " ").split())


def test_the_committee_gets_the_full_file_with_opinions_decision_and_hashes(
    console: Console,
) -> None:
    engine = console.engine
    case_id = drive_to_regional_review(engine, candidacy(territory_name="Vallée de l'Arve"))
    engine.fire(
        case_id,
        "give_opinion",
        Actor("regional_council", region="84"),
        {"opinion": "favourable", "reasons": "Écosystème de décolletage solide"},
    )
    engine.fire(
        case_id,
        "give_opinion",
        Actor("state_services", region="84"),
        {"opinion": "unfavourable", "reasons": "Gouvernance à préciser"},
    )
    text = pdf_text(console, "committee", case_id)
    assert f"Candidature n° {case_id} : Vallée de l'Arve" in text
    assert "Auvergne-Rhône-Alpes" in text
    assert "Mme Élue — Élu, CC Faucigny-Glières" in text
    assert "Campus — Recrutement et compétences" in text
    assert "Favorable" in text and "Écosystème de décolletage solide" in text
    assert "Défavorable" in text and "Gouvernance à préciser" in text
    assert "Pas encore de décision." in text
    assert "La chaîne d'empreintes de ce dossier est vérifiée." in text
    compact = text.replace(" ", "")
    for event in engine.history(case_id, AUDITOR):
        assert event.hash in compact  # every event's hash, whole
    assert "regional_council" not in text and "favourable" not in text.replace("Défavorable", "")


def test_the_candidate_gets_its_file_without_the_opinions_content(console: Console) -> None:
    engine = console.engine
    case_id = drive_to_regional_review(engine)
    give_all_opinions(engine, case_id, "unfavourable")
    console.users["candidate"] = accounts.add_user(
        engine.db, "candidat-arve", "candidate", datetime.now(UTC), None, CANDIDATE.email
    )
    text = pdf_text(console, "candidate", case_id)
    assert "Vallée de l'Arve" in text and "Rendu" in text
    assert "Défavorable" not in text and "motivé" not in text
    assert "Historique" not in text and not re.search(r"[0-9a-f]{64}", text.replace(" ", ""))
    assert "Décision nationale" not in text


def test_a_case_outside_ones_region_is_a_404(console: Console) -> None:
    case_id = drive_to_regional_review(console.engine)
    with console.client("council_11") as client:
        assert client.get(f"/candidatures/{case_id}/dossier.pdf").status_code == 404
    with console.client("committee") as client:
        assert client.get("/candidatures/999999/dossier.pdf").status_code == 404


def test_a_decided_case_shows_the_decision(console: Console) -> None:
    engine = console.engine
    case_id = drive_to_regional_review(engine)
    give_all_opinions(engine, case_id)
    engine.fire(case_id, "label", COMMITTEE)
    text = pdf_text(console, "auditor", case_id)
    assert "Décision nationale Labellisé le" in text
