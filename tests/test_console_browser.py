"""The console in a real browser (the Debian chromium driven by Playwright): the whole
journey of an interregional candidacy, with axe-core on every page and screenshots.

One browser for the run (this module holds every browser test); a new context (cookies,
storage) per person. The engine has
the simulated clock of the tests (3 July 2023: the filing window is open, FAQ 1.2).
Screenshots go to ``test-screenshots/`` (git-ignored), at 1280 and 320 pixels wide.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import axe_playwright_python
import pytest

from conftest import drive_to_regional_review, paris
from console_support import CANDIDATE_EMAIL, EPCI_27, EPCI_84, Console, serve_console
from files_support import minimal_pdf
from ti_workflow.clock import SimulatedClock
from ti_workflow.console import auth
from ti_workflow.engine import Engine

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("TI_WORKFLOW_CHROMIUM", "/usr/bin/chromium")
TIMES = {"axe": 0.0, "shots": 0.0, "tab": 0.0}
AXE_SCRIPT = str(Path(axe_playwright_python.__file__).with_name("axe.min.js"))
SHOTS = Path(__file__).resolve().parents[1] / "test-screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """The one browser of the run: every browser test is in this module. Module scope, not
    session: Playwright's sync API keeps an event loop running in the main thread while it is
    open, and later tests that call ``asyncio.run`` (the SMTP dispatcher) would fail."""
    if not shutil.which(CHROMIUM):
        reason = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--lang=fr-FR"]
        )
        yield launched
        launched.close()


@pytest.fixture
def console(engine: Engine) -> Iterator[Console]:
    with serve_console(engine) as served:
        yield served


class Person:
    """One browser context: a signed-in person (or not yet)."""

    def __init__(self, browser: Any, console: Console, name: str | None = None) -> None:
        self.context = browser.new_context(
            base_url=console.url, locale="fr-FR", viewport={"width": 1280, "height": 900}
        )
        self.context.set_default_timeout(10_000)
        self.context.add_init_script(path=AXE_SCRIPT)  # once per context, not per check
        if name:
            host = console.url.split("//", 1)[1].split(":", 1)[0]
            cookie = console.session_cookie(name)
            self.context.add_cookies(
                [{"name": auth.COOKIE, "value": cookie, "domain": host, "path": "/"}]
            )
        self.page = self.context.new_page()

    def close(self) -> None:
        self.context.close()


def check(page: Any, name: str) -> None:
    """axe-core: no serious or critical violation; screenshots at 1280 and 320 px."""
    started = time.monotonic()
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    TIMES["axe"] += time.monotonic() - started
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: {bad}"
    started = time.monotonic()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-1280.png"), full_page=True)
    page.set_viewport_size({"width": 320, "height": 800})
    overflow = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=str(SHOTS / f"{name}-320.png"))  # the first screen
    page.set_viewport_size({"width": 1280, "height": 900})
    TIMES["shots"] += time.monotonic() - started
    assert overflow <= 330, f"{name}: {overflow} px wide at 320 px"


def tab_to(page: Any, selector: str, limit: int = 250) -> None:
    """Press Tab until the element has the focus: it is reachable with the keyboard."""
    started = time.monotonic()
    target = page.locator(selector).first
    target.wait_for()
    for _ in range(limit):
        if target.evaluate("el => el === document.activeElement"):
            TIMES["tab"] += time.monotonic() - started
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} is not reachable with Tab")


def key_in(page: Any, selector: str, text: str) -> None:
    tab_to(page, selector)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def press(page: Any, selector: str, key: str = "Enter") -> None:
    tab_to(page, selector)
    with page.expect_navigation():
        page.keyboard.press(key)


def choose(page: Any, selector: str, downs: int) -> None:
    """Pick an option of a closed <select> with the arrow keys."""
    tab_to(page, selector)
    for _ in range(downs):
        page.keyboard.press("ArrowDown")


def rules_text(page: Any) -> str:
    return str(page.locator("#regles").inner_text())


def test_an_interregional_candidacy_from_filing_to_label(
    browser: Any, console: Console, clock: SimulatedClock
) -> None:
    # --- the candidate, keyboard only: registers, opens the e-mailed link ---------------
    candidate = Person(browser, console)
    page = candidate.page
    page.goto("/inscription")
    check(page, "inscription")
    key_in(page, "#email", CANDIDATE_EMAIL)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Vérifiez votre messagerie" in page.content()
    check(page, "lien-envoye")
    page.goto(console.link_for(CANDIDATE_EMAIL))
    check(page, "lien-connexion")
    press(page, "#se-connecter")
    assert page.url.endswith("/candidatures")
    check(page, "mes-candidatures")

    press(page, "a[href='/candidatures/nouvelle']")
    check(page, "nouvelle-candidature")
    key_in(page, "#territory_name", "Jura-Arve industriel")
    press(page, "button[type=submit]:has-text('Créer le brouillon')")
    assert re.search(r"/candidatures/\d+/modifier$", page.url)
    case_id = int(page.url.rsplit("/", 2)[1])

    # the perimeter: search by name (htmx autocomplete), add with the keyboard
    key_in(page, "#recherche", "Faucigny")
    page.locator(f"button.tiw-result[value='{EPCI_84}']").wait_for()
    assert "Communauté de communes" in page.locator("#resultats").inner_text()
    press(page, f"button.tiw-result[value='{EPCI_84}']")
    assert "CC Faucigny-Glières" in page.locator("#membres").inner_text()
    # FAQ 2.2 and 4.5: one EPCI needs a justification, the letters of intent are missing
    rules = rules_text(page)
    assert "une seule intercommunalité" in rules and "lettres d'intention" in rules
    assert page.locator("#single_member_justification").count() == 1  # shown: needed now
    check(page, "formulaire-candidature")

    # a second EPCI, in another region, by its SIREN: the regions follow (FAQ 2.5)
    key_in(page, "#siren_saisi", EPCI_27)
    press(page, "button[value='ajouter_siren']")
    assert "Bourgogne-Franche-Comté" in page.locator("#regions-concernees").inner_text()
    assert "Auvergne-Rhône-Alpes" in page.locator("#regions-concernees").inner_text()
    assert "une seule intercommunalité" not in rules_text(page)
    assert page.locator("#single_member_justification").count() == 0

    # governance: an elected official and an industrialist (FAQ 4.1)
    key_in(page, "#gov-0-name", "Mme Martin")
    choose(page, "#gov-0-role", 1)
    key_in(page, "#gov-0-organisation", "CC Faucigny-Glières")
    press(page, "#enregistrer")
    key_in(page, "#gov-1-name", "M. Durand")
    choose(page, "#gov-1-role", 2)
    key_in(page, "#gov-1-organisation", "Décolletage du Jura")
    # the action plan: several actions, each described, under the four priorities (1.5, 3.1)
    key_in(page, "#act-0-title", "Campus des métiers de la mécanique")
    choose(page, "#act-0-priority", 3)
    key_in(page, "#act-0-summary", "Former aux métiers du décolletage.")
    press(page, "#enregistrer")
    assert "au moins deux" in rules_text(page)  # FAQ 3.1: "plusieurs actions"
    key_in(page, "#act-1-title", "Requalification de la zone des Bouchoux")
    choose(page, "#act-1-priority", 4)
    key_in(page, "#act-1-summary", "Remettre en service des friches industrielles.")
    press(page, "#enregistrer")
    rules = rules_text(page)
    assert "lettres d'intention" in rules and "au moins deux" not in rules

    # the letter of intent, signed, as a PDF (the file chooser is the only pointer use)
    letter = Path(console.engine.files.root).parent / "lettre.pdf"
    letter.write_bytes(minimal_pdf())
    key_in(page, "#loi-0-signatory", "Mme Martin")
    key_in(page, "#loi-0-organisation", "CC Faucigny-Glières")
    page.set_input_files("#loi-0-fichier", str(letter))
    press(page, "#enregistrer")
    # FAQ 4.5: the elected member's letter is in; the industrialist's is still missing
    assert "industriel" in rules_text(page)
    key_in(page, "#loi-1-signatory", "M. Durand")
    key_in(page, "#loi-1-organisation", "Décolletage du Jura")
    page.set_input_files("#loi-1-fichier", str(letter))
    press(page, "#enregistrer")
    assert "Le dossier respecte toutes les règles du dépôt" in rules_text(page)
    assert "lettre.pdf" in page.content()

    press(page, "#regles a")
    check(page, "confirmer-depot")
    press(page, "#confirmer")
    assert "Action effectuée" in page.content()
    assert "Déposée" in page.content()
    check(page, "dossier-candidat")
    candidate.close()

    # --- the committee opens the regional review ---------------------------------------
    clock.set(paris("2023-09-25T09:30:00"))  # after the window (FAQ 1.2)
    committee = Person(browser, console, "committee")
    page = committee.page
    page.goto("/candidatures")
    check(page, "comite-liste")
    page.click(f"a[href='/candidatures/{case_id}']")
    page.click(f"a[href='/candidatures/{case_id}/actions/start_regional_review']")
    page.click("#confirmer")
    assert "Avis d'opportunité régional" in page.content()

    # --- the four regional bodies give their opinions (FAQ 1.3) -----------------------
    for name in ("council_84", "state_84", "council_27", "state_27"):
        clock.advance(timedelta(days=2, hours=3))
        body = Person(browser, console, name)
        page = body.page
        page.goto("/candidatures")
        if name == "council_84":
            check(page, "file-regionale")
        page.click(f"a[href='/candidatures/{case_id}']")
        page.click(f"a[href='/candidatures/{case_id}/actions/give_opinion']")
        if name == "council_84":
            page.click("#confirmer")  # nothing chosen: refused, explained, nothing stored
            assert "Ce champ est obligatoire" in page.content()
            check(page, "avis-refuse")
        page.click("label[for=opinion-favourable]")
        page.fill("#reasons", "Bassin d'emploi industriel cohérent.")
        page.click("#confirmer")
        assert "Action effectuée" in page.content()
        body.close()

    # --- the committee labels ----------------------------------------------------------
    clock.set(paris("2023-10-31T15:00:00"))
    page = committee.page
    page.goto(f"/candidatures/{case_id}")
    assert "Sélection nationale" in page.content()
    check(page, "comite-dossier")
    page.click(f"a[href='/candidatures/{case_id}/actions/label']")
    assert page.locator("text=Favorable").count() >= 4  # every region's two opinions
    check(page, "comite-decision")
    page.click("#confirmer")
    assert "Labellisé" in page.content()
    committee.close()

    # --- the auditor: timeline, chain verified, state at a date, mail, letter ---------
    auditor = Person(browser, console, "auditor")
    page = auditor.page
    page.goto(f"/candidatures/{case_id}/historique")
    assert "La chaîne d'empreintes est intègre" in page.content()
    assert page.locator(".tiw-event").count() >= 10
    assert page.locator("text=chaînage rompu").count() == 0
    check(page, "historique")
    page.goto(f"/candidatures/{case_id}/etat?instant=2023-07-03T09:00")
    assert "n'existait pas encore" in page.content()
    check(page, "etat-a-une-date")
    page.goto(f"/candidatures/{case_id}/parcours")
    check(page, "parcours")
    page.goto(f"/candidatures/{case_id}/courriels")
    check(page, "courriels")
    page.goto(f"/candidatures/{case_id}")
    with page.expect_download() as download:
        page.click("a:has-text('lettre.pdf')")
    assert Path(download.value.path()).read_bytes() == minimal_pdf()
    auditor.close()
    print("TIMES", TIMES)


def test_error_pages_are_french_and_accessible(browser: Any, console: Console) -> None:
    person = Person(browser, console, "council_11")
    page = person.page
    answer = page.goto("/candidatures/999")
    assert answer is not None and answer.status == 404
    assert "Page introuvable" in page.content()
    check(page, "erreur-404")
    page.goto("/connexion")
    person.close()


def test_exports_and_the_case_pdf_download_in_the_browser(browser: Any, console: Console) -> None:
    """Issue 16: an export downloaded and parsed (CSV and XLSX), the PDF and its text."""
    import csv
    import io

    from openpyxl import load_workbook
    from pypdf import PdfReader

    from conftest import candidacy, drive_to_regional_review

    engine = console.engine
    case_id = drive_to_regional_review(engine, candidacy(territory_name="Vallée de l'Arve"))
    drive_to_regional_review(engine, candidacy(territory_name="Autre vallée"))
    person = Person(browser, console, "committee")
    page = person.page
    page.goto("/candidatures?q=Arve")
    check(page, "liste-exports")
    page.locator("details.tiw-exports summary").click()
    with page.expect_download() as got:
        page.get_by_role("link", name="Dossiers — CSV point-virgule").click()
    text = Path(got.value.path()).read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert [(r["N°"], r["Territoire"]) for r in rows] == [(str(case_id), "Vallée de l'Arve")]
    with page.expect_download() as got:
        page.get_by_role("link", name="Avis régionaux — tableur (XLSX)").click()
    sheet = load_workbook(io.BytesIO(Path(got.value.path()).read_bytes())).active
    assert sheet is not None
    values = [tuple(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0][:5] == ("N° du dossier", "Territoire", "État du dossier", "Région", "Instance")
    assert {v[5] for v in values[1:]} == {"En attente"} and len(values) == 3
    page.goto(f"/candidatures/{case_id}")
    check(page, "dossier-avec-pdf")
    with page.expect_download() as got:
        page.get_by_role("link", name="Télécharger le dossier complet (PDF)").click()
    pdf = PdfReader(got.value.path())
    printed = " ".join(" ".join(p.extract_text() for p in pdf.pages).replace("\u00a0", " ").split())
    assert f"Candidature n° {case_id} : Vallée de l'Arve" in printed
    assert "La chaîne d'empreintes de ce dossier est vérifiée." in printed
    person.close()


def test_single_sign_on_pages_are_accessible(browser: Any, engine: Engine) -> None:
    """The sign-in page with its ProConnect button, and a refusal page (no sign-in in
    progress in this browser): French, axe-clean. The flow itself is tested against a real
    provider in test_console_sso.py."""
    settings = {
        "oidc_issuer": "http://127.0.0.1:9",
        "oidc_client_id": "console",
        "oidc_client_secret": "secret",
    }
    with serve_console(engine, **settings) as served:
        person = Person(browser, served)
        page = person.page
        page.goto("/connexion")
        assert page.get_by_role("link", name="S'identifier avec ProConnect").is_visible()
        check(page, "connexion-proconnect")
        answer = page.goto("/connexion/oidc/retour?code=x&state=y")
        assert answer is not None and answer.status == 400
        assert "Connexion refusée" in page.content()
        check(page, "proconnect-refus")
        person.close()


def test_the_dashboard_and_the_map_in_a_browser(browser: Any, console: Console) -> None:
    """The committee's dashboard (charts with their tables, axe) and the map: every
    territory of the November 2023 list drawn as an SVG path, a click opens it."""
    from territories_helpers import import_shipped

    engine = console.engine
    import_shipped(engine)
    drive_to_regional_review(engine)  # the Arve filed again (FAQ 1.2, line 72)
    person = Person(browser, console, "committee")
    page = person.page
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
    page.goto("/pilotage")
    assert page.locator("svg[role=img] > title").count() == 2
    assert page.locator("#tableau-regions tbody tr").count() == 1
    assert "1 des 149 territoires" in page.locator("#phase-1-resume").inner_text()
    check(page, "tableau-de-bord")

    page.goto("/carte?date=2023-12-01")
    page.wait_for_selector("#carte[data-drawn]")
    assert page.locator("#carte path.tiw-territoire").count() == 183
    assert page.locator("#carte path.tiw-region").count() == 18
    check(page, "carte")
    page.select_option("#couleur", "state")
    assert page.locator("[data-legend=state]").is_visible()
    # A real click inside the Vallée de l'Arve (ti-8422): a point of the map where that
    # territory's path is the topmost element.
    page.locator("#carte").scroll_into_view_if_needed()
    point = page.evaluate(
        """() => {
          const path = document.querySelector('path[data-territoire="ti-8422"]');
          const box = path.getBoundingClientRect();
          for (let i = 1; i < 20; i++) for (let j = 1; j < 20; j++) {
            const x = box.left + box.width * i / 20, y = box.top + box.height * j / 20;
            if (document.elementFromPoint(x, y) === path) return [x, y];
          }
          return null;
        }"""
    )
    assert point, "no visible point of the territory"
    with page.expect_navigation():
        page.mouse.click(point[0], point[1])
    assert page.url.endswith("/territoires/ti-8422?date=2023-12-01")
    assert page.locator("h1").inner_text() == "Vallée de l'Arve"
    page.wait_for_selector("#carte[data-drawn='1']")
    assert page.locator("#carte path.tiw-territoire").count() == 1
    assert page.locator("#membres + .fr-table tbody tr, #membres ~ div tbody tr").count() >= 2
    check(page, "territoire")
    assert not [m for m in refused if "Content Security Policy" in m], refused
    person.close()
