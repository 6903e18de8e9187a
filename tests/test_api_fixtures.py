"""A real HTTP server for the API tests: uvicorn on 127.0.0.1 and a free port, in a thread.

The served engine has the tests' simulated clock (the 2023 window is open on 3 July
2023); token expiry is checked against the real clock, as ``serve`` does.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from sqlalchemy import text

from conftest import EngineFactory
from ti_workflow.engine import Engine
from ti_workflow.http import accounts
from ti_workflow.http.app import create_app

# One token per role (and a second candidate and regions 84 / 11 for scope tests).
USERS: dict[str, dict[str, Any]] = {
    "candidate": {"role": "candidate", "email": "ti@arve.example.org"},
    "other_candidate": {"role": "candidate", "email": "ti@ailleurs.example.org"},
    "council_84": {"role": "regional_council", "region": "84"},
    "state_84": {"role": "state_services", "region": "84"},
    "council_11": {"role": "regional_council", "region": "11"},
    "state_11": {"role": "state_services", "region": "11"},
    "committee": {"role": "national_committee"},
    "auditor": {"role": "auditor"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadServer:
    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="error",
            lifespan="off",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Api:
    url: str
    engine: Engine
    tokens: dict[str, str] = field(default_factory=dict)
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def as_(self, who: str) -> httpx.Client:
        if who not in self.clients:
            headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}
            self.clients[who] = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        return self.clients[who]

    def close(self) -> None:
        for c in self.clients.values():
            c.close()

    def refusals(self) -> list[dict[str, Any]]:
        with self.engine.db.connect() as conn:
            rows = conn.execute(text("SELECT * FROM api_access_log ORDER BY id")).all()
        return [dict(r._mapping) for r in rows]


def make_users(engine: Engine) -> dict[str, str]:
    now = datetime.now(UTC)
    tokens = {}
    for name, spec in USERS.items():
        accounts.add_user(engine.db, name, spec["role"], now, spec.get("region"), spec.get("email"))
        tokens[name] = accounts.create_token(engine.db, name, now)[0]
    return tokens


def clear_api_tables(engine: Engine) -> None:
    with engine.db.begin() as conn:
        for table in ("api_idempotency", "api_access_log", "api_tokens", "api_users"):
            conn.execute(text(f"DELETE FROM {table}"))


def serve_api(make_engine: EngineFactory, url: str) -> Iterator[Api]:
    engine = make_engine(url)
    clear_api_tables(engine)
    tokens = make_users(engine)
    with ThreadServer(create_app(engine)) as server:
        client = Api(server.url, engine, tokens)
        yield client
        client.close()
