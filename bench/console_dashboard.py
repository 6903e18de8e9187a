"""console_dashboard: server time of the steering dashboard, in process, on SQLite.

Seeds a database through the engine (simulated clock moving through the 2023 filing
window, FAQ 1.2): ``--cases`` candidacies on the real perimeters of the November 2023
list (so phase 1 matches); a fifth stay drafts, the others are filed on different days;
three fifths go to the regional review, with one, all or no opinions (national selection
when all are in). Then each case's history is padded with saves of its form until the
events total ``--events``: those rows are copies of the case's creation event written
straight into the events table (not hash-chained: the dashboard reads neither payloads
nor hashes, and 100,000 events through the engine would take many minutes here).
The dashboard (``/pilotage``) is then requested through Starlette's TestClient by a
signed-in national committee session (the whole request: session, reads, charts,
template) and by a regional body, each twice: with nothing changed between requests (the
case figures are reused) and with one event written before each request (untimed), so
that every request computes the figures again.

Target (issue 16): dashboard p95 < 200 ms with 2,000 cases and 100,000 events, in both
cases.
Exit status 1 when it is missed.

    .venv/bin/python bench/console_dashboard.py [--cases 2000] [--events 100000] [--rounds 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from console import p95, timed  # the sibling bench: one way to time a page
from sqlalchemy import insert, select, update

from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import PARIS, SimulatedClock
from ti_workflow.console import auth
from ti_workflow.domain.actors import Actor
from ti_workflow.http import accounts
from ti_workflow.http.app import create_app
from ti_workflow.settings import Settings
from ti_workflow.storage.database import transaction
from ti_workflow.storage.tables import CaseRow, EventRow
from ti_workflow.territories.geo import members_2023

COMMITTEE = Actor("national_committee")
CAMPAIGN = "ti-2023-2027"
TARGET_MS = 200.0


def candidacy(name: str, email: str, members: list[str]) -> dict[str, Any]:
    return {
        "territory_name": name,
        "contact_email": email,
        "perimeter": {
            "members": members,
            "single_member_justification": "Bassin industriel d'un seul tenant"
            if len(members) == 1
            else None,
            "metropole_justification": "Coopération avec les territoires voisins",
        },
        "governance": {
            "members": [
                {"name": "Mme Élue", "role": "elected", "organisation": "CC"},
                {"name": "M. Industriel", "role": "industrial", "organisation": "SA"},
            ],
            "extended_governance_justification": None,
        },
        "letters_of_intent": [{"signatory": "Mme Élue", "organisation": "CC"}],
        "action_plan": [{"title": "Campus", "priority": "skills"}],
    }


def seed(engine: Any, clock: SimulatedClock, cases: int, events: int) -> tuple[int, int]:
    """Returns (events written, cases refused at submission)."""
    perimeters = [sorted(m) for _, m in sorted(members_2023().items())]
    step = timedelta(days=85) / cases
    written = refused = 0
    ids: list[tuple[int, int, Actor]] = []
    padding: list[int] = []
    for i in range(cases):
        clock.advance(step)
        members = perimeters[i % len(perimeters)]
        owner = Actor("candidate", email=f"c{i}@territoires.example.org")
        data = candidacy(f"Territoire {i:04d}", owner.email or "", members)
        case = engine.create_case("candidacy", CAMPAIGN, data, owner)
        kind = i % 5
        padding.append(case.id)
        written += 1
        if kind:
            try:
                engine.fire(case.id, "submit", owner)
                written += 1
                ids.append((case.id, kind, owner))
            except Exception:  # a perimeter the rules refuse: stays a draft
                refused += 1
    for case_id, kind, _ in ids:
        if kind == 1:
            continue
        engine.fire(case_id, "start_regional_review", COMMITTEE)
        written += 1
        regions = engine.get(case_id, COMMITTEE).regions
        wanted = {2: 1, 3: 99, 4: 0}[kind]
        given = 0
        for region in regions:
            for body in ("regional_council", "state_services"):
                if given >= wanted:
                    break
                engine.fire(
                    case_id,
                    "give_opinion",
                    Actor(body, region=region),
                    {"opinion": "favourable", "reasons": "vu"},
                )
                given += 1
                written += 1
    left = max(events - written, 0)  # the saves that bring the total to ``events``
    share, extra = divmod(left, len(padding))
    plan = [(case_id, share + (n < extra)) for n, case_id in enumerate(padding)]
    return written + pad(engine, plan), refused


def pad(engine: Any, padding: list[tuple[int, int]]) -> int:
    """Copies of each case's creation event as saves, after its last event."""
    events = EventRow.__table__  # type: ignore[attr-defined]
    cases = CaseRow.__table__  # type: ignore[attr-defined]
    total = 0
    with engine.db.begin() as conn:
        for case_id, saves in padding:
            rows = conn.execute(
                select(events).where(events.c.case_id == case_id).order_by(events.c.seq)
            ).all()
            first, last = rows[0]._asdict(), rows[-1]
            first.pop("id")
            copies = [
                {**first, "seq": last.seq + 1 + n, "trigger": "update", "source": "draft"}
                for n in range(saves)
            ]
            if copies:
                conn.execute(insert(events), copies)
                conn.execute(  # the engine appends after the last event
                    update(cases)
                    .where(cases.c.id == case_id)
                    .values(last_seq=last.seq + saves, version=cases.c.version + saves)
                )
            total += len(copies)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        clock = SimulatedClock(datetime(2023, 6, 23, 9, tzinfo=PARIS))
        initialise(Settings(db_url=url), clock)
        engine = open_engine(Settings(db_url=url), clock)
        started = time.perf_counter()
        written, refused = seed(engine, clock, args.cases, args.events)
        print(
            f"seeded {args.cases} cases ({refused} refused at submission, left as drafts) "
            f"and {written} events in {time.perf_counter() - started:.1f} s"
        )
        now = datetime.now(UTC)
        committee = accounts.add_user(engine.db, "comite", "national_committee", now)
        region = accounts.add_user(engine.db, "cr84", "regional_council", now, "84")
        cookies = {}
        with transaction(engine.db) as conn:
            for name, user in (("committee", committee), ("region 84", region)):
                cookies[name], _ = auth.open_session(conn, user, now)
        app = create_app(engine, settings=Settings(db_url=url))
        missed = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from fastapi.testclient import TestClient
        with TestClient(app) as client:
            print(f"{'page':<46} {'p50 ms':>8} {'p95 ms':>8} {'target':>8}")
            draft = engine.get(1, COMMITTEE)
            owner = Actor("candidate", email=draft.data["contact_email"])

            def save() -> None:  # one event: the case figures must be computed again
                engine.update_data(draft.id, engine.get(draft.id, COMMITTEE).data, owner)

            runs = [
                (f"dashboard, {name}{', after an event' if change else ''}", cookie, change)
                for name, cookie in cookies.items()
                for change in (None, save)
            ]
            for label, cookie, change in runs:
                client.cookies.set(auth.COOKIE, cookie)
                times = timed(client, "/pilotage", args.rounds, change)
                high = p95(times)
                print(
                    f"{label:<46} {statistics.median(times):8.1f} {high:8.1f} "
                    f"{'< ' + str(int(TARGET_MS)):>8}"
                )
                if high >= TARGET_MS:
                    missed.append(f"{label}: p95 {high:.1f} ms >= {TARGET_MS:.0f} ms")
        engine.db.dispose()
    for line in missed:
        print("MISSED", line)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
