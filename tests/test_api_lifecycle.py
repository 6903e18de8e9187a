"""A whole candidacy over real HTTP, one token per role (FAQ 1.2, 1.3), SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import httpx
import pytest

from conftest import EngineFactory, candidacy
from test_api_fixtures import Api, serve_api


@pytest.fixture
def api(make_engine: EngineFactory, db_url: str) -> Iterator[Api]:
    """The API served over SQLite, then over PostgreSQL."""
    yield from serve_api(make_engine, db_url)


OPINION = {"opinion": "favourable", "reasons": "Cohérent avec le SRDEII."}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_whole_candidacy_one_token_per_role(api: Api) -> None:
    cand, committee = api.as_("candidate"), api.as_("committee")
    # FAQ 1.2: the territory files its candidacy in the window (3 July 2023 here).
    created = cand.post("/v1/cases", json={"campaign": "ti-2023-2027", "data": candidacy()})
    case = ok(created, 201)
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"] == f"/v1/cases/{case['id']}"
    assert (case["state"], case["regions"], case["owner"]) == (
        "draft",
        ["84"],
        "ti@arve.example.org",
    )
    cid = case["id"]

    # The draft is edited: the new name is what everyone then sees.
    edited = cand.put(
        f"/v1/cases/{cid}/data",
        json=candidacy(territory_name="Vallée de l'Arve et Faucigny"),
        headers={"If-Match": '"1"'},
    )
    assert ok(edited)["title"] == "Vallée de l'Arve et Faucigny"
    assert edited.headers["ETag"] == '"2"'

    options = {o["trigger"]: o for o in ok(cand.get(f"/v1/cases/{cid}/triggers"))}
    assert options["submit"]["allowed"] and options["withdraw"]["allowed"]
    assert set(options) == {"submit", "withdraw", "lapse"}
    assert not options["lapse"]["allowed"] and "system" in options["lapse"]["refusal"]

    fired = ok(cand.post(f"/v1/cases/{cid}/triggers/submit", headers={"If-Match": '"2"'}))
    assert fired["case"]["state"] == "submitted"
    assert [e["trigger"] for e in fired["events"]] == ["submit"]

    # FAQ 1.3: the regional opinion, then the national selection.
    ok(committee.post(f"/v1/cases/{cid}/triggers/start_regional_review"))
    ok(api.as_("council_84").post(f"/v1/cases/{cid}/triggers/give_opinion", json=OPINION))
    last = ok(api.as_("state_84").post(f"/v1/cases/{cid}/triggers/give_opinion", json=OPINION))
    assert [e["trigger"] for e in last["events"]] == ["give_opinion", "complete_regional_review"]
    assert last["case"]["state"] == "national_review"
    labelled = ok(committee.post(f"/v1/cases/{cid}/triggers/label", json={}))
    assert labelled["case"]["state"] == "labelled"

    # Everyone in scope reads the same case and history; the auditor reads everything.
    for who in ("candidate", "council_84", "state_84", "committee", "auditor"):
        read = api.as_(who).get(f"/v1/cases/{cid}")
        assert ok(read)["state"] == "labelled"
        assert read.headers["ETag"] == f'"{labelled["case"]["version"]}"'
    history = ok(api.as_("auditor").get(f"/v1/cases/{cid}/history"))["events"]
    assert [e["trigger"] for e in history] == [
        "create",
        "update",
        "submit",
        "start_regional_review",
        "give_opinion",
        "give_opinion",
        "complete_regional_review",
        "label",
    ]
    assert [e["actor"] for e in history][-4:-2] == ["regional_council:84", "state_services:84"]
    assert all(e["prev_hash"] == p["hash"] for p, e in pairwise(history))

    # Outside one's scope the case does not exist.
    for who in ("other_candidate", "council_11", "state_11"):
        assert api.as_(who).get(f"/v1/cases/{cid}").status_code == 404
        assert ok(api.as_(who).get("/v1/cases"))["total"] == 0
    listed = ok(api.as_("council_84").get("/v1/cases", params={"state": "labelled", "q": "arve"}))
    assert [c["id"] for c in listed["items"]] == [cid] and listed["total"] == 1


def test_list_filters_and_pagination(api: Api) -> None:
    cand = api.as_("candidate")
    for i in range(5):
        ok(
            cand.post(
                "/v1/cases",
                json={"campaign": "ti-2023-2027", "data": candidacy(territory_name=f"Vallée {i}")},
            ),
            201,
        )
    ok(cand.post("/v1/cases/2/triggers/submit"))
    page = ok(api.as_("committee").get("/v1/cases", params={"limit": 2, "offset": 2}))
    assert (page["total"], [c["id"] for c in page["items"]]) == (5, [3, 4])
    assert ok(cand.get("/v1/cases", params={"state": "submitted"}))["total"] == 1
    assert ok(cand.get("/v1/cases", params={"q": "VALLÉE 4"}))["total"] == 1
    assert ok(cand.get("/v1/cases", params={"region": "11"}))["total"] == 0
    assert ok(cand.get("/v1/cases", params={"campaign": "ti-2023-2027"}))["total"] == 5
    bad = cand.get("/v1/cases", params={"state": "labeled", "region": "x"})
    assert bad.status_code == 422
    assert {e["location"] for e in bad.json()["errors"]} == {"query.state", "query.region"}
    assert "labelled" in bad.json()["detail"]


def test_campaign_timetable_in_paris_and_utc(api: Api) -> None:
    campaigns = ok(api.as_("candidate").get("/v1/campaigns"))
    c = next(c for c in campaigns if c["id"] == "ti-2023-2027")
    # FAQ 1.2: open from 23 June to 22 September 2023 inclusive, Paris time (UTC+2).
    assert c["opens_at"] == {
        "utc": "2023-06-22T22:00:00+00:00",
        "local": "2023-06-23T00:00:00+02:00",
    }
    assert c["closes_at"]["local"].startswith("2023-09-22T23:59:59")
    assert c["closes_at"]["utc"].startswith("2023-09-22T21:59:59")
    assert c["open_now"] is True  # the served engine's clock is 3 July 2023
    due = next(t for t in c["timetable"] if t["name"] == "regional_opinion_due_on")
    assert due["date"] == "2023-10-13" and due["day_ends"]["local"].startswith("2023-10-13T23:59")
    assert api.as_("candidate").get("/v1/campaigns/nope").status_code == 404


def test_health_ready_and_me(api: Api) -> None:
    anonymous = api.as_("nobody")
    assert ok(anonymous.get("/v1/health"))["status"] == "ok"
    assert ok(anonymous.get("/v1/ready"))["status"] == "ready"
    me = ok(api.as_("council_84").get("/v1/me"))
    assert (me["role"], me["region"], me["actor"]) == (
        "regional_council",
        "84",
        "regional_council:84",
    )
