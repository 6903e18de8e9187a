"""audit: how fast ``audit verify`` and ``audit snapshot`` go over a large log.

Generates N candidacy histories in the engine's storage format: one real case is
driven through :class:`ti_workflow.engine.Engine` (create, submit, start review, two
opinions, automatic completion, label: 7 events), and its rows are cloned for every
other case id with the hash chain recomputed, written with SQLAlchemy Core into the
``cases``/``events`` tables of an initialised SQLite database. Then, each in a fresh
process (so that peak memory is the measured operation's own):

- ``verify``: the full check (chain, replay with guards and roles, case row comparison);
  target >= 150,000 events/s; peak RSS measured at N/4 and N cases: bounded memory
  means the two peaks are close (the log is streamed, never loaded at once).
- ``snapshot``: the state of every case at an instant; target: 100,000 cases in < 5 s.

    .venv/bin/python bench/audit.py [--events 1000000] [--db-dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import PARIS, SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.domain.reference import Referential
from ti_workflow.engine import Engine
from ti_workflow.settings import Settings

START = datetime(2023, 6, 23, 9, tzinfo=PARIS)  # the window opens (FAQ 1.2)
CLOSES = datetime(2023, 9, 22, 22, tzinfo=PARIS)  # shortly before it closes
AFTER_CLOSE = datetime(2023, 9, 23, 0, 0, 5, tzinfo=PARIS)  # the closing timer's run
OPINIONS_FROM = datetime(2023, 9, 25, 9, tzinfo=PARIS)
DEADLINE = datetime(2023, 10, 13, 23, 59, tzinfo=PARIS)  # regional_review_deadline
DECISIONS_FROM = datetime(2023, 10, 16, 9, tzinfo=PARIS)
DECISIONS_TO = datetime(2023, 11, 30, 18, tzinfo=PARIS)
SNAPSHOT_AT = datetime(2023, 10, 20, tzinfo=UTC)
PRIORITIES = ("ecological_transition", "innovation", "skills", "land")
PEOPLE = ("Camille", "Dominique", "Claude", "Alix", "Sacha", "Maxime", "Lou", "Noé", "Inès")
NAMES = ("Martin", "Bernard", "Dubois", "Lefèvre", "Garcia", "Roux", "Fournier", "Girard")
ACTIONS = ("Campus", "Friche", "Hydrogène", "Décarbonation", "Foncier", "Apprentissage")
REGIONAL = ("regional_council", "state_services")


def between(rng: random.Random, a: datetime, b: datetime) -> datetime:
    """A random instant in [a, b], to the second."""
    return a + timedelta(seconds=int(rng.random() * max((b - a).total_seconds(), 0)))


def form(rng: random.Random, n: int, members: list[str], ref: Referential) -> dict[str, Any]:
    """A complete candidacy file: its own perimeter, governance, letters and actions."""
    first = ref.groupement(members[0])
    assert first is not None
    people = [f"{rng.choice(PEOPLE)} {rng.choice(NAMES)}" for _ in range(6)]
    governance = [
        {"name": people[0], "role": "elected", "organisation": first.name},
        {"name": people[1], "role": "industrial", "organisation": f"Industrie {n} SAS"},
    ]
    extra = rng.choice((0, 0, 0, 1, 2))
    for i in range(extra):
        role = rng.choice(("elected", "industrial"))
        governance.append({"name": people[2 + i], "role": role, "organisation": "Partenaire"})
    metropole = any(g.is_metropole for s in members if (g := ref.groupement(s)))
    return {
        "territory_name": f"{first.name} et environs (dossier {n})",
        "contact_email": f"contact{n}@territoire.example.org",
        "perimeter": {
            "members": members,
            "single_member_justification": "taille critique" if len(members) == 1 else None,
            "metropole_justification": "cœur industriel" if metropole else None,
        },
        "governance": {
            "members": governance,
            "extended_governance_justification": f"{len(governance)} membres" if extra else None,
        },
        "letters_of_intent": [
            {
                "signatory": people[4 - i],
                "organisation": f"Organisation {i}",
                "date": f"2023-{rng.randint(6, 9):02d}-{rng.randint(1, 28):02d}",
            }
            for i in range(rng.randint(1, 3))
        ],
        "action_plan": [
            {
                "title": f"{rng.choice(ACTIONS)} {i + 1}",
                "priority": rng.choice(PRIORITIES),
                "summary": f"Action {i + 1} du dossier {n}" * rng.randint(0, 3),
                "already_started": rng.random() < 0.5,
            }
            for i in range(rng.randint(1, 5))
        ],
    }


def story(engine: Engine, clock: SimulatedClock, n: int, pool: dict[str, list[str]]) -> int:
    """Drive the ``n``-th candidacy through the engine, its fate drawn from ``Random(n)``.

    Fates: lapsed draft, withdrawn, returned for completion then resubmitted, regional review
    with every opinion (automatic completion) or one missing at the deadline, labelled,
    rejected or still undecided; 1-5 EPCI of one region, 15% inter-regional. Returns the
    number of events written.
    """
    rng = random.Random(n)
    ref = engine.catalog.reference
    home = rng.choice(sorted(pool))
    members = rng.sample(pool[home], min(rng.choice((1, 2, 2, 3, 3, 4, 5)), len(pool[home])))
    if rng.random() < 0.15:
        members.append(rng.choice(pool[rng.choice([r for r in sorted(pool) if r != home])]))
    owner = Actor("candidate", email=f"ti{n}@territoire.example.org")
    data = form(rng, n, members, ref)
    clock.set(between(rng, START, START + timedelta(days=70)))
    case_id = engine.create_case("candidacy", "ti-2023-2027", data, owner).id
    count = 1

    def at(instant: datetime) -> None:
        clock.set(max(instant, clock.now()))

    def fire(trigger: str, actor: Actor, payload: dict[str, Any] | None = None) -> None:
        nonlocal count
        count += len(engine.fire(case_id, trigger, actor, payload).events)

    def edit() -> None:
        nonlocal count, data
        at(between(rng, clock.now(), min(clock.now() + timedelta(days=5), CLOSES)))
        data = {
            **data,
            "action_plan": [*data["action_plan"], {"title": "Ajout", "priority": "land"}],
        }
        engine.update_data(case_id, data, owner)
        count += 1

    fate = rng.random()
    if fate < 0.06:  # never submitted: lapsed by the closing timer
        at(AFTER_CLOSE + timedelta(seconds=n % 600))
        fire("lapse", Actor("system"))
        return count
    if rng.random() < 0.25:
        edit()
    at(between(rng, clock.now(), min(clock.now() + timedelta(days=30), CLOSES)))
    fire("submit", owner)
    if fate < 0.12:
        at(between(rng, clock.now(), CLOSES))
        fire("withdraw", owner)
        return count
    if fate < 0.22 and clock.now() < CLOSES - timedelta(days=10):
        at(clock.now() + timedelta(hours=rng.randint(1, 72)))
        fire("return_for_completion", Actor("national_committee"), {"reason": f"pièces {n}"})
        edit()
        at(between(rng, clock.now(), min(clock.now() + timedelta(days=3), CLOSES)))
        fire("submit", owner)
    at(AFTER_CLOSE + timedelta(seconds=600 + n % 3_600))
    fire("start_regional_review", Actor("system"))
    regions = sorted(ref.regions_of(members))
    due = [(region, body) for region in regions for body in REGIONAL]
    rng.shuffle(due)
    if rng.random() < 0.12:
        due.pop()  # one opinion never comes: the deadline timer closes the review
    instants = sorted(between(rng, OPINIONS_FROM, DEADLINE - timedelta(hours=1)) for _ in due)
    for (region, body), instant in zip(due, instants, strict=True):
        at(instant)
        value = "favourable" if rng.random() < 0.8 else "unfavourable"
        reasons = f"avis {value} : {rng.choice(ACTIONS).lower()} (dossier {n})"
        fire("give_opinion", Actor(body, region=region), {"opinion": value, "reasons": reasons})
    if len(due) < 2 * len(regions):
        at(DEADLINE)
        fire("close_regional_review", Actor("system"))
    if fate < 0.25:
        at(between(rng, clock.now(), DECISIONS_FROM))
        fire("withdraw", owner)
    elif fate < 0.9:
        at(between(rng, DECISIONS_FROM, DECISIONS_TO))
        if rng.random() < 0.7:
            fire("label", Actor("national_committee"))
        else:
            fire("reject", Actor("national_committee"), {"reason": f"motif {n}"})
    return count


def _fast_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Generation only: a lost bench database is regenerated, so no fsync per step."""
    dbapi_connection.execute("PRAGMA synchronous=OFF")


