"""Random bad input thrown at the HTTP API's write endpoints (issue 12): whatever arrives,
the answer is never a 500, and a 4xx never changes the database (cases, events, outbox,
timers, territories). Runs over SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from conftest import EngineFactory, candidacy
from test_api_fixtures import Api, serve_api
from ti_workflow.domain.text import text_problem

NASTY = "\x00\r\n\t\x1b\x7f\x85\u200b\u200d\u202e\u2066\u2028\ufeff%_\\'\"{}[]<>é\u0301"
texts = st.text(alphabet=st.sampled_from(NASTY) | st.characters(), max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
    | st.sampled_from(["yes", "1", "2023-02-30", "2023-07-01", "200000172", "%", "_"])
)
nasty_texts = st.builds(lambda a, c, b: a + c + b, texts, st.sampled_from(NASTY), texts)
flat = scalars | st.lists(scalars, max_size=4)
values = flat | st.dictionaries(texts, flat | st.dictionaries(texts, flat, max_size=3), max_size=4)
TRIGGERS = ["submit", "withdraw", "give_opinion", "label", "reject", "lapse", "x\u0000", "%"]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*path, i))


@st.composite
def mutated_candidacies(draw: st.DrawFn) -> Any:
    """A valid candidacy file with one place replaced by a random value (or a random key)."""
    data = candidacy()
    paths = list(_paths(data))
    where = draw(st.sampled_from(paths))
    if not where:
        return draw(values)
    target = data
    for part in where[:-1]:
        target = target[part]
    how = draw(st.sampled_from(["text", "value", "key"]))
    if how == "key" and isinstance(target, dict):
        target[draw(texts)] = draw(values)
    elif how == "text" and isinstance(target[where[-1]], str):
        target[where[-1]] = draw(nasty_texts)  # a text field holding a nasty character
    else:
        target[where[-1]] = draw(values)
    return data


requests = st.one_of(
    st.tuples(st.just("create"), mutated_candidacies(), st.sampled_from(["ti-2023-2027", ""])),
    st.tuples(st.just("create"), values, texts),
    st.tuples(st.just("update"), mutated_candidacies(), st.just("")),
    st.tuples(st.just("fire"), values, st.sampled_from(TRIGGERS) | texts),
    st.tuples(st.just("raw"), st.binary(max_size=200), st.sampled_from(["create", "fire"])),
)


JSON = {"Content-Type": "application/json"}


def as_json(value: Any) -> bytes:
    """ASCII JSON, as any client may send: lone surrogates travel as \\ud800 escapes."""
    return json.dumps(value).encode()


def snapshot(api: Api) -> Any:
    with api.engine.db.connect() as conn:
        rows = conn.execute(
            text("SELECT id, version, state, title, data, facts FROM cases ORDER BY id")
        ).all()
        counts = [
            conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("events", "outbox", "timers", "territories")
        ]
    return [tuple(map(str, r)) for r in rows], counts


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, make_engine: EngineFactory) -> Iterator[Api]:
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    yield from serve_api(make_engine, url)


def test_random_bad_input_is_never_a_500_and_a_refusal_changes_nothing(api: Api) -> None:
    cand = api.as_("candidate")
    first = cand.post("/v1/cases", json={"campaign": "ti-2023-2027", "data": candidacy()})
    assert first.status_code == 201
    case_id = first.json()["id"]
    seen: dict[int, int] = {}

    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(requests)
    def check(req: tuple[str, Any, Any]) -> None:
        kind, body, extra = req
        before = snapshot(api)
        if kind == "create":
            sent = {"campaign": extra, "data": copy.deepcopy(body)} if extra else body
            r = cand.post("/v1/cases", content=as_json(sent), headers=JSON)
        elif kind == "update":
            r = cand.put(f"/v1/cases/{case_id}/data", content=as_json(body), headers=JSON)
        elif kind == "fire":
            trigger = quote(extra, safe="", errors="surrogatepass")
            url = f"/v1/cases/{case_id}/triggers/{trigger}"
            r = cand.post(url, content=as_json(body), headers=JSON)
        else:
            url = "/v1/cases" if extra == "create" else f"/v1/cases/{case_id}/triggers/submit"
            r = cand.post(url, content=body, headers=JSON)
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert r.status_code < 500, (kind, json.dumps(body, default=repr)[:300], r.text)
        if r.status_code < 300:  # accepted: what is stored holds no forbidden character
            case = r.json().get("case", r.json())
            assert "\\u0000" not in r.text and text_problem(case["title"]) is None, r.text
        if 400 <= r.status_code < 500:
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["kind"] == r.json()["type"].rsplit(":", 1)[1].replace("-", "_")
            assert snapshot(api) == before, (kind, r.status_code, r.text)

    check()
    assert sum(v for k, v in seen.items() if 400 <= k < 500) > 50, seen
