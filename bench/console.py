"""console: server time per page of the web console, in process, on SQLite.

Seeds a database (simulated clock, the 2023 window open): one case with 30 events (the
candidate saves its draft 24 times, submits; the committee opens the regional review; the
two bodies of its region give their opinions and one replaces its own), then 2,000 more
candidacies. Each page is requested through Starlette's TestClient (the ASGI app called
in this process: no network, no browser) by a signed-in session; the time is the whole
request as the server handles it (session lookup, engine reads, template).

Targets (issue 14): the case page with 30 events p95 < 50 ms; the committee's list of
2,000 cases (50 a page) p95 < 150 ms. Other pages are shown for information.
Exit status 1 when a target is missed.

    .venv/bin/python bench/console.py [--cases 2000] [--rounds 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import PARIS, SimulatedClock
from ti_workflow.console import auth
from ti_workflow.domain.actors import Actor
from ti_workflow.http import accounts
from ti_workflow.http.app import create_app
from ti_workflow.settings import Settings
from ti_workflow.storage.database import transaction

CANDIDATE = Actor("candidate", email="bench@territoires.example.org")
COMMITTEE = Actor("national_committee")
CAMPAIGN = "ti-2023-2027"
PAIR = ["200000172", "200033116"]  # two EPCI of region 84


def candidacy(name: str, members: list[str]) -> dict[str, Any]:
    return {
        "territory_name": name,
        "contact_email": CANDIDATE.email,
        "perimeter": {"members": members},
        "governance": {
            "members": [
                {"name": "Mme Élue", "role": "elected", "organisation": "CC"},
                {"name": "M. Industriel", "role": "industrial", "organisation": "SA"},
            ]
        },
        # FAQ 4.5: letters from the binôme's two members; FAQ 3.1: several described actions
        "letters_of_intent": [
            {"signatory": "Mme Élue", "organisation": "CC"},
            {"signatory": "M. Industriel", "organisation": "SA"},
        ],
        "action_plan": [
            {"title": "Campus", "priority": "skills", "summary": "Former"},
            {"title": "Friches", "priority": "land", "summary": "Requalifier"},
        ],
    }


def seed(engine: Any, cases: int) -> int:
    """The 30-event case, then ``cases`` drafts; returns the 30-event case's id."""
    data = candidacy("Vallée de l'Arve", PAIR)
    case = engine.create_case("candidacy", CAMPAIGN, data, CANDIDATE)
    for i in range(23):
        data["action_plan"][0]["summary"] = f"version {i}"
        engine.update_data(case.id, data, CANDIDATE)
    engine.fire(case.id, "submit", CANDIDATE)
    engine.fire(case.id, "start_regional_review", COMMITTEE)
    council = Actor("regional_council", region="84")
    engine.fire(case.id, "give_opinion", council, {"opinion": "favourable", "reasons": "a"})
    engine.fire(case.id, "give_opinion", council, {"opinion": "favourable", "reasons": "b"})
    state = Actor("state_services", region="84")
    engine.fire(case.id, "give_opinion", state, {"opinion": "favourable", "reasons": "c"})
    assert engine.get(case.id, COMMITTEE).last_seq == 30, engine.get(case.id, COMMITTEE).last_seq
    for i in range(cases):
        engine.create_case("candidacy", CAMPAIGN, candidacy(f"Territoire {i:04d}", PAIR), CANDIDATE)
    return int(case.id)


def timed(client: Any, path: str, rounds: int, between: Any = None) -> list[float]:
    """Server time of ``rounds`` GETs of ``path`` in ms; ``between()`` (untimed) before each."""
    client.get(path)  # warm: templates compiled, caches filled
    times = []
    for _ in range(rounds):
        if between is not None:
            between()
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        clock = SimulatedClock(datetime(2023, 7, 3, 10, tzinfo=PARIS))
        initialise(Settings(db_url=url), clock)
        engine = open_engine(Settings(db_url=url), clock)
        started = time.perf_counter()
        case_id = seed(engine, args.cases)
        print(
            f"seeded 1 case of 30 events and {args.cases} drafts in "
            f"{time.perf_counter() - started:.1f} s"
        )
        user = accounts.add_user(engine.db, "comite", "national_committee", datetime.now(UTC))
        with transaction(engine.db) as conn:
            cookie, _ = auth.open_session(conn, user, datetime.now(UTC))
        app = create_app(engine, settings=Settings(db_url=url))
        pages = {
            "case page, 30 events": (f"/candidatures/{case_id}", 50.0),
            f"committee list, {args.cases + 1} cases, page 1": ("/candidatures", 150.0),
            f"committee list, {args.cases + 1} cases, page 20, by name": (
                "/candidatures?tri=title&page=20",
                150.0,
            ),
            "committee list, text filter": ("/candidatures?q=territoire%2001", 150.0),
            "timeline, 30 events (information)": (f"/candidatures/{case_id}/historique", None),
            "workflow diagram (information)": (f"/candidatures/{case_id}/parcours", None),
        }
        missed = []
        with warnings.catch_warnings():  # Starlette's note about its httpx-based client
            warnings.simplefilter("ignore", DeprecationWarning)
            from fastapi.testclient import TestClient
        with TestClient(app) as client:
            client.cookies.set(auth.COOKIE, cookie)
            print(f"{'page':<58} {'p50 ms':>8} {'p95 ms':>8} {'target':>8}")
            for label, (path, target) in pages.items():
                times = timed(client, path, args.rounds)
                high = p95(times)
                mark = f"< {target:.0f}" if target else "-"
                print(f"{label:<58} {statistics.median(times):8.1f} {high:8.1f} {mark:>8}")
                if target is not None and high >= target:
                    missed.append(f"{label}: p95 {high:.1f} ms >= {target:.0f} ms")
        engine.db.dispose()
    for line in missed:
        print("MISSED", line)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
