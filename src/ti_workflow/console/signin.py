"""Sign-in pages: request a link (or register as a candidate), open it, sign out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from ti_workflow.console import auth, fr
from ti_workflow.console.web import (
    current_session,
    engine_of,
    error_page,
    page,
    posted,
    posted_anonymous,
    redirect,
    settings_of,
    templates,
    write,
)
from ti_workflow.console.web import now as auth_now
from ti_workflow.mail.dispatch import Dispatcher
from ti_workflow.storage.database import transaction

log = logging.getLogger("ti_workflow.console")
router = APIRouter(include_in_schema=False)
Suite = Annotated[str, Query(max_length=500)]


def safe_next(target: str) -> str:
    """Only a path of this site (no ``//host``, no scheme): no open redirect."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/")
def home(request: Request) -> Response:
    return redirect("/candidatures" if current_session(request) else "/connexion")


@router.get("/connexion", response_class=HTMLResponse)
def login_form(request: Request, suite: Suite = "/") -> HTMLResponse:
    if current_session(request):
        return redirect(safe_next(suite))  # type: ignore[return-value]
    return page(request, "pages/login.html", mode="login", suite=safe_next(suite))


@router.get("/inscription", response_class=HTMLResponse)
def register_form(request: Request) -> HTMLResponse:
    return page(request, "pages/login.html", mode="register", suite="/")


def render_mail(base_url: str, made: list[auth.LinkMail]) -> tuple[str, str, str]:
    env = templates.env
    context = {
        "links": [
            {
                "url": f"{base_url}/connexion/lien?jeton={m.secret}",
                "role": fr.role(m.user.role),
                "region": m.user.region,
                "expires": fr.when(m.expires_at),
            }
            for m in made
        ]
    }
    subject = "Votre lien de connexion à la console Territoires d'industrie"
    text = env.get_template("mail/login_link.txt").render(context)
    html = env.get_template("mail/login_link.html").render(context)
    return subject, text, html


def request_link(
    conn: Connection,
    address: str,
    ip: str,
    instant: datetime,
    register: bool,
    render: Callable[[list[auth.LinkMail]], tuple[str, str, str]],
    mail_from: str,
) -> bool:
    """Queue a login mail if the address has an account (or registers): False if limited."""
    auth.purge(conn, instant)
    auth.scrub_login_mail(conn, instant)
    if auth.rate_limited(conn, address, ip, instant):
        return False
    accounts = auth.accounts_for(conn, address)
    if not accounts and register:
        accounts = [auth.register_candidate(conn, address, instant)]
    if accounts:
        subject, text, html = render(auth.new_links(conn, accounts, instant))
        auth.queue_login_mail(conn, address, subject, text, html, mail_from, instant)
    return True


def _send_now(request: Request) -> Callable[[], None]:
    db, settings, clock = engine_of(request).db, settings_of(request), request.app.state.auth_clock

    def send() -> None:
        try:
            Dispatcher(db, settings, clock).send_due()  # whatever is due, the link with it
        except Exception:  # the scheduler's dispatcher will try again; never the user's error
            log.exception("could not send the login mail now")

    return send


async def _ask(request: Request, mode: str) -> Response:
    form = await posted_anonymous(request)
    raw = form.get("email")
    address = auth.clean_address(raw if isinstance(raw, str) else "")
    suite = safe_next(str(form.get("suite") or "/"))
    if address is None:
        errors = {"email": "Indiquez une adresse électronique valide, par exemple nom@exemple.fr."}
        return await run_in_threadpool(
            lambda: page(
                request,
                "pages/login.html",
                status=422,
                mode=mode,
                suite=suite,
                errors=errors,
                email=raw if isinstance(raw, str) else "",
            )
        )
    ip = request.client.host if request.client else "?"
    base = str(request.base_url).rstrip("/")
    instant = auth_now(request)
    settings = settings_of(request)
    db = engine_of(request).db

    def ask() -> bool:
        with transaction(db) as conn:
            return request_link(
                conn,
                address,
                ip,
                instant,
                mode == "register",
                lambda made: render_mail(base, made),
                settings.mail_from,
            )

    if not await write(request, ask):
        return await run_in_threadpool(lambda: error_page(request, 429))
    response = await run_in_threadpool(
        lambda: page(request, "pages/login_sent.html", mode=mode, email=address)
    )
    response.background = BackgroundTask(run_in_threadpool, _send_now(request))
    return response


@router.post("/connexion", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    return await _ask(request, "login")


@router.post("/inscription", response_class=HTMLResponse)
async def register(request: Request) -> Response:
    return await _ask(request, "register")


@router.get("/connexion/lien", response_class=HTMLResponse)
def link_form(request: Request, jeton: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    return page(request, "pages/link.html", jeton=jeton)


@router.post("/connexion/lien", response_class=HTMLResponse)
async def use_link(request: Request) -> Response:
    form = await posted_anonymous(request)
    secret = str(form.get("jeton") or "")
    instant = auth_now(request)

    def consume() -> tuple[str, auth.Session] | None:
        try:
            with transaction(engine_of(request).db) as conn:
                return auth.consume_link(conn, secret, instant)
        except auth.LinkRefused:
            return None

    opened = await write(request, consume)
    if opened is None:
        return await run_in_threadpool(
            lambda: page(
                request, "pages/login.html", status=400, mode="login", suite="/", refused=True
            )
        )
    cookie, _ = opened
    response = redirect("/candidatures")
    response.set_cookie(
        auth.COOKIE,
        cookie,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
        max_age=int(auth.SESSION_MAX.total_seconds()),
    )
    response.delete_cookie(auth.CSRF_COOKIE, path="/")
    return response


@router.post("/deconnexion")
async def logout(request: Request) -> Response:
    session, _ = await posted(request)
    instant = auth_now(request)

    def revoke() -> None:
        with transaction(engine_of(request).db) as conn:
            auth.revoke_session(conn, session.id, instant)

    await write(request, revoke)
    from ti_workflow.console.sso import ID_COOKIE, logout_target  # sso imports this module

    target = await run_in_threadpool(logout_target, request)
    response = redirect(target or "/connexion?sortie=1")
    response.delete_cookie(auth.COOKIE, path="/")
    response.delete_cookie(ID_COOKIE, path="/deconnexion")
    return response
