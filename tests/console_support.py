"""The console served for real: uvicorn in a thread, an aiosmtpd sink, accounts, sessions."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from sched_support import free_port
from test_api_fixtures import ThreadServer
from ti_workflow.clock import Clock, SystemClock
from ti_workflow.console import auth
from ti_workflow.engine import Engine
from ti_workflow.http import accounts
from ti_workflow.http.app import create_app
from ti_workflow.mail.sink import RecordingHandler, start_sink
from ti_workflow.settings import Settings
from ti_workflow.storage.database import transaction

# Faucigny-Glières (Auvergne-Rhône-Alpes, 84) and Haut-Jura Saint-Claude (Bourgogne-
# Franche-Comté, 27): a two-EPCI interregional perimeter (FAQ 2.5), four opinions.
EPCI_84, EPCI_27 = "200000172", "200026573"
CANDIDATE_EMAIL = "ti@arve.example.org"
ACCOUNTS: dict[str, dict[str, Any]] = {
    "council_84": {"role": "regional_council", "region": "84", "email": "cr84@region.example.fr"},
    "state_84": {"role": "state_services", "region": "84", "email": "sgar84@pref.example.gouv.fr"},
    "council_27": {"role": "regional_council", "region": "27", "email": "cr27@region.example.fr"},
    "state_27": {"role": "state_services", "region": "27", "email": "sgar27@pref.example.gouv.fr"},
    "council_11": {"role": "regional_council", "region": "11", "email": "cr11@region.example.fr"},
    "committee": {"role": "national_committee", "email": "comite@anct.example.gouv.fr"},
    "auditor": {"role": "auditor", "email": "audit@igf.example.gouv.fr"},
}


@dataclass
class Console:
    url: str
    engine: Engine
    sink: RecordingHandler
    users: dict[str, accounts.User]

    def session_cookie(self, name: str) -> str:
        """Sign a user in without the mail round trip (the journeys test the link)."""
        with transaction(self.engine.db) as conn:
            cookie, _ = auth.open_session(conn, self.users[name], datetime.now(UTC))
        return cookie

    def client(self, name: str | None = None) -> httpx.Client:
        client = httpx.Client(base_url=self.url, follow_redirects=False, timeout=10)
        if name:
            client.cookies.set(auth.COOKIE, self.session_cookie(name))
        return client

    def link_for(self, address: str, after: int = 0, timeout: float = 10) -> str:
        """The login link of the latest message to ``address`` received by the sink."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for got in reversed(self.sink.received[after:]):
                if address in got.rcpt_tos and "connexion" in got.subject:
                    found = re.search(r"(http://\S+/connexion/lien\?jeton=\S+)", got.part("plain"))
                    assert found, got.part("plain")
                    return found.group(1)
            time.sleep(0.05)
        raise AssertionError(f"no login mail for {address} in the sink")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


@contextmanager
def serve_console(
    engine: Engine,
    auth_clock: Clock | None = None,
    port: int | None = None,
    **settings_extra: Any,
) -> Iterator[Console]:
    handler = RecordingHandler()
    sink_port = free_port()
    controller = start_sink("127.0.0.1", sink_port, handler)
    try:
        now = datetime.now(UTC)
        users = {
            name: accounts.add_user(
                engine.db, name, spec["role"], now, spec.get("region"), spec["email"]
            )
            for name, spec in ACCOUNTS.items()
        }
        settings = Settings(
            db_url=str(engine.db.url), smtp_host="127.0.0.1", smtp_port=sink_port, **settings_extra
        )
        app = create_app(engine, settings=settings, auth_clock=auth_clock or SystemClock())
        with ThreadServer(app, port) as server:
            yield Console(server.url, engine, handler, users)
    finally:
        controller.stop()