def generate(path: Path, events: int, cases: int = 0) -> tuple[int, int]:
    """Candidacies driven through the real :class:`Engine` (its own rows, hashes, JSON) until
    the log holds ``events`` events and ``cases`` cases. Returns (cases, events)."""
    from sqlalchemy import event

    url = f"sqlite:///{path}"
    clock = SimulatedClock(START)
    initialise(Settings(db_url=url), clock)
    engine = open_engine(Settings(db_url=url), clock)
    for name in ("hooks", "context_providers", "region_providers"):
        getattr(engine, name).clear()  # the workflow core only (fire_throughput's "engine")
    engine.db.dispose()
    event.listen(engine.db, "connect", _fast_pragmas)
    pool: dict[str, list[str]] = {}
    for g in engine.catalog.reference.groupements.values():
        if len(g.regions) == 1:
            pool.setdefault(g.regions[0], []).append(g.siren)
    pool = {r: sorted(s) for r, s in pool.items() if len(s) >= 5}
    n = total = 0
    while total < events or n < cases:
        total += story(engine, clock, n, pool)
        n += 1
    engine.db.dispose()
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return n, total


def prefix(src: Path, dst: Path, events: int = 0, cases: int = 0) -> tuple[int, int]:
    """The first cases of ``src`` holding ``events`` events (or the first ``cases`` cases):
    the same histories as generating that many directly."""
    shutil.copy(src, dst)
    con = sqlite3.connect(dst)
    try:
        if events:
            (last,) = con.execute(
                "SELECT case_id FROM events ORDER BY case_id, seq LIMIT 1 OFFSET ?", (events - 1,)
            ).fetchone()
        else:
            (last,) = con.execute(
                "SELECT id FROM cases ORDER BY id LIMIT 1 OFFSET ?", (cases - 1,)
            ).fetchone()
        for table in ("events", "case_regions"):
            con.execute(f"DELETE FROM {table} WHERE case_id > ?", (last,))
        con.execute("DELETE FROM cases WHERE id > ?", (last,))
        con.commit()
        con.execute("VACUUM")
        n = con.execute("SELECT count(*) FROM cases").fetchone()[0]
        total = con.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        con.close()
    return n, total


