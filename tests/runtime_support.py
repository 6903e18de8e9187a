"""Helpers of the crash tests (issue 12): real CLI processes, killed for real, over a
database seeded with many draft candidacies, and an outbox filled with plain messages.

Also used by ``bench/torture.py`` (which puts ``tests/`` on its path)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text

from conftest import PG_ADMIN_URL, candidacy, paris
from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.mail.outbox import outbox
from ti_workflow.settings import Settings
from ti_workflow.storage import repository as repo
from ti_workflow.storage.database import batch

CLI = [sys.executable, "-m", "ti_workflow.cli"]
CAMPAIGN = "ti-2023-2027"


def seed_drafts(url: str, n: int) -> None:
    """An initialised database with ``n`` draft candidacies of the 2023 campaign (one
    transaction per hundred: seeding is not what is measured)."""
    clock = SimulatedClock(paris("2023-07-03T10:00"))
    initialise(Settings(db_url=url), clock)
    engine = open_engine(Settings(db_url=url), clock)
    for start in range(0, n, 100):
        with batch(engine.db):
            for i in range(start, min(n, start + 100)):
                who = Actor("candidate", email=f"d{i}@example.org")
                data = candidacy(territory_name=f"Territoire {i}", contact_email=who.email)
                engine.create_case("candidacy", CAMPAIGN, data, who)
    engine.db.dispose()


class Seeded:
    """A seeded database made once, copied for each use (a file, or a PostgreSQL
    database created from it as a template)."""

    def __init__(self, backend: str, n: int, workdir: Path) -> None:
        self.backend, self.n, self.workdir = backend, n, workdir
        self.copies: list[str] = []
        if backend == "sqlite":
            self.template = workdir / f"seed-{n}.db"
            seed_drafts(f"sqlite:///{self.template}", n)
        else:
            self.name = f"ti_seed_{uuid.uuid4().hex[:10]}"
            self._admin(f'CREATE DATABASE "{self.name}"')
            seed_drafts(self._url(self.name), n)

    def _url(self, name: str) -> str:
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def _admin(self, sql: str) -> None:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(sql))
        admin.dispose()

    def copy(self) -> str:
        if self.backend == "sqlite":
            path = self.workdir / f"run-{len(self.copies)}-{uuid.uuid4().hex[:6]}.db"
            shutil.copy(self.template, path)
            url = f"sqlite:///{path}"
        else:
            name = f"ti_run_{uuid.uuid4().hex[:10]}"
            self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"')
            url = self._url(name)
        self.copies.append(url)
        return url

    def drop(self) -> None:
        if self.backend == "postgresql":
            for url in self.copies:
                self._admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def env_for(url: str, **more: str) -> dict[str, str]:
    return {**os.environ, "TI_WORKFLOW_DB": url, **more}


def start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """A CLI process exactly as cron starts it (no shell, no wrapper: its pid is its own)."""
    return subprocess.Popen(
        [*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def count_events(url: str, trigger: str) -> int:
    db = create_engine(url)
    try:
        with db.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(repo.events)
                    .where(repo.events.c.trigger == trigger)
                ).scalar_one()
            )
    finally:
        db.dispose()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def kill9(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)


def fill_outbox(url: str, n: int) -> list[str]:
    """``n`` plain messages due now; returns their Message-IDs."""
    now = datetime.now(UTC)
    ids = [f"<{uuid.uuid4().hex}.torture@example.org>" for _ in range(n)]
    rows: list[dict[str, Any]] = [
        {
            "message_id": mid,
            "dedupe_key": f"torture:{mid}",
            "notification": "torture",
            "recipients": [{"role": "candidate", "address": f"r{i}@example.org"}],
            "remaining": [f"r{i}@example.org"],
            "rejected": {},
            "subject": f"Message n° {i}",
            "body_text": "Bonjour.\n",
            "body_html": "<p>Bonjour.</p>\n",
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for i, mid in enumerate(ids)
    ]
    db = create_engine(url)
    with db.begin() as conn:
        conn.execute(insert(outbox), rows)
    db.dispose()
    return ids


def outbox_statuses(url: str) -> dict[str, int]:
    db = create_engine(url)
    with db.connect() as conn:
        got = dict(
            conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
        )
    db.dispose()
    return {str(k): int(v) for k, v in got.items()}


@contextmanager
def seeded(backend: str, n: int, workdir: Path) -> Iterator[Seeded]:
    made = Seeded(backend, n, workdir)
    try:
        yield made
    finally:
        made.drop()
