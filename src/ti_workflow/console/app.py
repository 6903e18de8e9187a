"""Plug the console into the FastAPI application that serves ``/v1``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ti_workflow.console import case_pdf, dashboard, exports, maps, pages, signin, sso
from ti_workflow.console.web import HERE, STATIC_PREFIX, SecurityHeaders, install_error_pages
from ti_workflow.settings import Settings


def install(app: FastAPI, settings: Settings | None = None) -> None:
    """Pages, static files, security headers and French error pages (``/v1`` untouched).

    ``settings`` gives the SMTP server the login mail is sent through (default: the
    environment's, as ``ti-workflow serve`` reads it)."""
    app.state.console_settings = settings or Settings.from_env()
    app.include_router(signin.router)
    app.include_router(sso.router)
    app.include_router(pages.router)
    app.include_router(exports.router)
    app.include_router(case_pdf.router)
    app.include_router(dashboard.router)
    app.include_router(maps.router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=HERE / "static"), name="statique")
    settings = app.state.console_settings
    # A form may lead to the provider (logout at its end_session_endpoint).
    app.add_middleware(
        SecurityHeaders, form_action=settings.oidc_issuer if settings.oidc_enabled else None
    )
    install_error_pages(app)
