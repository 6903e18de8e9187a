"""What every console page needs: templates, the signed-in person, CSRF, headers, errors.

Pages ask the engine with the signed-in person's actor (``session.user.actor``): scope,
roles and rules are the engine's; a case outside one's scope is a 404 page, as in the API.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ti_workflow.console import auth, fr
from ti_workflow.console.auth import Session
from ti_workflow.engine import Engine
from ti_workflow.errors import (
    Conflict,
    Forbidden,
    GuardRefused,
    InvalidData,
    NotFound,
    TiWorkflowError,
    TransitionNotAllowed,
)
from ti_workflow.http.writer import run_write
from ti_workflow.settings import Settings
from ti_workflow.storage.database import read, transaction

T = TypeVar("T")
log = logging.getLogger("ti_workflow.console")
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters.update(fr.filters())
templates.env.globals["role_label"] = fr.role

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
STATIC_PREFIX = "/statique"
MAX_BODY = 25 * 1024 * 1024
"""A form post, its letters of intent included (each at most 10 MiB, checked one by one)."""


def is_console(path: str) -> bool:
    return not path.startswith("/v1")


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.console_settings
    return settings


def now(request: Request) -> Any:
    return request.app.state.auth_clock.now()


async def write(request: Request, fn: Callable[[], T]) -> T:
    """A write where this database wants it (the serial writer thread on SQLite)."""
    return await run_write(engine_of(request), request.app.state.writer, fn)


class LoginRequired(Exception):
    """No live session: the page sends the person to the sign-in page."""


class CsrfRefused(Exception):
    """A form posted without this session's token (or with another): 403, nothing stored."""


def current_session(request: Request) -> Session | None:
    cached: Session | bool | None = getattr(request.state, "session", False)
    if cached is not False:
        return cached if isinstance(cached, Session) else None
    cookie = request.cookies.get(auth.COOKIE, "")
    found = None
    if cookie:
        db = engine_of(request).db
        instant = now(request)
        with read(db) as conn:
            hit = auth.find_session(conn, cookie, instant)
        if hit is not None:
            found, stale = hit
            if stale:
                with transaction(db) as conn:
                    auth.touch_session(conn, found.id, instant)
    request.state.session = found
    return found


def signed_in(request: Request) -> Session:
    session = current_session(request)
    if session is None:
        raise LoginRequired()
    return session


async def posted(request: Request) -> tuple[Session, Any]:
    """The session and the form of a POST, after the CSRF check."""
    session = await run_in_threadpool(signed_in, request)
    form = await request.form()
    token = form.get("csrf")
    if not isinstance(token, str) or not auth.same(token, session.csrf):
        raise CsrfRefused()
    return session, form


async def posted_anonymous(request: Request) -> Any:
    """The form of a POST made before sign-in: double-submit cookie check."""
    form = await request.form()
    token = form.get("csrf")
    if not isinstance(token, str) or not auth.same(
        token, request.cookies.get(auth.CSRF_COOKIE, "")
    ):
        raise CsrfRefused()
    return form


