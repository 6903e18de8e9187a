"""Agents' single sign-on against a REAL OpenID provider (npm ``oidc-provider``, run by
node on 127.0.0.1 with tests/oidc/provider.mjs): the console is the client, unmocked.

The package is installed once with npm into a cache folder (``TI_WORKFLOW_TEST_CACHE``,
default ``~/.cache/ti-workflow-tests``). Without node/npm the tests skip, unless ``CI``
is set: then they fail."""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import func, select

from console_support import Console, serve_console
from sched_support import free_port
from ti_workflow.clock import SimulatedClock
from ti_workflow.console import auth, oidc
from ti_workflow.engine import Engine
from ti_workflow.errors import InvalidData
from ti_workflow.http import accounts
from ti_workflow.http.accounts import users
from ti_workflow.settings import Settings
from ti_workflow.storage.database import read

OIDC_PROVIDER = "oidc-provider@9.5.1"
SCRIPT = Path(__file__).parent / "oidc" / "provider.mjs"
ID_TOKEN_TTL = 60
AGENT = "cr84@region.example.fr"  # an existing account (console_support.ACCOUNTS)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the single sign-on tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def provider_module() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _unavailable("node and npm are needed to run the OpenID provider (oidc-provider)")
    cache = Path(
        os.environ.get("TI_WORKFLOW_TEST_CACHE") or Path.home() / ".cache/ti-workflow-tests"
    )
    prefix = cache / OIDC_PROVIDER.replace("@", "-")
    entry = prefix / "node_modules" / "oidc-provider" / "lib" / "index.js"
    if not entry.exists():
        prefix.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", OIDC_PROVIDER],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0 or not entry.exists():
            _unavailable(f"npm install {OIDC_PROVIDER} failed: {done.stderr[-500:]}")
    return entry


