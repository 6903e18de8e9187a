"""Refusals over HTTP: problem+json with a stable type, field paths, rules in French and English."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from conftest import EngineFactory, candidacy
from test_api_fixtures import Api, serve_api
from ti_workflow.http import accounts


@pytest.fixture
def api(make_engine: EngineFactory, db_url: str) -> Iterator[Api]:
    """The API served over SQLite, then over PostgreSQL."""
    yield from serve_api(make_engine, db_url)


@pytest.fixture
def api_sqlite(make_engine: EngineFactory, sqlite_url: str) -> Iterator[Api]:
    """The API over SQLite only, for checks that do not depend on the database."""
    yield from serve_api(make_engine, sqlite_url)


PROBLEM = "application/problem+json"


def create(api: Api, **data: object) -> int:
    r = api.as_("candidate").post(
        "/v1/cases", json={"campaign": "ti-2023-2027", "data": candidacy(**data)}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def count_cases(api: Api) -> int:
    return int(api.as_("auditor").get("/v1/cases").json()["total"])


def test_tokens_missing_unknown_expired_revoked_are_401_and_recorded(api: Api) -> None:
    anonymous = api.as_("nobody")
    r = anonymous.get("/v1/cases")
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["type"] == "urn:ti-workflow:problem:unauthenticated"
    bad = anonymous.get("/v1/cases", headers={"Authorization": "Bearer tiw_forged"})
    assert bad.status_code == 401 and "unknown token" in bad.json()["detail"]
    now = datetime.now(UTC)
    expired, _ = accounts.create_token(
        api.engine.db, "committee", now - timedelta(days=2), now - timedelta(days=1)
    )
    r = anonymous.get("/v1/cases", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    secret, token = accounts.create_token(api.engine.db, "committee", now, now + timedelta(days=30))
    assert anonymous.get("/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    accounts.revoke_token(api.engine.db, token.id, now)
    r = anonymous.get("/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    logged = [(x["status"], x["problem"]) for x in api.refusals()]
    assert logged == [(401, "unauthenticated")] * 4


def test_malformed_json_unknown_fields_wrong_types_change_nothing(api_sqlite: Api) -> None:
    api = api_sqlite
    cand = api.as_("candidate")
    r = cand.post(
        "/v1/cases",
        content=b'{"campaign": "ti-2023-2027",',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "urn:ti-workflow:problem:malformed-request"
    assert "not valid JSON" in r.json()["detail"]

    data = candidacy(colour="blue")
    data["perimeter"]["members"] = [123456789]
    r = cand.post("/v1/cases", json={"campaign": "ti-2023-2027", "data": data, "x": 1})
    assert r.status_code == 422
    body = r.json()
    assert body["type"] == "urn:ti-workflow:problem:invalid-data"
    where = {e["location"]: e["message"] for e in body["errors"]}
    assert set(where) == {"x", "data.colour", "data.perimeter.members[0]"}
    assert "unknown field" in where["data.colour"]
    assert "string" in where["data.perimeter.members[0]"]

    r = cand.post("/v1/cases", json={"campaign": "ti-2030", "data": candidacy()})
    assert r.status_code == 422
    assert r.json()["errors"][0]["location"] == "campaign"
    assert "ti-2023-2027" in r.json()["errors"][0]["message"]
    r = cand.post("/v1/cases", content=b"campaign=x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert count_cases(api) == 0
    assert "Traceback" not in r.text


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (["12345"], "a SIREN is exactly 9 digits"),
        (["200000172", "200033117"], "not a valid SIREN (wrong check digit)"),
    ],
)
def test_invalid_siren_names_the_field(api_sqlite: Api, members: list[str], message: str) -> None:
    """FAQ 2.1: the perimeter is a list of EPCI, each known by its SIREN."""
    api = api_sqlite
    data = candidacy()
    data["perimeter"]["members"] = members
    r = api.as_("candidate").post("/v1/cases", json={"campaign": "ti-2023-2027", "data": data})
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["location"] == f"data.perimeter.members[{len(members) - 1}]"
    assert message in error["message"]
    assert count_cases(api) == 0


def test_body_over_the_limit_is_413(api_sqlite: Api) -> None:
    api = api_sqlite
    data = candidacy()
    data["action_plan"][0]["summary"] = "x" * 300_000
    r = api.as_("candidate").post("/v1/cases", json={"campaign": "ti-2023-2027", "data": data})
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    assert "262144 bytes" in r.json()["detail"]

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b" " * 10_000

    r = api.as_("candidate").post(
        "/v1/cases", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert count_cases(api) == 0


def test_guard_refusal_lists_every_rule_in_french_and_english(api: Api) -> None:
    """FAQ 2.2 (one EPCI needs a justification) and 4.1 (a binôme élu-industriel)."""
    data = candidacy()
    data["perimeter"]["members"] = ["200000172"]
    data["governance"]["members"] = data["governance"]["members"][:1]
    cid = create(api, **{k: data[k] for k in ("perimeter", "governance")})
    r = api.as_("candidate").post(f"/v1/cases/{cid}/triggers/submit")
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["type"] == "urn:ti-workflow:problem:guard-refused"
    assert len(body["rules"]) >= 2
    assert {r["faq"] for r in body["rules"]} >= {"2.2", "4.1"}
    assert all(r["message_fr"] and r["message_en"] for r in body["rules"])
    assert api.as_("candidate").get(f"/v1/cases/{cid}").json()["state"] == "draft"


def test_wrong_state_unknown_trigger_bad_payload(api: Api) -> None:
    cid = create(api)
    committee = api.as_("committee")
    r = committee.post(f"/v1/cases/{cid}/triggers/label")
    assert r.status_code == 409 and r.json()["type"] == "urn:ti-workflow:problem:not-allowed"
    assert "national_review" in r.json()["detail"]
    r = committee.post(f"/v1/cases/{cid}/triggers/labelise")
    assert r.status_code == 422 and r.json()["type"] == "urn:ti-workflow:problem:unknown-trigger"
    assert "label" in r.json()["errors"][0]["message"]
    api.as_("candidate").post(f"/v1/cases/{cid}/triggers/submit")
    r = committee.post(f"/v1/cases/{cid}/triggers/return_for_completion", json={"colour": 1})
    assert r.status_code == 422
    assert {e["location"] for e in r.json()["errors"]} == {"colour", "reason"}
    r = committee.post(f"/v1/cases/{cid}/triggers/return_for_completion", json=[1])
    assert r.status_code == 422


def test_unexpected_error_is_a_500_problem_without_internals(api_sqlite: Api) -> None:
    api = api_sqlite

    def broken(conn: object, change: object) -> None:
        raise RuntimeError("secret internals: password=hunter2")

    api.engine.hooks.insert(0, broken)
    r = api.as_("candidate").post(
        "/v1/cases", json={"campaign": "ti-2023-2027", "data": candidacy()}
    )
    api.engine.hooks.remove(broken)
    assert r.status_code == 500 and r.headers["content-type"] == PROBLEM
    assert "hunter2" not in r.text and "Traceback" not in r.text
    assert r.json()["type"] == "urn:ti-workflow:problem:internal-error"
    assert count_cases(api) == 0


def test_problem_bodies_are_json_with_stable_members(api_sqlite: Api) -> None:
    api = api_sqlite
    r = api.as_("council_84").get("/v1/cases/999")
    body = json.loads(r.text)
    assert r.status_code == 404
    assert set(body) >= {"type", "title", "title_fr", "status", "detail", "instance", "kind"}
    assert body["instance"] == "/v1/cases/999"
    assert api.refusals()[-1]["case_id"] == 999