def anonymous_csrf(request: Request) -> str:
    token = request.cookies.get(auth.CSRF_COOKIE) or ""
    if len(token) < 20:
        token = secrets.token_urlsafe(32)
    request.state.new_csrf_cookie = token
    return token


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    session = context.pop("session", None)
    if session is None and not getattr(request.state, "skip_session", False):
        session = getattr(request.state, "session", None) or None
    csrf = session.csrf if session else context.pop("csrf", None) or anonymous_csrf(request)
    response = templates.TemplateResponse(
        request,
        template,
        {"session": session, "csrf": csrf, "user": session.user if session else None, **context},
        status_code=status,
    )
    token = getattr(request.state, "new_csrf_cookie", None)
    if session is None and token:
        response.set_cookie(
            auth.CSRF_COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --- headers and error pages ------------------------------------------------------------


class SecurityHeaders:
    """CSP without inline code, no framing, no caching of pages with personal data."""

    def __init__(self, app: Callable[..., Awaitable[None]], form_action: str | None = None) -> None:
        self.app = app
        self.csp = CSP
        if form_action:  # the single sign-on provider's origin (logout goes there)
            origin = "/".join(form_action.split("/", 3)[:3])
            self.csp = CSP.replace("form-action 'self'", f"form-action 'self' {origin}")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not is_console(scope["path"]):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(STATIC_PREFIX + "/")
        length = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > MAX_BODY:
            body = "<!DOCTYPE html><html lang=fr><title>Envoi trop volumineux</title><p>"
            body += "L'envoi dépasse la taille permise (25 Mo). Rien n'a été enregistré.</p>"
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [
                        (b"content-type", b"text/html; charset=utf-8"),
                        (b"content-security-policy", CSP.encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body.encode()})
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"cache-control"]
                headers += [
                    (b"content-security-policy", self.csp.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (
                        b"cache-control",
                        b"public, max-age=3600" if static else b"no-store",
                    ),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


ERRORS = {
    400: ("Demande incorrecte", "La demande n'a pas pu être comprise."),
    403: (
        "Action refusée",
        "Cette action n'est pas permise : le formulaire a expiré ou ne vient pas de cette "
        "console, ou votre rôle ne le permet pas. Rechargez la page et recommencez.",
    ),
    404: (
        "Page introuvable",
        "La page demandée n'existe pas, ou elle ne relève pas de votre périmètre.",
    ),
    405: ("Méthode non permise", "Cette adresse ne s'utilise pas ainsi."),
    409: (
        "Action devenue impossible",
        "Le dossier a changé depuis l'affichage de la page : l'action n'est plus possible "
        "dans son état actuel. Rien n'a été enregistré.",
    ),
    413: ("Envoi trop volumineux", "Le contenu envoyé dépasse la taille permise."),
    422: ("Données refusées", "Les données envoyées ne peuvent pas être enregistrées."),
    429: (
        "Trop de demandes",
        "Trop de demandes ont été faites en peu de temps. Réessayez dans un quart d'heure.",
    ),
    500: (
        "Erreur du service",
        "Une erreur inattendue s'est produite ; rien n'a été enregistré. Si elle se "
        "reproduit, signalez-la avec la référence ci-dessous.",
    ),
}


def error_page(
    request: Request, status: int, reference: str | None = None, **extra: Any
) -> HTMLResponse:
    title, text = ERRORS.get(status, ERRORS[400])
    try:
        session = current_session(request)
    except Exception:  # the database itself may be what failed
        session = None
    request.state.session = session
    return page(
        request,
        "pages/error.html",
        status=status,
        session=session,
        title=title,
        text=fr.typography(text),
        status_code=status,
        reference=reference,
        **extra,
    )


def status_of(exc: BaseException) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Forbidden | CsrfRefused):
        return 403
    if isinstance(exc, Conflict | TransitionNotAllowed):
        return 409
    if isinstance(exc, GuardRefused | InvalidData):
        return 422
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, RequestValidationError):
        return 404
    return 500


def install_error_pages(app: FastAPI) -> None:
    """Console paths answer French pages; ``/v1`` keeps its problem+json handlers."""

    async def console_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, LoginRequired):
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            if request.method != "GET":
                target = "/"
            return redirect(f"/connexion?suite={target}")
        status = status_of(exc)
        reference = None
        if status == 500:
            reference = uuid.uuid4().hex[:12]
            log.error(
                "console error %s on %s %s",
                reference,
                request.method,
                request.url.path,
                exc_info=exc,
            )
        rules = list(exc.rules) if isinstance(exc, GuardRefused) else []
        return await run_in_threadpool(lambda: error_page(request, status, reference, rules=rules))

    originals = dict(app.exception_handlers)
    kinds: list[Any] = [
        TiWorkflowError,
        HTTPException,
        RequestValidationError,
        Exception,
        LoginRequired,
        CsrfRefused,
    ]
    for kind in kinds:
        original = originals.get(kind)

        def make(original: Any) -> Callable[[Request, Exception], Awaitable[Response]]:
            async def handler(request: Request, exc: Exception) -> Response:
                if is_console(request.url.path) or original is None:
                    return await console_error(request, exc)
                result = original(request, exc)
                return await result if hasattr(result, "__await__") else result  # type: ignore[no-any-return]

            return handler

        app.add_exception_handler(kind, make(original))
