"""Shared fixtures: real SQLite files and a real PostgreSQL database, a simulated clock.

SQLite: the schema and reference data are initialised once per session into a
template file, copied for each test. PostgreSQL: one database per session, emptied of
cases between tests. Without a PostgreSQL server the PostgreSQL tests skip with a
one-line reason, except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import PARIS, SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "TI_WORKFLOW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

# Two EPCI of Auvergne-Rhône-Alpes (84): CC Faucigny-Glières, CC Cluses-Arve et Montagnes.
ARA_1, ARA_2 = "200000172", "200033116"


def paris(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=PARIS)


def candidacy(**overrides: Any) -> dict[str, Any]:
    """A complete, valid candidacy file (two EPCI of one region, a binôme, one letter...)."""
    data: dict[str, Any] = {
        "territory_name": "Vallée de l'Arve",
        "contact_email": "ti@arve.example.org",
        "perimeter": {
            "members": [ARA_1, ARA_2],
            "single_member_justification": None,
            "metropole_justification": None,
        },
        "governance": {
            "members": [
                {"name": "Mme Élue", "role": "elected", "organisation": "CC Faucigny-Glières"},
                {"name": "M. Industriel", "role": "industrial", "organisation": "Décolletage SA"},
            ],
            "extended_governance_justification": None,
        },
        "letters_of_intent": [
            {"signatory": "Mme Élue", "organisation": "CC", "date": "2023-07-01"}
        ],
        "action_plan": [
            {"title": "Campus", "priority": "skills", "summary": "", "already_started": False}
        ],
    }
    data.update(overrides)
    return data


CANDIDATE = Actor("candidate", email="ti@arve.example.org")
SYSTEM = Actor("system")
COMMITTEE = Actor("national_committee")
AUDITOR = Actor("auditor")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    initialise(Settings(db_url=f"sqlite:///{path}"), SimulatedClock(paris("2023-06-01T00:00:00")))
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "ti.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def _pg_unavailable_reason() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means: no server here
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    reason = _pg_unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {reason}")
        pytest.skip(reason)
    name = f"ti_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    initialise(Settings(db_url=url), SimulatedClock(paris("2023-06-01T00:00:00")))
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_url(pg_database: str) -> str:
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE events, case_regions, cases RESTART IDENTITY CASCADE"))
    engine.dispose()
    return pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Storage contract tests run on both backends."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(paris("2023-07-03T10:00:00"))


EngineFactory = Callable[..., Engine]


@pytest.fixture
def make_engine(clock: SimulatedClock, tmp_path: Path) -> Iterator[EngineFactory]:
    opened: list[Engine] = []

    def factory(url: str, clock_: SimulatedClock | None = None) -> Engine:
        # Uploaded documents stay in the test's folder (PostgreSQL's default is the cwd).
        settings = Settings(db_url=url, files_dir=tmp_path / "files")
        engine = open_engine(settings, clock_ or clock)
        opened.append(engine)
        return engine

    yield factory
    for e in opened:
        e.db.dispose()


@pytest.fixture
def engine(make_engine: EngineFactory, sqlite_url: str) -> Engine:
    return make_engine(sqlite_url)


def drive_to_regional_review(engine: Engine, data: dict[str, Any] | None = None) -> int:
    case = engine.create_case("candidacy", "ti-2023-2027", data or candidacy(), CANDIDATE)
    engine.fire(case.id, "submit", CANDIDATE)
    engine.fire(case.id, "start_regional_review", SYSTEM)
    return case.id


def give_all_opinions(engine: Engine, case_id: int, opinion: str = "favourable") -> None:
    for region in engine.get(case_id, AUDITOR).regions:
        for body in ("regional_council", "state_services"):
            engine.fire(
                case_id,
                "give_opinion",
                Actor(body, region=region),
                {"opinion": opinion, "reasons": "motivé"},
            )
