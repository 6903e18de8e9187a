"""The audit and notification views over real HTTP: state at an instant, verification (a
tampered event is located), what was sent about a case; scope as for the case itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from conftest import EngineFactory, candidacy
from test_api_fixtures import Api, serve_api

OPINION = {"opinion": "favourable", "reasons": "Cohérent avec le SRDEII."}


@pytest.fixture
def api(make_engine: EngineFactory, sqlite_url: str) -> Iterator[Api]:
    yield from serve_api(make_engine, sqlite_url)


def test_state_at_verify_and_notifications(api: Api) -> None:
    cand, committee, auditor = api.as_("candidate"), api.as_("committee"), api.as_("auditor")
    cid = cand.post("/v1/cases", json={"campaign": "ti-2023-2027", "data": candidacy()}).json()[
        "id"
    ]
    before_submit = api.engine.clock.now().isoformat()
    api.engine.clock.advance(timedelta(hours=1))
    assert cand.post(f"/v1/cases/{cid}/triggers/submit").status_code == 200
    committee.post(f"/v1/cases/{cid}/triggers/start_regional_review")

    then = auditor.get(f"/v1/cases/{cid}/state-at", params={"at": before_submit})
    assert then.status_code == 200, then.text
    assert (then.json()["exists"], then.json()["state"]) == (True, "draft")
    now = cand.get(f"/v1/cases/{cid}/state-at", params={"at": "2030-01-01"}).json()
    assert now["state"] == "regional_review"
    bad = auditor.get(f"/v1/cases/{cid}/state-at", params={"at": "yesterday"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"

    mails = cand.get(f"/v1/cases/{cid}/notifications")
    assert mails.status_code == 200
    assert "submission_acknowledged" in {m["notification"] for m in mails.json()}

    assert auditor.get(f"/v1/cases/{cid}/verify").json()["ok"] is True
    assert auditor.get("/v1/verify").json()["ok"] is True
    with api.engine.db.begin() as conn:  # someone edits a recorded event in the database
        conn.execute(
            text("UPDATE events SET actor = 'forger' WHERE case_id = :c AND seq = 2"), {"c": cid}
        )
    report = auditor.get(f"/v1/cases/{cid}/verify").json()
    assert report["ok"] is False
    assert {(f["case_id"], f["seq"]) for f in report["findings"]} >= {(cid, 2)}

    assert api.as_("other_candidate").get(f"/v1/cases/{cid}/verify").status_code == 404
    assert api.as_("council_11").get(f"/v1/cases/{cid}/notifications").status_code == 404
    assert cand.get("/v1/verify").status_code == 403
