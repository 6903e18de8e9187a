"""territories_queries: what effective dating and the amendment guards cost.

On a fresh database (SQLite file, and PostgreSQL when ``--pg URL`` is given):

- import of the shipped November 2023 list (183 territories, 630 memberships), then a
  second, idempotent import;
- ``territory of SIREN --at D`` (one indexed membership query) for random groupements and
  dates, and ``territory show ID --at D`` (a snapshot: name, members, communes, governance);
- a fire of ``give_opinion`` on a perimeter amendment (its context provider reads the
  territory on the effective date) against the same fire on a candidacy: the ratio is
  what the territory facts add to a fire.

    .venv/bin/python bench/territories_queries.py [--queries N] [--fires N] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from territories_helpers import (
    ARDECHE,
    TARENTAISE,
    TERRITORY_OWNER,
    amendment,
    import_shipped,
)
from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import PARIS, SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.settings import Settings
from ti_workflow.storage.database import read
from ti_workflow.territories import store

CANDIDACY = {
    "territory_name": "Banc d'essai",
    "contact_email": TERRITORY_OWNER.email,
    "perimeter": {"members": [TARENTAISE, "200011773"]},
    "governance": {
        "members": [{"name": "A", "role": "elected"}, {"name": "B", "role": "industrial"}]
    },
    # FAQ 4.5: letters from the binôme's two members; FAQ 3.1: several described actions
    "letters_of_intent": [{"signatory": "A"}, {"signatory": "B"}],
    "action_plan": [
        {"title": "x", "priority": "skills", "summary": "s"},
        {"title": "y", "priority": "land", "summary": "t"},
    ],
}
COUNCIL = Actor("regional_council", region="84")
OPINION = {"opinion": "favourable", "reasons": "cohérent"}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:9.0f}/s  ({1000 * seconds / n:.3f} ms each)"


def bench(url: str, queries: int, fires: int) -> dict[str, float]:
    clock = SimulatedClock(datetime(2023, 7, 3, 10, tzinfo=PARIS))
    initialise(Settings(db_url=url), clock)
    engine = open_engine(Settings(db_url=url), clock)
    out: dict[str, float] = {}
    out["import"] = timed(lambda: import_shipped(engine))
    out["import_again"] = timed(lambda: import_shipped(engine))
    rng = random.Random(7)
    with read(engine.db) as conn:
        sirens = list(conn.execute(text("select siren from territory_members")).scalars())
        tids = list(conn.execute(text("select id from territories")).scalars())
        days = [date(2023, 1, 1) + timedelta(days=rng.randrange(1500)) for _ in range(queries)]
        picks = [rng.choice(sirens) for _ in range(queries)]
        out["of"] = timed(
            lambda: [store.memberships(conn, [s], on=d) for s, d in zip(picks, days, strict=True)]
        )
        territories = [store.load_territory(conn, rng.choice(tids)) for _ in range(queries)]
        out["show"] = timed(
            lambda: [store.snapshot(conn, t, d) for t, d in zip(territories, days, strict=True)]
        )
    out["fire_amendment"] = fire_opinions(engine, clock, fires, amendment_case=True)
    out["fire_candidacy"] = fire_opinions(engine, clock, fires, amendment_case=False)
    engine.db.dispose()
    return out


def fire_opinions(engine: Engine, clock: SimulatedClock, n: int, *, amendment_case: bool) -> float:
    """Median seconds of one ``give_opinion`` fire (regional council of 84), n cases."""
    ids = []
    clock.set(datetime(2023, 7, 3, 10, tzinfo=PARIS))
    for _ in range(n):
        if amendment_case:
            clock.set(datetime(2024, 3, 1, 10, tzinfo=PARIS))
            data = amendment(ARDECHE, add=[TARENTAISE], effective_on="2024-06-01")
            case = engine.create_case("perimeter_amendment", "ti-2023-2027", data, TERRITORY_OWNER)
        else:
            case = engine.create_case("candidacy", "ti-2023-2027", CANDIDACY, TERRITORY_OWNER)
        engine.fire(case.id, "submit", TERRITORY_OWNER)
        engine.fire(case.id, "start_regional_review", Actor("system"))
        ids.append(case.id)
    times = [timed(lambda c=c: engine.fire(c, "give_opinion", COUNCIL, OPINION)) for c in ids]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--fires", type=int, default=200)
    parser.add_argument("--pg", help="PostgreSQL admin URL (a scratch database is created)")
    args = parser.parse_args()
    print(
        f"{date.today()}  nproc={os.cpu_count()}  {platform.machine()}  "
        f"Python {platform.python_version()}"
    )
    backends = []
    with tempfile.TemporaryDirectory() as tmp:
        backends.append(("sqlite", f"sqlite:///{tmp}/bench.db", None))
        if args.pg:
            name = f"ti_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            backends.append(("postgresql", args.pg.rsplit("/", 1)[0] + f"/{name}", (admin, name)))
        for label, url, cleanup in backends:
            r = bench(url, args.queries, args.fires)
            print(f"\n[{label}]")
            print(f"  import 2023 list (183 territories, 630 members) {r['import']:.3f} s")
            print(f"  second import (changes nothing)               {r['import_again']:.3f} s")
            print(f"  territory of SIREN --at D   {rate(args.queries, r['of'])}")
            print(f"  territory show ID --at D    {rate(args.queries, r['show'])}")
            a, c = r["fire_amendment"], r["fire_candidacy"]
            print(f"  give_opinion fire, median: amendment {1000 * a:.2f} ms, candidacy "
                  f"{1000 * c:.2f} ms, ratio {a / c:.2f}")  # fmt: skip
            if cleanup:
                admin, name = cleanup
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
