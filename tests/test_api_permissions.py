"""Who may fire what, over HTTP: every role x trigger x region (84 concerned, 11 not).

The expected table is written out by hand from the programme (FAQ 1.3: regional
council and State services give the regional opinion, the national committee
decides) rather than computed from the engine, so a wrong engine fails it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from conftest import (
    CANDIDATE,
    COMMITTEE,
    SYSTEM,
    EngineFactory,
    candidacy,
    drive_to_regional_review,
    give_all_opinions,
)
from test_api_fixtures import USERS, Api, serve_api
from ti_workflow.engine import Engine


@pytest.fixture
def api(make_engine: EngineFactory, db_url: str) -> Iterator[Api]:
    """The API served over SQLite, then over PostgreSQL."""
    yield from serve_api(make_engine, db_url)


OK, FORBIDDEN, HIDDEN = 200, 403, 404
OUT_OF_SCOPE = {"other_candidate": HIDDEN, "council_11": HIDDEN, "state_11": HIDDEN}


def expected(allowed: set[str]) -> dict[str, int]:
    table = {who: FORBIDDEN for who in USERS}
    table.update(OUT_OF_SCOPE)  # outside one's scope a case does not exist
    table["auditor"] = FORBIDDEN  # reads everything, changes nothing
    table.update({who: OK for who in allowed})
    return table


def draft(engine: Engine) -> int:
    return engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE).id


def submitted(engine: Engine) -> int:
    cid = draft(engine)
    engine.fire(cid, "submit", CANDIDATE)
    return cid


def regional_review(engine: Engine) -> int:
    return drive_to_regional_review(engine)


def national_review(engine: Engine) -> int:
    cid = drive_to_regional_review(engine)
    give_all_opinions(engine, cid)
    return cid


SPARE_84 = ["200023299", "200011773"]  # CC Coeur de Tarentaise, CA Annemasse (84)


def labelled(engine: Engine) -> int:
    """A labelled case with its own groupement (one territory per groupement)."""
    done, _ = engine.list_cases(SYSTEM, state="labelled")
    used = {m for c in done for m in c.data["perimeter"]["members"]}
    spare = next(siren for siren in SPARE_84 if siren not in used)
    perimeter = {"members": [spare], "single_member_justification": "Taille critique"}
    cid = drive_to_regional_review(engine, candidacy(perimeter=perimeter))
    give_all_opinions(engine, cid)
    engine.fire(cid, "label", COMMITTEE)
    return cid


REASON = {"reason": "Motif exposé au candidat."}
OPINION = {"opinion": "favourable", "reasons": "Avis motivé."}

# trigger -> (a case in a source state, payload, who may fire it)
MATRIX: dict[str, tuple[Callable[[Engine], int], dict[str, str], set[str]]] = {
    "submit": (draft, {}, {"candidate"}),
    "withdraw": (submitted, {}, {"candidate"}),
    "return_for_completion": (submitted, REASON, {"committee"}),
    "start_regional_review": (submitted, {}, {"committee"}),
    "give_opinion": (regional_review, OPINION, {"council_84", "state_84"}),
    "close_regional_review": (regional_review, {}, {"committee"}),
    "complete_regional_review": (regional_review, {}, set()),  # automatic: system only
    "label": (national_review, {}, {"committee"}),
    "reject": (national_review, REASON, {"committee"}),
    "lapse": (draft, {}, set()),  # the scheduler's, never over HTTP
    "remind_binome": (labelled, {}, set()),  # the scheduler's binôme follow-up (FAQ 4.1)
    "escalate_binome": (labelled, {}, set()),
}


def test_every_role_trigger_and_region(api: Api) -> None:
    engine = api.engine
    assert set(MATRIX) == set(engine.catalog.current_definition("candidacy").triggers)
    seen: dict[tuple[str, str], int] = {}
    for trigger, (prepare, payload, allowed) in MATRIX.items():
        table = expected(allowed)
        cid = prepare(engine)
        before = engine.get(cid, SYSTEM)
        for who, status in table.items():
            if status == OK:
                continue
            r = api.as_(who).post(f"/v1/cases/{cid}/triggers/{trigger}", json=payload)
            seen[(who, trigger)] = r.status_code
            assert r.headers["content-type"] == "application/problem+json"
        after = engine.get(cid, SYSTEM)
        assert (after.version, after.state) == (before.version, before.state), trigger
        for who in sorted(allowed):
            fresh = prepare(engine)
            r = api.as_(who).post(f"/v1/cases/{fresh}/triggers/{trigger}", json=payload)
            seen[(who, trigger)] = r.status_code
            if r.status_code == OK:
                assert r.json()["events"][0]["trigger"] == trigger
        wrong = {
            (who, trigger): (seen[(who, trigger)], status)
            for who, status in table.items()
            if seen[(who, trigger)] != status
        }
        assert not wrong, f"{trigger}: (got, expected) {wrong}"
    refusals = [r for r in api.refusals() if r["status"] in (403, 404)]
    assert len(refusals) == sum(1 for s in seen.values() if s in (403, 404))


def test_regional_bodies_record_only_their_own_opinion(api: Api) -> None:
    """FAQ 1.3: each body gives its own opinion for its region, never the other body's."""
    cid = regional_review(api.engine)
    council = api.as_("council_84")
    r = council.post(f"/v1/cases/{cid}/triggers/give_opinion", json=OPINION)
    assert r.status_code == 200
    event = r.json()["events"][0]
    assert (event["actor"], event["role"]) == ("regional_council:84", "regional_council")
    opinions = r.json()["case"]["facts"]["opinions"]
    assert set(opinions["84"]) == {"regional_council"}
    again = council.post(
        f"/v1/cases/{cid}/triggers/give_opinion", json={**OPINION, "opinion": "unfavourable"}
    )
    assert again.status_code == 200  # the council revises its own opinion...
    opinions = again.json()["case"]["facts"]["opinions"]
    assert set(opinions["84"]) == {"regional_council"}  # ...and never stands for the State
    assert again.json()["case"]["state"] == "regional_review"
    assert api.as_("council_11").get(f"/v1/cases/{cid}/triggers").status_code == 404
    options = api.as_("state_84").get(f"/v1/cases/{cid}/triggers").json()
    assert [o["trigger"] for o in options if o["allowed"]] == ["give_opinion"]