@pytest.fixture(scope="module")
def issuer(provider_module: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "OIDC_PROVIDER_MODULE": str(provider_module),
        "OIDC_PORT": str(port),
        "OIDC_ID_TOKEN_TTL": str(ID_TOKEN_TTL),
    }
    process = subprocess.Popen(
        ["node", str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/.well-known/openid-configuration", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                out = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"oidc-provider did not start: {out[-1000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


@pytest.fixture
def auth_clock() -> SimulatedClock:
    return SimulatedClock(datetime.now(UTC))


@pytest.fixture
def console(engine: Engine, auth_clock: SimulatedClock, issuer: str) -> Iterator[Console]:
    with registered_console(engine, auth_clock, issuer) as served:
        yield served


@contextmanager
def registered_console(
    engine: Engine, auth_clock: SimulatedClock, issuer: str, **metadata: str
) -> Iterator[Console]:
    """A console with a client registered for it at the provider (dynamic registration)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client = httpx.post(
        issuer + "/reg",
        json={
            "redirect_uris": [base + oidc.CALLBACK],
            "post_logout_redirect_uris": [base + "/connexion?sortie=1"],
            "token_endpoint_auth_method": "client_secret_post",
            "response_types": ["code"],
            "grant_types": ["authorization_code"],
            **metadata,
        },
        timeout=10,
    )
    assert client.status_code == 201, client.text
    registered = client.json()
    with serve_console(
        engine,
        auth_clock,
        port=port,
        oidc_issuer=issuer,
        oidc_client_id=registered["client_id"],
        oidc_client_secret=registered["client_secret"],
    ) as served:
        yield served


def at_provider(browser: httpx.Client, url: str, email: str, stop: str) -> str:
    """Drive the provider's login and consent forms; the URL it sends back to ``stop``."""
    for _ in range(20):
        if url.startswith(stop):
            return url
        answer = browser.get(url)
        while answer.status_code in (302, 303) and not answer.headers["location"].startswith(stop):
            answer = browser.get(str(answer.url.join(answer.headers["location"])))
        if answer.status_code in (302, 303):
            return answer.headers["location"]
        assert answer.status_code == 200, answer.text
        action = re.search(r'<form[^>]*action="([^"]+)"', answer.text)
        prompt = re.search(r'name="prompt" value="([^"]+)"', answer.text)
        assert action and prompt, answer.text
        fields = {"prompt": prompt.group(1)}
        if prompt.group(1) == "login":
            fields |= {"login": email, "password": "x"}
        posted = browser.post(str(answer.url.join(html.unescape(action.group(1)))), data=fields)
        assert posted.status_code in (302, 303), posted.text
        url = str(posted.url.join(posted.headers["location"]))
    raise AssertionError("the provider did not send the browser back")


def sign_in(
    console: Console,
    email: str = AGENT,
    change_auth: dict[str, str] | None = None,
    change_back: dict[str, str] | None = None,
    wait: timedelta | None = None,
    auth_clock: SimulatedClock | None = None,
) -> tuple[httpx.Client, httpx.Response]:
    """The whole round trip in one browser (console and provider cookies in one jar)."""
    browser = httpx.Client(follow_redirects=False, timeout=15)
    start = browser.get(console.url + "/connexion/oidc")
    assert start.status_code == 303, start.text
    auth_url = start.headers["location"]
    if change_auth:
        auth_url = _with(auth_url, change_auth)
    back = at_provider(browser, auth_url, email, console.url)
    if change_back:
        back = _with(back, change_back)
    if wait and auth_clock:
        auth_clock.advance(wait)
    return browser, browser.get(back)


def _with(url: str, changes: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def session_count(console: Console) -> int:
    with read(console.engine.db) as conn:
        return int(conn.execute(select(func.count()).select_from(auth.sessions)).scalar_one())


def test_the_login_page_offers_proconnect_and_keeps_the_mailed_link(console: Console) -> None:
    with console.client() as client:
        page = client.get("/connexion")
        assert "S'identifier avec ProConnect" in page.text
        assert 'action="/connexion"' in page.text  # the e-mailed link stays
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        wrong = client.post("/connexion", data={"csrf": csrf.group(1), "email": "pas une adresse"})
        assert wrong.status_code == 422 and "S'identifier avec ProConnect" in wrong.text


def test_a_good_login_opens_a_session_of_the_matching_account(console: Console) -> None:
    browser, answer = sign_in(console)
    with closing(browser):
        assert answer.status_code == 303 and answer.headers["location"] == "/candidatures"
        cookie = answer.cookies.get(auth.COOKIE)
        assert cookie
        start = browser.get(console.url + "/connexion/oidc")
        auth_url = start.headers["location"]
        assert "code_challenge_method=S256" in auth_url and "nonce=" in auth_url
        listing = browser.get(console.url + "/candidatures")
        assert listing.status_code == 200
        assert "Dossiers de la région" in listing.text and AGENT in listing.text


def refusal_logged(caplog: pytest.LogCaptureFixture, reason: str) -> bool:
    return any(f"single sign-on refused: {reason}" in r.getMessage() for r in caplog.records)


def test_a_wrong_state_is_refused_and_opens_no_session(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    before = session_count(console)
    browser, answer = sign_in(console, change_back={"state": "forged-state"})
    with closing(browser):
        assert answer.status_code == 400
        assert "Connexion refusée" in answer.text
        assert not answer.cookies.get(auth.COOKIE)
    assert session_count(console) == before
    assert refusal_logged(caplog, "state")


def test_a_wrong_nonce_is_refused(console: Console, caplog: pytest.LogCaptureFixture) -> None:
    before = session_count(console)
    browser, answer = sign_in(console, change_auth={"nonce": "another-nonce"})
    with closing(browser):
        assert answer.status_code == 400, answer.text
        assert "Connexion refusée" in answer.text
        assert not answer.cookies.get(auth.COOKIE)
    assert session_count(console) == before
    assert refusal_logged(caplog, "nonce")  # the provider signed a token for another nonce


def test_an_expired_id_token_is_refused(
    console: Console, auth_clock: SimulatedClock, caplog: pytest.LogCaptureFixture
) -> None:
    # The provider's ID tokens live 60 s; the console's clock is 5 minutes later when
    # the token arrives (still within the 10 minutes of the sign-in itself).
    browser, answer = sign_in(console, wait=timedelta(minutes=5), auth_clock=auth_clock)
    with closing(browser):
        assert answer.status_code == 400, answer.text
        assert "Connexion expirée" in answer.text and "trop tard" in answer.text
        assert not answer.cookies.get(auth.COOKIE)
    assert refusal_logged(caplog, "expired")


def test_an_unknown_email_gets_a_french_page_and_no_account(console: Console) -> None:
    with read(console.engine.db) as conn:
        before = conn.execute(select(func.count()).select_from(users)).scalar_one()
    browser, answer = sign_in(console, email="inconnu@agent.example.gouv.fr")
    with closing(browser):
        assert answer.status_code == 403
        assert "Aucun compte ne correspond à cette adresse" in answer.text
        assert "inconnu@agent.example.gouv.fr" in answer.text
        assert not answer.cookies.get(auth.COOKIE)
    with read(console.engine.db) as conn:
        assert conn.execute(select(func.count()).select_from(users)).scalar_one() == before


def test_logout_ends_the_session_here_and_at_the_provider(console: Console, issuer: str) -> None:
    browser, _ = sign_in(console)
    with closing(browser):
        page = browser.get(console.url + "/candidatures")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        out = browser.post(console.url + "/deconnexion", data={"csrf": csrf.group(1)})
        assert out.status_code == 303
        assert out.headers["location"].startswith(issuer + "/session/end?")
        assert "id_token_hint=" in out.headers["location"]
        # Chromium applies form-action to the redirect: the provider's origin is allowed.
        assert f"form-action 'self' {issuer};" in out.headers["content-security-policy"]
        # The console session is revoked at once.
        assert browser.get(console.url + "/candidatures").status_code == 303
        # The provider asks to confirm, then sends the browser back to the console.
        confirm = browser.get(out.headers["location"])
        assert confirm.status_code == 200, confirm.text
        action = re.search(r'<form[^>]*action="([^"]+)"', confirm.text)
        xsrf = re.search(r'name="xsrf" value="([^"]+)"', confirm.text)
        assert action and xsrf
        done = browser.post(
            str(confirm.url.join(html.unescape(action.group(1)))),
            data={"xsrf": xsrf.group(1), "logout": "yes"},
        )
        assert done.status_code in (302, 303)
        assert done.headers["location"].startswith(console.url + "/connexion?sortie=1")
        # Signed out at the provider: a new sign-in asks for the login again.
        start = browser.get(console.url + "/connexion/oidc")
        at = browser.get(start.headers["location"])
        interaction = browser.get(str(at.url.join(at.headers["location"])))
        assert 'name="prompt" value="login"' in interaction.text


def test_a_partial_single_sign_on_configuration_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TI_WORKFLOW_OIDC_ISSUER", "https://fca.integ01.dev-agentconnect.fr/api/v2")
    monkeypatch.delenv("TI_WORKFLOW_OIDC_CLIENT_ID", raising=False)
    monkeypatch.delenv("TI_WORKFLOW_OIDC_CLIENT_SECRET", raising=False)
    with pytest.raises(InvalidData) as refused:
        Settings.from_env()
    assert {e.location for e in refused.value.errors} == {
        "TI_WORKFLOW_OIDC_CLIENT_ID",
        "TI_WORKFLOW_OIDC_CLIENT_SECRET",
    }
    monkeypatch.setenv("TI_WORKFLOW_OIDC_ISSUER", "http://idp.example.fr")
    monkeypatch.setenv("TI_WORKFLOW_OIDC_CLIENT_ID", "c")
    monkeypatch.setenv("TI_WORKFLOW_OIDC_CLIENT_SECRET", "s")
    with pytest.raises(InvalidData) as insecure:
        Settings.from_env()  # plain http only on the loopback
    assert [e.location for e in insecure.value.errors] == ["TI_WORKFLOW_OIDC_ISSUER"]


def test_a_tampered_id_token_fails_its_signature(console: Console, issuer: str) -> None:
    browser, answer = sign_in(console)
    with closing(browser):
        assert answer.status_code == 303
        id_token = next(c.value for c in browser.cookies.jar if c.name == oidc.ID_COOKIE)
    payload = json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "=="))
    settings = Settings(oidc_issuer=issuer, oidc_client_id=payload["aud"], oidc_client_secret="s")
    provider = oidc.Provider(settings)
    now = int(time.time())
    # The real one verifies (its e-mail came from userinfo, as with ProConnect).
    assert provider.verified(id_token, now, None)["sub"] == AGENT
    head, _, signature = id_token.split(".")
    forged = dict(payload, sub="comite@anct.example.gouv.fr")
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    with pytest.raises(oidc.SsoRefused) as refused:
        provider.verified(f"{head}.{forged_body}.{signature}", now, None)
    assert refused.value.reason == "signature"
    with pytest.raises(oidc.SsoRefused) as other_client:
        oidc.Provider(
            Settings(oidc_issuer=issuer, oidc_client_id="another", oidc_client_secret="s")
        ).verified(id_token, now, None)
    assert other_client.value.reason == "claims"  # aud is not this client


def test_an_address_with_several_accounts_is_sent_to_the_mailed_link(console: Console) -> None:
    accounts.add_user(
        console.engine.db, "cr84-bis", "auditor", datetime.now(UTC), None, AGENT.upper()
    )
    before = session_count(console)
    browser, answer = sign_in(console)
    with closing(browser):
        assert answer.status_code == 409
        assert "Plusieurs comptes portent cette adresse" in answer.text
        assert "lien envoyé par courriel" in answer.text
    assert session_count(console) == before


def test_a_signed_userinfo_answer_is_verified_and_used(
    engine: Engine, auth_clock: SimulatedClock, issuer: str, caplog: pytest.LogCaptureFixture
) -> None:
    """ProConnect's userinfo is a JWT signed by the provider: the e-mail comes from it."""
    caplog.set_level(logging.DEBUG, logger="ti_workflow.console")
    with registered_console(
        engine, auth_clock, issuer, userinfo_signed_response_alg="RS256"
    ) as console:
        browser, answer = sign_in(console)
        with closing(browser):
            assert answer.status_code == 303 and answer.cookies.get(auth.COOKIE)
            assert AGENT in browser.get(console.url + "/candidatures").text
    assert any("signed userinfo verified" in r.getMessage() for r in caplog.records)
