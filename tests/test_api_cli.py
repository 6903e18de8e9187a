"""``ti-workflow users/tokens/serve`` as an operator runs them: real processes, real clock."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from conftest import candidacy
from test_api_fixtures import free_port
from ti_workflow.cli.app import app
from ti_workflow.settings import Settings
from ti_workflow.storage.database import alembic_config

CLI = [sys.executable, "-m", "ti_workflow.cli"]
API_TABLES = {"api_users", "api_tokens", "api_idempotency", "api_access_log"}


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run(env: dict[str, str], *args: str) -> Ran:
    """The CLI in-process (typer's runner: same parsing, exit codes and output, no start-up)."""
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def ok(env: dict[str, str], *args: str) -> Any:
    result = run(env, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def env(tmp_path: Path, sqlite_url: str) -> dict[str, str]:
    return make_env(tmp_path, sqlite_url)


def make_env(tmp_path: Path, url: str) -> dict[str, str]:
    """A database, and workflows with a campaign open today (``serve`` uses the real clock)."""
    workflows = tmp_path / "workflows"
    shutil.copytree(Settings().workflows_dir, workflows)
    today = date.today()
    (workflows / "campaigns" / "open-now.yaml").write_text(
        "campaign: open-now\nname: Test campaign open today\ntimezone: Europe/Paris\n"
        f"window: {{opens_on: {today - timedelta(days=1)}, "
        f"closes_on: {today + timedelta(days=30)}}}\n"
    )
    return {**os.environ, "TI_WORKFLOW_DB": url, "TI_WORKFLOW_WORKFLOWS_DIR": str(workflows)}


def test_init_creates_the_api_tables(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        heads = {r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
    engine.dispose()
    # the migrations' own head (a new area's migration moves it), not a copy of it
    expected = set(ScriptDirectory.from_config(alembic_config(create_engine(db_url))).get_heads())
    assert tables >= API_TABLES and heads == expected and len(expected) == 1


def test_users_and_tokens_commands(env: dict[str, str]) -> None:
    user = ok(env, "users", "add", "ara-cr", "--role", "regional_council", "--region", "84")
    assert user["actor"] == "regional_council:84"
    refused = run(env, "users", "add", "robot", "--role", "system")
    assert refused.returncode == 2 and "never acts over HTTP" in refused.stderr
    refused = run(env, "users", "add", "cand", "--role", "candidate")
    assert refused.returncode == 2 and "--email" in refused.stderr
    refused = run(env, "users", "add", "ara-cr", "--role", "auditor")
    assert refused.returncode == 2 and "already exists" in refused.stderr
    assert [u["name"] for u in ok(env, "users", "list")] == ["ara-cr"]

    token = ok(env, "tokens", "create", "ara-cr", "--expires-in", "P30D")
    assert token["token"].startswith("tiw_") and token["status"] == "active"
    listed = ok(env, "tokens", "list")
    assert listed[0]["prefix"] == token["token"][:10]
    assert token["token"] not in json.dumps(listed)  # the secret is shown once only
    assert run(env, "tokens", "create", "ara-cr", "--expires-in", "30 days").returncode == 2
    assert run(env, "tokens", "create", "nobody").returncode == 1
    revoked = ok(env, "tokens", "revoke", str(token["id"]))
    assert revoked["status"] == "revoked"
    assert run(env, "tokens", "revoke", "99").returncode == 1


def start_serve(env: dict[str, str], *options: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/v1/ready").status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.terminate()
            server.wait(timeout=20)
            raise AssertionError("serve did not start")
        time.sleep(0.2)


def test_serve_a_candidacy_with_the_real_clock(env: dict[str, str]) -> None:
    ok(env, "users", "add", "arve", "--role", "candidate", "--email", "ti@arve.example.org")
    ok(env, "users", "add", "dge", "--role", "national_committee")
    cand = ok(env, "tokens", "create", "arve")["token"]
    dge = ok(env, "tokens", "create", "dge")["token"]
    assert run(env, "serve", "--workers", "0").returncode == 2  # at least one process
    server, base = start_serve(env)
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {cand}"}) as c:
            r = c.post("/v1/cases", json={"campaign": "open-now", "data": candidacy()})
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
            r = c.post(f"/v1/cases/{cid}/triggers/submit", headers={"If-Match": '"1"'})
            assert r.status_code == 200 and r.json()["case"]["state"] == "submitted"
            # FAQ 1.2: the 2023 window closed on 22 September 2023: no new draft either.
            late = c.post("/v1/cases", json={"campaign": "ti-2023-2027", "data": candidacy()})
            assert late.status_code == 422
            assert [(r["code"], r["faq"]) for r in late.json()["rules"]] == [
                ("window_closed", "1.2")
            ]
            assert [case["id"] for case in c.get("/v1/cases").json()["items"]] == [cid]
        r = httpx.post(
            f"{base}/v1/cases/{cid}/triggers/start_regional_review",
            headers={"Authorization": f"Bearer {dge}"},
        )
        assert r.json()["case"]["state"] == "regional_review"
        forged = httpx.get(f"{base}/v1/cases", headers={"Authorization": "Bearer tiw_x"})
        assert forged.status_code == 401
        spec = httpx.get(f"{base}/v1/openapi.json").json()
        assert "/v1/cases/{case_id}/triggers/{trigger}" in spec["paths"]
    finally:
        server.terminate()
        server.wait(timeout=20)
    refused = ok(env, "users", "refusals", "--limit", "5")
    assert [(r["status"], r["problem"]) for r in refused[:2]] == [
        (401, "unauthenticated"),
        (422, "guard-refused"),
    ]
    assert refused[1]["actor"] == "candidate:ti@arve.example.org"


def test_serve_two_workers(tmp_path: Path, db_url: str) -> None:
    """Several processes on one database (PostgreSQL, or a SQLite file they take turns to
    write through a lock file): no lost update, no 5xx, no write refused as busy."""
    env = make_env(tmp_path, db_url)
    from ti_workflow.http.accounts import add_user, create_token
    from ti_workflow.storage.database import make_engine

    db = make_engine(db_url)
    with db.begin() as conn:
        for table in ("api_idempotency", "api_access_log", "api_tokens", "api_users"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    now = datetime.now(UTC)
    add_user(db, "arve", "candidate", now, email="ti@arve.example.org")
    token = create_token(db, "arve", now)[0]
    db.dispose()
    server, base = start_serve(env, "--workers", "2")
    try:
        auth = {"Authorization": f"Bearer {token}"}
        r = httpx.post(
            f"{base}/v1/cases", json={"campaign": "open-now", "data": candidacy()}, headers=auth
        )
        cid = r.json()["id"]

        def edit(i: int) -> int:
            data = candidacy(territory_name=f"Nom {i}")
            return httpx.put(f"{base}/v1/cases/{cid}/data", json=data, headers=auth).status_code

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(edit, range(8)))
        assert set(statuses) <= {200, 409}, statuses
        case = httpx.get(f"{base}/v1/cases/{cid}", headers=auth).json()
        assert case["version"] == 1 + statuses.count(200)
    finally:
        server.terminate()
        server.wait(timeout=20)
