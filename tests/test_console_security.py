"""The console's security over real HTTP: sign-in links, sessions, CSRF, scope, escaping,
headers and French error pages. The engine has the simulated clock (window open)."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from conftest import CANDIDATE, candidacy
from console_support import CANDIDATE_EMAIL, Console, csrf_of, serve_console
from files_support import minimal_pdf, padded_pdf
from ti_workflow.clock import SimulatedClock
from ti_workflow.console import auth
from ti_workflow.engine import Engine
from ti_workflow.files import MAX_BYTES
from ti_workflow.mail.outbox import outbox
from ti_workflow.storage.database import read
from ti_workflow.storage.tables import CaseRow

cases_t = CaseRow.__table__  # type: ignore[attr-defined]


@pytest.fixture
def auth_clock() -> SimulatedClock:
    return SimulatedClock(datetime.now(UTC))


@pytest.fixture
def console(engine: Engine, auth_clock: SimulatedClock) -> Iterator[Console]:
    with serve_console(engine, auth_clock) as served:
        yield served


def count_cases(engine: Engine) -> int:
    with read(engine.db) as conn:
        return int(conn.execute(select(func.count()).select_from(cases_t)).scalar_one())


def ask_link(console: Console, address: str, path: str = "/connexion") -> str:
    with console.client() as client:
        page = client.get(path)
        answer = client.post(path, data={"csrf": csrf_of(page.text), "email": address})
        assert answer.status_code == 200, answer.text
        return answer.text


def open_link(console: Console, link: str) -> tuple[int, str]:
    with console.client() as client:
        page = client.get("/connexion/lien?jeton=" + link.rsplit("jeton=", 1)[1])
        jeton = link.rsplit("jeton=", 1)[1]
        answer = client.post("/connexion/lien", data={"csrf": csrf_of(page.text), "jeton": jeton})
        return answer.status_code, answer.cookies.get(auth.COOKIE) or ""


def test_a_login_link_works_once_and_is_stored_only_hashed(console: Console) -> None:
    ask_link(console, "cr84@region.example.fr")
    link = console.link_for("cr84@region.example.fr")
    secret = link.rsplit("jeton=", 1)[1]
    with read(console.engine.db) as conn:
        stored = conn.execute(select(auth.links.c.token_hash)).scalars().all()
    assert secret not in stored and auth.digest(secret) in stored
    status, cookie = open_link(console, link)
    assert status == 303 and cookie
    again, no_cookie = open_link(console, link)
    assert again == 400 and not no_cookie  # used: refused, no session


def test_an_expired_link_is_refused(console: Console, auth_clock: SimulatedClock) -> None:
    ask_link(console, "cr84@region.example.fr")
    link = console.link_for("cr84@region.example.fr")
    auth_clock.advance(timedelta(minutes=15, seconds=1))
    status, cookie = open_link(console, link)
    assert status == 400 and not cookie


def test_the_answer_never_says_whether_the_account_exists(console: Console) -> None:
    known = ask_link(console, "cr84@region.example.fr")
    unknown = ask_link(console, "personne@nulle-part.example.org")
    strip = lambda html: html.replace("cr84@region.example.fr", "X").replace(  # noqa: E731
        "personne@nulle-part.example.org", "X"
    )
    assert strip(known).split('name="csrf"')[0] == strip(unknown).split('name="csrf"')[0]
    with read(console.engine.db) as conn:
        rows = conn.execute(select(outbox.c.recipients)).scalars().all()
    assert [r[0]["address"] for r in rows] == ["cr84@region.example.fr"]  # one mail only


def test_requests_are_rate_limited_per_address(console: Console) -> None:
    for _ in range(auth.MAX_PER_ADDRESS):
        ask_link(console, "personne@nulle-part.example.org")
    with console.client() as client:
        page = client.get("/connexion")
        answer = client.post(
            "/connexion",
            data={"csrf": csrf_of(page.text), "email": "personne@nulle-part.example.org"},
        )
    assert answer.status_code == 429 and "Trop de demandes" in answer.text


def test_self_registration_creates_a_candidate_account_only(console: Console) -> None:
    ask_link(console, "nouveau@territoire.example.org", "/inscription")
    link = console.link_for("nouveau@territoire.example.org")
    status, cookie = open_link(console, link)
    assert status == 303
    with console.client() as client:
        client.cookies.set(auth.COOKIE, cookie)
        page = client.get("/candidatures")
    assert "Mes candidatures" in page.text and "Candidat" in page.text


def test_logout_revokes_the_session(console: Console) -> None:
    with console.client("committee") as client:
        page = client.get("/candidatures")
        assert page.status_code == 200
        cookie = client.cookies.get(auth.COOKIE)
        out = client.post("/deconnexion", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
    with console.client() as again:
        again.cookies.set(auth.COOKIE, cookie or "")
        answer = again.get("/candidatures")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/connexion")


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_stores_nothing(
    console: Console,
) -> None:
    engine = console.engine
    with console.client() as client:
        ask = client.post("/connexion", data={"email": CANDIDATE_EMAIL})
        assert ask.status_code == 403 and "Action refusée" in ask.text
    with read(engine.db) as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 0
    ask_link(console, CANDIDATE_EMAIL, "/inscription")
    _, cookie = open_link(console, console.link_for(CANDIDATE_EMAIL))
    with console.client() as client:
        client.cookies.set(auth.COOKIE, cookie)
        body = {"territory_name": "Vallée", "contact_email": CANDIDATE_EMAIL}
        missing = client.post("/candidatures/nouvelle", data=body)
        wrong = client.post("/candidatures/nouvelle", data={**body, "csrf": "x" * 43})
    assert missing.status_code == wrong.status_code == 403
    assert count_cases(engine) == 0


def test_another_regions_case_is_a_404_page(console: Console) -> None:
    case = console.engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    with console.client("council_11") as client:
        page = client.get(f"/candidatures/{case.id}")
        action = client.get(f"/candidatures/{case.id}/actions/give_opinion")
    assert page.status_code == action.status_code == 404
    assert "Page introuvable" in page.text and "Vallée" not in page.text
    with console.client("council_84") as client:
        assert client.get(f"/candidatures/{case.id}").status_code == 200
        assert client.get(f"/candidatures/{case.id}/historique").status_code == 404  # auditors'


def test_a_script_in_a_territory_name_is_shown_as_text(console: Console) -> None:
    name = "Vallée <script>alert('x')</script>"
    case = console.engine.create_case(
        "candidacy", "ti-2023-2027", candidacy(territory_name=name), CANDIDATE
    )
    with console.client("committee") as client:
        for path in (f"/candidatures/{case.id}", "/candidatures"):
            body = client.get(path).text
            assert "<script>alert" not in body
            assert "&lt;script&gt;alert(" in body


def test_headers_forbid_inline_code_framing_and_caching(console: Console) -> None:
    with console.client("committee") as client:
        page = client.get("/candidatures")
        static = client.get("/statique/console.css")
        api = client.get("/v1/openapi.json")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp and page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "max-age" in static.headers["cache-control"]
    assert "content-security-policy" not in api.headers  # the API keeps its own answers
    assert "<script>" not in page.text.replace("<script src=", "").replace(
        '<script type="module" src=', ""
    )
    assert "style=" not in page.text


def test_errors_are_french_pages(console: Console) -> None:
    with console.client("committee") as client:
        missing = client.get("/nulle-part")
        bad_id = client.get("/candidatures/abc")
        api = client.get("/v1/cases/abc")
    assert missing.status_code == 404 and "Page introuvable" in missing.text
    assert bad_id.status_code == 404 and "<html" in bad_id.text
    assert api.headers["content-type"].startswith("application/problem+json")


def _edit_form(console: Console, case_id: int, cookie: str) -> tuple[dict[str, str], str]:
    with console.client() as client:
        client.cookies.set(auth.COOKIE, cookie)
        page = client.get(f"/candidatures/{case_id}/modifier").text
    fields = {
        "csrf": csrf_of(page),
        "territory_name": "Vallée de l'Arve",
        "contact_email": CANDIDATE_EMAIL,
        "gov_rows": "0",
        "act_rows": "0",
        "loi_rows": "1",
        "loi-0-signatory": "Mme Élue",
        "action": "enregistrer",
    }
    return fields, page


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"GIF89a not a letter", "n'est pas un PDF"),
        (padded_pdf(MAX_BYTES + 1), "dépasse 10"),
    ],
    ids=["not-a-pdf", "too-large"],
)
def test_an_upload_that_is_not_a_pdf_or_too_large_is_refused_and_nothing_stored(
    console: Console, content: bytes, message: str
) -> None:
    engine = console.engine
    case = engine.create_case(
        "candidacy", "ti-2023-2027", candidacy(letters_of_intent=[]), CANDIDATE
    )
    cookie = sign_in_candidate(console)
    fields, _ = _edit_form(console, case.id, cookie)
    with console.client() as client:
        client.cookies.set(auth.COOKIE, cookie)
        answer = client.post(
            f"/candidatures/{case.id}/modifier",
            data=fields,
            files={"loi-0-fichier": ("lettre.pdf", content, "application/pdf")},
        )
    assert answer.status_code == 422
    assert message in html.unescape(answer.text).replace("\u00a0", " ")
    after = engine.get(case.id, CANDIDATE)
    assert after.version == case.version and after.data["letters_of_intent"] == []
    assert not any(p.is_file() for p in engine.files.root.rglob("*"))


def test_a_letter_uploaded_is_kept_and_downloaded_only_within_scope(console: Console) -> None:
    engine = console.engine
    case = engine.create_case(
        "candidacy", "ti-2023-2027", candidacy(letters_of_intent=[]), CANDIDATE
    )
    cookie = sign_in_candidate(console)
    fields, _ = _edit_form(console, case.id, cookie)
    pdf = minimal_pdf()
    with console.client() as client:
        client.cookies.set(auth.COOKIE, cookie)
        saved = client.post(
            f"/candidatures/{case.id}/modifier",
            data=fields,
            files={"loi-0-fichier": ("Lettre signée.pdf", pdf, "application/pdf")},
        )
        assert saved.status_code == 303, saved.text
        letter = engine.get(case.id, CANDIDATE).data["letters_of_intent"][0]
        assert letter["file"]["sha256"] == hashlib.sha256(pdf).hexdigest()
        download = client.get(f"/candidatures/{case.id}/lettres/{letter['file']['sha256']}")
    assert download.status_code == 200 and download.content == pdf
    assert download.headers["content-disposition"].startswith("attachment")
    with console.client("council_11") as other:
        refused = other.get(f"/candidatures/{case.id}/lettres/{letter['file']['sha256']}")
    assert refused.status_code == 404


def sign_in_candidate(console: Console) -> str:
    ask_link(console, CANDIDATE_EMAIL, "/inscription")
    status, cookie = open_link(console, console.link_for(CANDIDATE_EMAIL))
    assert status == 303
    return cookie
