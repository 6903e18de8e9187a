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
import copy
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

EVENTS_PER_CASE = 7


def generate(path: Path, cases: int) -> None:
    from sqlalchemy import insert

    from ti_workflow.audit.store import cases_t, events_t
    from ti_workflow.bootstrap import initialise, open_engine
    from ti_workflow.clock import PARIS, SimulatedClock
    from ti_workflow.domain.actors import Actor
    from ti_workflow.domain.events import GENESIS, Event
    from ti_workflow.settings import Settings
    from ti_workflow.storage.repository import load_case, load_events

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import candidacy

    url = f"sqlite:///{path}"
    clock = SimulatedClock(datetime(2023, 7, 3, 10, tzinfo=PARIS))
    initialise(Settings(db_url=url), clock)
    engine = open_engine(Settings(db_url=url), clock)
    who = Actor("candidate", email="ti@arve.example.org")
    case_id = engine.create_case("candidacy", "ti-2023-2027", candidacy(), who).id
    engine.fire(case_id, "submit", who)
    engine.fire(case_id, "start_regional_review", Actor("system"))
    clock.set(datetime(2023, 10, 2, 14, tzinfo=PARIS))
    for body in ("regional_council", "state_services"):
        engine.fire(
            case_id,
            "give_opinion",
            Actor(body, region="84"),
            {"opinion": "favourable", "reasons": "cohérent"},
        )
    clock.set(datetime(2023, 10, 31, 15, tzinfo=PARIS))
    engine.fire(case_id, "label", Actor("national_committee"))
    with engine.db.connect() as conn:
        template = load_events(conn, case_id)
        row = load_case(conn, case_id)
    assert len(template) == EVENTS_PER_CASE
    case_values = {
        k: getattr(row, k)
        for k in (
            "workflow",
            "definition_version",
            "campaign_id",
            "state",
            "title",
            "owner_email",
            "data",
            "facts",
            "version",
            "last_seq",
            "created_at",
            "updated_at",
        )
    }
    case_values["regions"] = list(row.regions)
    batch = 2_000
    with engine.db.begin() as conn:
        for start in range(2, cases + 1, batch):
            case_rows, event_rows = [], []
            for cid in range(start, min(start + batch, cases + 1)):
                # Each case has its own name and opinion reasons: no two histories are equal.
                name = f"Territoire n°{cid}"
                reasons = f"cohérent avec le SRDEI (dossier {cid})"
                prev = GENESIS
                for t in template:
                    payload = t.payload
                    if t.trigger == "create":
                        payload = {"data": {**payload["data"], "territory_name": name}}
                    elif t.trigger == "give_opinion":
                        payload = {**payload, "reasons": reasons}
                    e = Event(
                        **{
                            **t.__dict__,
                            "case_id": cid,
                            "payload": payload,
                            "prev_hash": prev,
                            "hash": "",
                        }
                    )
                    h = e.compute_hash()
                    event_rows.append({**e.__dict__, "hash": h})
                    prev = h
                facts = copy.deepcopy(case_values["facts"])
                for opinion in facts["opinions"]["84"].values():
                    opinion["reasons"] = reasons
                case_rows.append(
                    {
                        "id": cid,
                        **case_values,
                        "head_hash": prev,
                        "title": name,
                        "facts": facts,
                        "data": {**case_values["data"], "territory_name": name},
                    }
                )
            conn.execute(insert(cases_t), case_rows)
            conn.execute(insert(events_t), event_rows)
    engine.db.dispose()


def measure(path: Path, what: str, cases: int | None) -> dict[str, float]:
    """Runs in its own process: one operation, its time and the process's peak RSS."""
    from ti_workflow.audit.snapshot import snapshot, states_at
    from ti_workflow.audit.verify import verify
    from ti_workflow.bootstrap import open_engine
    from ti_workflow.clock import SimulatedClock
    from ti_workflow.settings import Settings

    engine = open_engine(
        Settings(db_url=f"sqlite:///{path}"), SimulatedClock(datetime(2023, 12, 1, tzinfo=UTC))
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu = time.perf_counter(), time.process_time()
    if what in ("verify", "quick"):
        report = verify(engine, quick=what == "quick")
        assert report.ok, report.findings[:3]
        n = report.events
    elif what == "states":
        n = len(states_at(engine, datetime(2023, 10, 20, tzinfo=UTC), "national_review"))
    else:
        at = datetime(2023, 10, 20, tzinfo=UTC)
        n = sum(1 for c in snapshot(engine, at) if c.case and c.case.state == "national_review")
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "n": n,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "rss_before_mb": before / 1024,
        "rss_peak_mb": peak / 1024,
    }


def child(path: Path, what: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", what, "--db", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--snapshot-cases", type=int, default=100_000)
    p.add_argument("--db-dir", type=Path, default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--measure", choices=("verify", "quick", "snapshot", "states"))
    p.add_argument("--db", type=Path)
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(args.db, args.measure, None)))
        return
    work = args.db_dir or Path(tempfile.mkdtemp(prefix="ti-audit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    full_cases = args.events // EVENTS_PER_CASE
    sizes = {"quarter": full_cases // 4, "full": full_cases, "snapshot": args.snapshot_cases}
    print(
        f"ti-workflow audit bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, nproc "
        f"{os.cpu_count()}, {platform.machine()}, Python {platform.python_version()}"
    )
    results: dict[str, dict[str, float]] = {}
    try:
        for name, cases in sizes.items():
            path = work / f"{name}-{cases}.db"
            if not path.exists():
                t = time.perf_counter()
                generate(path, cases)
                print(
                    f"generated {cases:,} cases ({cases * EVENTS_PER_CASE:,} events) in "
                    f"{time.perf_counter() - t:.1f} s -> {path}",
                    flush=True,
                )
            kinds = ["snapshot", "states"] if name == "snapshot" else ["verify", "quick"]
            for what in kinds:
                r = child(path, what)
                results[f"{name}-{what}"] = r
                if what in ("verify", "quick"):
                    rate = r["n"] / r["seconds"]
                    print(
                        f"verify {'--quick ' if what == 'quick' else 'full    '}{name:8} "
                        f"{int(r['n']):>9,} events in {r['seconds']:6.1f} s = "
                        f"{rate:>9,.0f} events/s ({rate / 150_000:.2f} x target 150,000), "
                        f"{r['n'] / r['cpu_seconds']:,.0f} events per CPU-second; "
                        f"peak RSS {r['rss_peak_mb']:.0f} MB (at start {r['rss_before_mb']:.0f})",
                        flush=True,
                    )
                else:
                    label = "snapshot (replay)" if what == "snapshot" else "snapshot --states-only"
                    print(
                        f"{label} over {cases:,} cases ({cases * EVENTS_PER_CASE:,} events) "
                        f"in {r['seconds']:.2f} s, {r['cpu_seconds']:.2f} CPU-s (target < 5 s: "
                        f"{'met' if r['seconds'] < 5 else 'missed'}); peak RSS "
                        f"{r['rss_peak_mb']:.0f} MB",
                        flush=True,
                    )
        q, f = results["quarter-verify"], results["full-verify"]
        growth = f["rss_peak_mb"] - q["rss_peak_mb"]
        print(
            f"memory: peak RSS {q['rss_peak_mb']:.0f} MB at {sizes['quarter']:,} cases, "
            f"{f['rss_peak_mb']:.0f} MB at {sizes['full']:,} cases (+{growth:.0f} MB for 4x "
            "the log)"
        )
    finally:
        if not args.keep and args.db_dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
