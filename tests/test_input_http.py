"""Bad text over HTTP, on SQLite and PostgreSQL: a 422 problem naming the field, never a 500,
nothing stored. Issue 12 items 4, 5, 7 and 13; the rules are in docs/input-rules.md."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import EngineFactory, candidacy
from test_api_fixtures import Api, serve_api
from ti_workflow.errors import (
    Conflict,
    Forbidden,
    GuardRefused,
    InvalidData,
    InvalidDefinition,
    NotFound,
    TransitionNotAllowed,
    UnknownTrigger,
)
from ti_workflow.http.errors import BodyTooLarge, IdempotencyMismatch, Unauthenticated
from ti_workflow.http.problems import KINDS, TYPE_BASE, from_error, problem
from ti_workflow.storage.database import DatabaseUnavailable

PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(make_engine: EngineFactory, db_url: str) -> Iterator[Api]:
    yield from serve_api(make_engine, db_url)


@pytest.fixture
def api_sqlite(make_engine: EngineFactory, sqlite_url: str) -> Iterator[Api]:
    yield from serve_api(make_engine, sqlite_url)


def total(api: Api) -> int:
    return int(api.as_("auditor").get("/v1/cases").json()["total"])


def locations(r: Any) -> list[str]:
    assert r.headers["content-type"] == PROBLEM, r.text
    return [e["location"] for e in r.json()["errors"]]


def create(api: Api, **data: Any) -> dict[str, Any]:
    r = api.as_("candidate").post(
        "/v1/cases", json={"campaign": "ti-2023-2027", "data": candidacy(**data)}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_nul_anywhere_is_a_422_naming_the_field_and_changes_nothing(api: Api) -> None:
    """Was a 500 on PostgreSQL (POST /cases, GET /cases?q=a%00b), stored on SQLite."""
    cand = api.as_("candidate")
    case = create(api)
    before = (total(api), cand.get(f"/v1/cases/{case['id']}").json()["version"])
    governance = candidacy()["governance"]
    governance["members"][0]["name"] = "Mme \u0000Élue"
    for method, url, body, where in (
        ("POST", "/v1/cases", {"campaign": "ti-2023-2027",
                               "data": candidacy(territory_name="a\u0000b")},
         "data.territory_name"),
        ("POST", "/v1/cases", {"campaign": "ti-\u00002023", "data": candidacy()}, "campaign"),
        ("PUT", f"/v1/cases/{case['id']}/data", candidacy(governance=governance),
         "governance.members[0].name"),
        ("POST", f"/v1/cases/{case['id']}/triggers/submit", {"reason": "x\u0000"}, "reason"),
        ("POST", f"/v1/cases/{case['id']}/triggers/submit", {"a\u0000": 1}, "(root) (a key)"),
        ("GET", "/v1/cases?q=a%00b", None, "query.q"),
        ("GET", "/v1/cases?state=%00", None, "query.state"),
        ("GET", "/v1/campaigns/ti%002023", None, "path.campaign_id"),
    ):  # fmt: skip
        r = cand.request(method, url, json=body)
        assert r.status_code == 422, (url, r.status_code, r.text)
        assert where in locations(r), (url, r.text)
        assert "NUL" in r.text
    # Lone surrogates (valid JSON escapes, not text UTF-8 can hold), in a value and in a key.
    for body, where in (
        ({"campaign": "ti-2023-2027", "data": candidacy(territory_name="a\ud800")},
         "data.territory_name"),
        ({"campaign": "ti-2023-2027", "data": candidacy(**{"x\udfff": 1})}, "data"),
    ):  # fmt: skip
        r = cand.post("/v1/cases", content=json.dumps(body).encode(), headers=JSON)
        assert r.status_code == 422, r.text
        assert where in locations(r), r.text
    assert (total(api), cand.get(f"/v1/cases/{case['id']}").json()["version"]) == before
    logged = [x["status"] for x in api.refusals()]
    assert logged.count(422) == 10  # each refusal is in the access log, even on PostgreSQL


def test_control_and_direction_characters_are_refused_in_names(api_sqlite: Api) -> None:
    api = api_sqlite
    cand = api.as_("candidate")
    before = total(api)
    for name, what in (
        ("Vallée\r\nBcc: x@example.org", "U+000D (line break)"),
        ("Vallée\nde l'Arve", "U+000A (line break)"),
        ("Vallée \u202egpj.exe", "U+202E (right-to-left override)"),
        ("Vall\u200bée", "U+200B (zero width space)"),
        ("Vallée\u2066x\u2069", "U+2066 (left-to-right isolate)"),
        ("Vallée\x1b[31m", "U+001B (control character)"),
    ):
        r = cand.post("/v1/cases", json={"campaign": "ti-2023-2027",
                                         "data": candidacy(territory_name=name)})  # fmt: skip
        assert r.status_code == 422, (name, r.text)
        [error] = r.json()["errors"]
        assert error["location"] == "data.territory_name"
        assert what in error["message"], error
    assert total(api) == before
    # Long text fields keep their line breaks; every text is stored in NFC.
    case = create(
        api,
        territory_name="Valle\u0301e de l'Arve",
        action_plan=[{"title": "Campus", "priority": "skills", "summary": "Ligne 1\nLigne 2",
                      "already_started": False}],
    )  # fmt: skip
    data = cand.get(f"/v1/cases/{case['id']}").json()["data"]
    assert data["territory_name"] == "Vallée de l'Arve" == case["title"]
    assert data["action_plan"][0]["summary"] == "Ligne 1\nLigne 2"
    # A reason (a long text payload) may hold line breaks, not a direction override.
    r = cand.post(f"/v1/cases/{case['id']}/triggers/submit", json={"reason": "a\u202eb"})
    assert r.status_code == 422 and locations(r) == ["reason"]


def test_types_are_strict(api_sqlite: Api) -> None:
    api = api_sqlite
    cand = api.as_("candidate")
    for data, where in (
        (candidacy(action_plan=[{"title": "C", "already_started": "yes"}]),
         "data.action_plan[0].already_started"),
        (candidacy(action_plan=[{"title": "C", "already_started": 1}]),
         "data.action_plan[0].already_started"),
        (candidacy(letters_of_intent=[{"signatory": "A", "date": 1688169600}]),
         "data.letters_of_intent[0].date"),
        (candidacy(territory_name=12), "data.territory_name"),
    ):  # fmt: skip
        r = cand.post("/v1/cases", json={"campaign": "ti-2023-2027", "data": data})
        assert r.status_code == 422, r.text
        assert where in locations(r)
    assert total(api) == 0


def test_search_finds_percent_and_underscore_literally(api: Api) -> None:
    for name in ("Industrie 100 % locale", "Vallée_du_Rhône", "Vallée de l'Arve", "Plain"):
        create(api, territory_name=name)
    committee = api.as_("committee")

    def found(q: str) -> list[str]:
        r = committee.get("/v1/cases", params={"q": q})
        assert r.status_code == 200, r.text
        return sorted(c["title"] for c in r.json()["items"])

    assert found("%") == ["Industrie 100 % locale"]
    assert found("_") == ["Vallée_du_Rhône"]
    assert found("e_d") == ["Vallée_du_Rhône"]
    assert found("\\") == []
    assert found("vallée") == ["Vallée de l'Arve", "Vallée_du_Rhône"]


def test_every_problem_kind_equals_its_type_suffix(api_sqlite: Api) -> None:
    for slug in KINDS:
        body = problem(slug, "detail", "/x")
        assert body["type"] == TYPE_BASE + slug and body["kind"] == slug.replace("-", "_")
    errors = [
        (Conflict(1, 1, 2), True, "precondition-failed"),
        (Conflict(1, 1, 2), False, "conflict"),
        (NotFound("case", 1), False, "not-found"),
        (Forbidden("a", "b", "c"), False, "forbidden"),
        (TransitionNotAllowed(1, "t", "s", ["x"]), False, "not-allowed"),
        (GuardRefused(1, "t", []), False, "guard-refused"),
        (UnknownTrigger("w", "t", ["x"]), False, "unknown-trigger"),
        (InvalidData("x", []), False, "invalid-data"),
        (InvalidDefinition(["x"]), False, "invalid-data"),
        (Unauthenticated("x"), False, "unauthenticated"),
        (IdempotencyMismatch("k"), False, "idempotency-key-reused"),
        (BodyTooLarge(1), False, "body-too-large"),
        (DatabaseUnavailable("x"), False, "unavailable"),
    ]
    for exc, if_match, slug in errors:
        body = from_error(exc, "/x", if_match)
        assert (body["type"], body["kind"]) == (TYPE_BASE + slug, slug.replace("-", "_")), exc
    # And over HTTP: the 412 of a stale If-Match.
    api = api_sqlite
    case = create(api)
    r = api.as_("candidate").put(
        f"/v1/cases/{case['id']}/data", json=candidacy(), headers={"If-Match": '"999"'}
    )
    assert r.status_code == 412
    assert r.json()["type"].endswith(":precondition-failed")
    assert r.json()["kind"] == "precondition_failed"
