"""ETag / If-Match, concurrent writers and Idempotency-Key, over real HTTP on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from conftest import EngineFactory, candidacy
from test_api_fixtures import Api, serve_api


@pytest.fixture
def api(make_engine: EngineFactory, db_url: str) -> Iterator[Api]:
    """The API served over SQLite, then over PostgreSQL."""
    yield from serve_api(make_engine, db_url)


NEW = {"campaign": "ti-2023-2027", "data": candidacy()}


def events(api: Api, cid: int) -> int:
    return len(api.as_("auditor").get(f"/v1/cases/{cid}/history").json()["events"])


def test_stale_if_match_is_412_and_writes_nothing(api: Api) -> None:
    cand = api.as_("candidate")
    created = cand.post("/v1/cases", json=NEW)
    cid, etag = created.json()["id"], created.headers["ETag"]
    assert etag == '"1"'
    assert cand.get(f"/v1/cases/{cid}").headers["ETag"] == etag
    changed = cand.put(f"/v1/cases/{cid}/data", json=candidacy(territory_name="A"))
    assert changed.headers["ETag"] == '"2"'
    # The other operator still holds version 1: refused, nothing written.
    stale = cand.put(
        f"/v1/cases/{cid}/data", json=candidacy(territory_name="B"), headers={"If-Match": etag}
    )
    assert stale.status_code == 412
    assert stale.json()["type"] == "urn:ti-workflow:problem:precondition-failed"
    assert "version 2" in stale.json()["detail"]
    r = cand.post(f"/v1/cases/{cid}/triggers/submit", headers={"If-Match": 'W/"1"'})
    assert r.status_code == 412
    case = cand.get(f"/v1/cases/{cid}").json()
    assert (case["title"], case["state"], case["version"]) == ("A", "draft", 2)
    assert events(api, cid) == 2
    ok = cand.post(f"/v1/cases/{cid}/triggers/submit", headers={"If-Match": '"2"'})
    assert ok.status_code == 200 and ok.headers["ETag"] == '"3"'
    bad = cand.post(f"/v1/cases/{cid}/triggers/withdraw", headers={"If-Match": "three"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["location"] == "If-Match"


def test_concurrent_writers_without_if_match_get_200_or_409_never_lost(api: Api) -> None:
    cid = api.as_("candidate").post("/v1/cases", json=NEW).json()["id"]
    token = api.tokens["candidate"]

    def edit(i: int) -> httpx.Response:
        with httpx.Client(base_url=api.url, timeout=60) as c:
            return c.put(
                f"/v1/cases/{cid}/data",
                json=candidacy(territory_name=f"Nom {i}"),
                headers={"Authorization": f"Bearer {token}"},
            )

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(edit, range(16)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}, statuses
    for r in responses:
        if r.status_code == 409:
            assert r.json()["type"] == "urn:ti-workflow:problem:conflict"
    case = api.as_("auditor").get(f"/v1/cases/{cid}").json()
    assert case["version"] == 1 + statuses.count(200)
    assert events(api, cid) == 1 + statuses.count(200)


def test_idempotency_key_replays_and_acts_once(api: Api) -> None:
    cand = api.as_("candidate")
    key = {"Idempotency-Key": "create-arve-0001"}
    first = cand.post("/v1/cases", json=NEW, headers=key)
    again = cand.post("/v1/cases", json=NEW, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["ETag"] == first.headers["ETag"]
    assert api.as_("auditor").get("/v1/cases").json()["total"] == 1

    cid = first.json()["id"]
    fire_key = {"Idempotency-Key": "submit-1"}
    submitted = cand.post(f"/v1/cases/{cid}/triggers/submit", headers=fire_key)
    replay = cand.post(f"/v1/cases/{cid}/triggers/submit", headers=fire_key)
    assert submitted.status_code == replay.status_code == 200
    assert replay.json() == submitted.json()
    assert events(api, cid) == 2

    other = cand.post("/v1/cases", json={**NEW, "data": candidacy(territory_name="X")}, headers=key)
    assert other.status_code == 422
    assert other.json()["type"] == "urn:ti-workflow:problem:idempotency-key-reused"
    assert api.as_("auditor").get("/v1/cases").json()["total"] == 1
    # Keys belong to their user: the committee's key of the same name is another request.
    r = api.as_("committee").post(
        f"/v1/cases/{cid}/triggers/start_regional_review", headers=fire_key
    )
    assert r.status_code == 200


def test_concurrent_retries_with_one_key_act_once(api: Api) -> None:
    token = api.tokens["candidate"]

    def post(_: int) -> Any:
        with httpx.Client(base_url=api.url, timeout=60) as c:
            r = c.post(
                "/v1/cases",
                json=NEW,
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "same-key"},
            )
            return r.status_code, r.json()

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(post, range(6)))
    assert {status for status, _ in results} == {201}
    assert len({body["id"] for _, body in results}) == 1
    assert api.as_("auditor").get("/v1/cases").json()["total"] == 1
