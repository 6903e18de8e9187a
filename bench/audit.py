"""audit: how fast ``audit verify`` and ``audit snapshot`` go over a large log.

Generates a log of N events by driving candidacies through the real
:class:`ti_workflow.engine.Engine` (its own rows, JSON texts and hash chains), each case
its own story (``tests/varied_scenario.py``): a perimeter of 1-5 EPCI drawn from the
shipped reference data (15% inter-regional), its own governance, letters and actions,
its own instants, and a fate among lapsed, withdrawn, returned for completion then
resubmitted, opinions all given (automatic completion) or one missing at the deadline,
labelled, rejected or undecided. A quarter of the log and the snapshot log are its first
cases. Then, each in a fresh process (so that peak memory is the measured operation's
own):

- ``verify``: the full check (chain, replay with guards and roles, case row comparison)
  and ``--quick``; target >= 150,000 events/s; peak RSS at N/4 and N events: bounded
  memory means the two peaks are close (the log is streamed, never loaded at once).
- ``snapshot``: every case at an instant as ``audit snapshot --data`` shows it (state,
  form data, opinions, decision); target: 100,000 cases in < 5 s.

    .venv/bin/python bench/audit.py [--events 1000000] [--snapshot-cases 100000]
        [--workers N] [--db-dir DIR] [--keep] [--only verify|quick|snapshot|states]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from varied_scenario import START, groupement_pool, story

SNAPSHOT_AT = datetime(2023, 10, 20, tzinfo=UTC)


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
    pool = groupement_pool(engine.catalog.reference)
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


def measure(path: Path, what: str, workers: int) -> dict[str, float]:
    """Runs in its own process: one operation, its time and the process's peak RSS."""
    from ti_workflow.audit.snapshot import snapshot, states_at
    from ti_workflow.audit.verify import verify

    engine = open_engine(
        Settings(db_url=f"sqlite:///{path}"), SimulatedClock(datetime(2023, 12, 1, tzinfo=UTC))
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu = time.perf_counter(), _cpu()
    if what in ("verify", "quick"):
        report = verify(engine, quick=what == "quick", workers=workers)
        assert report.ok, report.findings[:3]
        n = report.events
    elif what == "states":
        n = len(states_at(engine, SNAPSHOT_AT, "national_review"))
    else:
        n = 0  # every case as `audit snapshot --data` shows it: state, data, opinions, decision
        for c in snapshot(engine, SNAPSHOT_AT):
            n += c.as_dict(with_data=True)["state"] == "national_review"
    elapsed = time.perf_counter() - start
    cpu = _cpu() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest worker's
    return {
        "n": n,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "rss_before_mb": before / 1024,
        "rss_peak_mb": max(peak, worker) / 1024,
    }


def _cpu() -> float:
    """CPU seconds of this process and of the worker processes it waited for."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child(path: Path, what: str, workers: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", what, "--db", str(path), "--workers", str(workers)],
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
    p.add_argument(
        "--workers", type=int, default=len(os.sched_getaffinity(0)), help="verify processes"
    )
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(args.db, args.measure, args.workers)))
        return
    work = args.db_dir or Path(tempfile.mkdtemp(prefix="ti-audit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"ti-workflow audit bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, nproc "
        f"{os.cpu_count()}, {platform.machine()}, Python {platform.python_version()}, "
        f"verify workers {args.workers}, load average {os.getloadavg()[0]:.1f}",
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
                r = child(path, what, args.workers)
                results[f"{name}-{what}"] = r
                load = os.getloadavg()[0]
                if what in ("verify", "quick"):
                    rate = r["n"] / r["seconds"]
                    print(
                        f"verify {'--quick ' if what == 'quick' else 'full    '}{name:8} "
                        f"{int(r['n']):>9,} events in {r['seconds']:6.1f} s = "
                        f"{rate:>9,.0f} events/s ({rate / 150_000:.2f} x target 150,000), "
                        f"{r['n'] / r['cpu_seconds']:,.0f} events per CPU-second "
                        f"({r['cpu_seconds']:.1f} CPU-s); "
                        f"peak RSS {r['rss_peak_mb']:.0f} MB per process "
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
