"""Sign-in pages of the single sign-on: start at the provider, come back, refusals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ti_workflow.console import auth, oidc
from ti_workflow.console.signin import safe_next
from ti_workflow.console.web import engine_of, page, redirect, settings_of, templates, write
from ti_workflow.console.web import now as auth_now
from ti_workflow.http.accounts import User
from ti_workflow.storage.database import read, transaction

router = APIRouter(include_in_schema=False)
Param = Annotated[str, Query(max_length=4096)]

REFUSALS = {
    "unknown": (
        403,
        "Aucun compte ne correspond à cette adresse",
        "Vous êtes bien identifié auprès de {provider}, mais l'adresse {email} ne "
        "correspond à aucun compte de la console. Les comptes des agents sont créés par "
        "la Délégation nationale : demandez-lui d'ouvrir le vôtre avec cette adresse.",
    ),
    "several": (
        409,
        "Plusieurs comptes portent cette adresse",
        "L'adresse {email} correspond à plusieurs comptes de la console. Connectez-vous "
        "par le lien envoyé par courriel : il vous laisse choisir le compte.",
    ),
    "unreachable": (
        503,
        "Le service d'identification ne répond pas",
        "{provider} n'a pas pu être joint. Réessayez dans quelques minutes, ou "
        "connectez-vous par le lien envoyé par courriel.",
    ),
    "expired": (
        400,
        "Connexion expirée",
        "La réponse de {provider} est arrivée trop tard : elle n'est plus valable. "
        "Recommencez la connexion.",
    ),
    "flow_expired": (
        400,
        "Connexion expirée",
        "La connexion a duré plus de 10 minutes. Recommencez-la.",
    ),
}
DEFAULT_REFUSAL = (
    400,
    "Connexion refusée",
    "La réponse de {provider} n'a pas pu être vérifiée : elle ne correspond pas à la "
    "connexion commencée dans ce navigateur. Rien n'a été enregistré. Recommencez la "
    "connexion depuis la page d'accueil.",
)


def refused(request: Request, reason: str, email: str = "") -> HTMLResponse:
    status, title, text = REFUSALS.get(reason, DEFAULT_REFUSAL)
    provider = settings_of(request).oidc_name
    response = page(
        request,
        "pages/sso_refused.html",
        status=status,
        title=title,
        text=text.format(provider=provider, email=f"« {email} »" if email else ""),
    )
    response.delete_cookie(oidc.FLOW_COOKIE, path="/connexion/oidc")
    return response


def _provider(request: Request) -> oidc.Provider:
    settings = settings_of(request)
    if not settings.oidc_enabled:
        raise oidc.SsoRefused("disabled")
    return oidc.provider_for(request.app.state, settings)


def callback_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + oidc.CALLBACK


@router.get("/connexion/oidc")
def start(request: Request, suite: Annotated[str, Query(max_length=500)] = "/") -> Response:
    if not settings_of(request).oidc_enabled:
        return redirect("/connexion")
    flow = oidc.new_flow(safe_next(suite), auth_now(request))
    try:
        target = _provider(request).authorization_url(callback_url(request), flow)
    except oidc.SsoRefused as exc:
        return refused(request, exc.reason)
    response = redirect(target)
    response.set_cookie(
        oidc.FLOW_COOKIE,
        flow.cookie(),
        max_age=oidc.FLOW_LIFETIME,
        httponly=True,
        samesite="lax",  # the provider's redirect back is a top-level GET: the cookie comes
        secure=request.url.scheme == "https",
        path="/connexion/oidc",
    )
    return response


@router.get("/connexion/oidc/retour", response_class=HTMLResponse)
async def back(
    request: Request, code: Param = "", state: Param = "", error: Param = ""
) -> Response:
    if not settings_of(request).oidc_enabled:
        return redirect("/connexion")
    instant = auth_now(request)
    flow = oidc.Flow.from_cookie(request.cookies.get(oidc.FLOW_COOKIE, ""))
    try:
        flow = oidc.check_flow(flow, state, instant)
        if error or not code:
            raise oidc.SsoRefused("provider_error", error or "no code")
        provider = _provider(request)
        who = await run_in_threadpool(
            provider.exchange, code, callback_url(request), flow, int(instant.timestamp())
        )
    except oidc.SsoRefused as exc:
        oidc.log.warning("single sign-on refused: %s", exc)
        return await run_in_threadpool(refused, request, exc.reason)

    def accounts() -> list[User]:
        with read(engine_of(request).db) as conn:
            return auth.accounts_for(conn, who.email)

    found = await run_in_threadpool(accounts)
    if len(found) != 1:
        reason = "unknown" if not found else "several"
        return await run_in_threadpool(refused, request, reason, who.email)

    def open_session() -> str:
        with transaction(engine_of(request).db) as conn:
            cookie, _ = auth.open_session(conn, found[0], instant)
            return cookie

    cookie = await write(request, open_session)
    response = redirect(flow.suite if flow.suite != "/" else "/candidatures")
    secure = request.url.scheme == "https"
    max_age = int(auth.SESSION_MAX.total_seconds())
    response.set_cookie(
        auth.COOKIE, cookie, httponly=True, samesite="lax", secure=secure, path="/", max_age=max_age
    )
    response.set_cookie(
        oidc.ID_COOKIE,
        who.id_token,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/deconnexion",
        max_age=max_age,
    )
    response.delete_cookie(oidc.FLOW_COOKIE, path="/connexion/oidc")
    response.delete_cookie(auth.CSRF_COOKIE, path="/")
    return response


ID_COOKIE = oidc.ID_COOKIE


def sso_name(request: Request) -> str | None:
    """The provider's name when single sign-on is on (the sign-in page shows its button)."""
    settings = settings_of(request)
    return settings.oidc_name if settings.oidc_enabled else None


templates.env.globals["sso_name"] = sso_name


def logout_target(request: Request) -> str | None:
    """Where logout sends the browser: the provider's end of session, if signed in there."""
    id_token = request.cookies.get(oidc.ID_COOKIE, "")
    if not id_token or not settings_of(request).oidc_enabled:
        return None
    after = str(request.base_url).rstrip("/") + "/connexion?sortie=1"
    try:
        return _provider(request).logout_url(id_token, after)
    except oidc.SsoRefused:
        return None
