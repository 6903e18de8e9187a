"""Schemathesis over the served OpenAPI document: no 5xx, no response outside the document.

Bounded (a few examples per operation, no shrinking database) to stay well under a
minute; run on SQLite and PostgreSQL, with a committee token (it may see and try
everything) and a case to act on.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import CANDIDATE, EngineFactory, candidacy, drive_to_regional_review
from test_api_fixtures import Api, serve_api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 10
# Uploads are raw PDF bodies: generated as bytes, like application/octet-stream.
schemathesis.serializer.alias("application/pdf", "application/octet-stream")


@pytest.fixture
def api(make_engine: EngineFactory, db_url: str) -> Iterator[Api]:
    yield from serve_api(make_engine, db_url)


@pytest.fixture
def api_sqlite(make_engine: EngineFactory, sqlite_url: str) -> Iterator[Api]:
    yield from serve_api(make_engine, sqlite_url)


def test_schema_as_committee(api: Api) -> None:
    """The committee may see and try everything: every route, on both backends."""
    fuzz(api, "committee")


def test_schema_as_candidate(api_sqlite: Api) -> None:
    """The candidate creates and edits cases: the 201 and write responses are checked too."""
    fuzz(api_sqlite, "candidate")


def fuzz(api: Api, who: str) -> None:
    api.engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    drive_to_regional_review(api.engine)
    schema = schemathesis.openapi.from_url(f"{api.url}/v1/openapi.json")
    headers = {"Authorization": f"Bearer {api.tokens[who]}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11
    failures: list[str] = []
    statuses: set[int] = set()
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=api.url, headers=headers)
            statuses.add(response.status_code)
            case.validate_response(response, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert 200 in statuses and 422 in statuses, statuses  # it reached real behaviour


def test_openapi_document_is_complete(api_sqlite: Api) -> None:
    """Every operation documents its errors as problems; every body has an example."""
    doc = httpx.get(f"{api_sqlite.url}/v1/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    open_paths = {"/v1/health", "/v1/ready"}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
            assert errors or path == "/v1/health", where
            for status, response in errors.items():
                assert list(response["content"]) == ["application/problem+json"], where
                assert response["description"], (where, status)
            if path not in open_paths:
                assert "401" in op["responses"] and op.get("security"), where
            if path == "/v1/files":  # a raw PDF: no JSON, no version to match
                assert op["requestBody"]["content"]["application/pdf"]["schema"]["format"] == (
                    "binary"
                )
                assert {"413", "415", "422"} <= set(op["responses"]), where
                continue
            if "requestBody" in op:
                content = op["requestBody"]["content"]["application/json"]
                has_example = "examples" in content or "examples" in content["schema"]
                ref = content["schema"].get("$ref", "")
                if ref:
                    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
                    has_example = has_example or "examples" in schema
                assert has_example, where
            if method in ("post", "put"):
                assert {"412", "422", "413"} <= set(op["responses"]), where
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "rules", "errors"} <= set(problem["properties"])