def measure(path: Path, what: str) -> dict[str, float]:
    """Runs in its own process: one operation, its time and the process's peak RSS."""
    from ti_workflow.audit.snapshot import snapshot, states_at
    from ti_workflow.audit.verify import verify

    engine = open_engine(
        Settings(db_url=f"sqlite:///{path}"), SimulatedClock(datetime(2023, 12, 1, tzinfo=UTC))
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu = time.perf_counter(), _cpu()
    if what in ("verify", "quick"):
        report = verify(engine, quick=what == "quick")
        assert report.ok, report.findings[:3]
        n = report.events
    elif what == "states":
        n = len(states_at(engine, SNAPSHOT_AT, "national_review"))
    else:
        n = sum(
            1 for c in snapshot(engine, SNAPSHOT_AT) if c.case and c.case.state == "national_review"
        )
    elapsed = time.perf_counter() - start
    cpu = _cpu() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "n": n,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "rss_before_mb": before / 1024,
        "rss_peak_mb": peak / 1024,
    }


def _cpu() -> float:
    """CPU seconds of this process and of the worker processes it waited for."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child(path: Path, what: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", what, "--db", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def counts(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as con:
        cases = con.execute("SELECT count(*) FROM cases").fetchone()[0]
        events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    return int(cases), int(events)


def databases(work: Path, events: int, snapshot_cases: int) -> dict[str, Path]:
    """The full log (generated), a quarter of it and the snapshot log (its first cases)."""
    full = work / f"full-{events}.db"
    if not full.exists():
        t = time.perf_counter()
        cases, n = generate(full, events, snapshot_cases)
        print(
            f"generated {cases:,} cases, {n:,} events through the engine in "
            f"{time.perf_counter() - t:.0f} s -> {full}",
            flush=True,
        )
    paths = {"quarter": work / f"quarter-{events}.db", "full": full}
    paths["snapshot"] = work / f"snapshot-{snapshot_cases}-of-{events}.db"
    if not paths["quarter"].exists():
        prefix(full, paths["quarter"], events=events // 4)
    if not paths["snapshot"].exists():
        prefix(full, paths["snapshot"], cases=snapshot_cases)
    return paths


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--snapshot-cases", type=int, default=100_000)
    p.add_argument("--db-dir", type=Path, default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--only", choices=("verify", "quick", "snapshot", "states"), action="append")
    p.add_argument("--measure", choices=("verify", "quick", "snapshot", "states"))
    p.add_argument("--db", type=Path)
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(args.db, args.measure)))
        return
    work = args.db_dir or Path(tempfile.mkdtemp(prefix="ti-audit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"ti-workflow audit bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, nproc "
        f"{os.cpu_count()}, {platform.machine()}, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    results: dict[str, dict[str, float]] = {}
    try:
        for name, path in databases(work, args.events, args.snapshot_cases).items():
            cases, events = counts(path)
            kinds = ["snapshot", "states"] if name == "snapshot" else ["verify", "quick"]
            for what in kinds:
                if args.only and what not in args.only:
                    continue
                r = child(path, what)
                results[f"{name}-{what}"] = r
                load = os.getloadavg()[0]
                if what in ("verify", "quick"):
                    rate = r["n"] / r["seconds"]
                    print(
                        f"verify {'--quick ' if what == 'quick' else 'full    '}{name:8} "
                        f"{int(r['n']):>9,} events in {r['seconds']:6.1f} s = "
                        f"{rate:>9,.0f} events/s ({rate / 150_000:.2f} x target 150,000), "
                        f"{r['n'] / r['cpu_seconds']:,.0f} events per CPU-second "
                        f"({r['cpu_seconds']:.1f} CPU-s); peak RSS {r['rss_peak_mb']:.0f} MB "
                        f"(at start {r['rss_before_mb']:.0f}); load {load:.1f}",
                        flush=True,
                    )
                else:
                    label = "snapshot (replay)" if what == "snapshot" else "snapshot --states-only"
                    print(
                        f"{label} over {cases:,} cases ({events:,} events) "
                        f"in {r['seconds']:.2f} s, {r['cpu_seconds']:.2f} CPU-s (target < 5 s: "
                        f"{'met' if r['seconds'] < 5 else 'missed'}); peak RSS "
                        f"{r['rss_peak_mb']:.0f} MB; load {load:.1f}",
                        flush=True,
                    )
        if "quarter-verify" in results and "full-verify" in results:
            q, f = results["quarter-verify"], results["full-verify"]
            print(
                f"memory: peak RSS {q['rss_peak_mb']:.0f} MB at {int(q['n']):,} events, "
                f"{f['rss_peak_mb']:.0f} MB at {int(f['n']):,} events "
                f"(+{f['rss_peak_mb'] - q['rss_peak_mb']:.0f} MB for 4x the log)"
            )
    finally:
        if not args.keep and args.db_dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
