"""fire_throughput: the engine's persisted steps against the same writes in plain sqlite3.

Fires N candidacy transitions through :class:`ti_workflow.engine.Engine` on SQLite and,
in the same run (interleaved rounds), does the same writes with the plain ``sqlite3``
module: per step one transaction (BEGIN IMMEDIATE; SELECT the case row; compute the
event body and its sha256 chain hash with the same canonical JSON; versioned UPDATE of
the case; INSERT of the event rows; COMMIT), with the same durability settings
(journal_mode=WAL, synchronous=FULL, foreign_keys=ON), on the same schema and the same
seeded cases. After each round the two databases are compared row by row: the baseline
writes exactly what the engine writes (same facts, events and hash chain).

Per case the timed steps are: submit (candidate), start_regional_review (system),
give_opinion (regional_council, then state_services, of the case's one region; the
second also runs the automatic complete_regional_review in the same transaction) and
label (national_committee): 5 transactions, 6 events.

Targets (issue): engine rate >= 0.5 x plain sqlite3 rate; memory flat in the number of
cases (no per-case machine), shown by tracemalloc peaks of the fire loop at N and 4N.

    .venv/bin/python bench/fire_throughput.py [--cases N] [--rounds R] [--db-dir DIR]
                                              [--mem-factor K] [--profile [CASES]]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import json
import os
import platform
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import PARIS, SimulatedClock
from ti_workflow.domain.actors import Actor, parse_actor
from ti_workflow.engine import Engine
from ti_workflow.settings import Settings

START = datetime(2023, 7, 1, 10, 0, tzinfo=PARIS)  # inside the 2023 filing window
WORKFLOW, CAMPAIGN = "candidacy", "ti-2023-2027"
MEMBERS = ["200000172", "200033116"]  # CC Faucigny-Glières, CC Cluses-Arve et Montagnes: region 84
REGION = "84"
OPINION = {"opinion": "favourable", "reasons": "Cohérent avec le SRDEII."}
PHASES = ("submit", "start_regional_review", "opinion_council", "opinion_state", "label")
FIRES_PER_CASE = len(PHASES)
EVENTS_PER_CASE = FIRES_PER_CASE + 1  # + the automatic complete_regional_review
TARGET_RATIO = 0.5


def email_of(i: int) -> str:
    return f"candidature-{i:06d}@territoires.example.org"


def candidacy(i: int) -> dict[str, Any]:
    return {
        "territory_name": f"Territoire d'industrie n°{i}",
        "contact_email": email_of(i),
        "perimeter": {"members": MEMBERS},
        "governance": {"members": [
            {"name": "Présidence de l'intercommunalité", "role": "elected", "organisation": "CC Faucigny-Glières"},
            {"name": "Direction d'un site industriel", "role": "industrial", "organisation": "Industriel local"},
        ]},
        "letters_of_intent": [{"signatory": "Président(e)", "organisation": "CC Faucigny-Glières",
                               "date": "2023-06-30"}],
        "action_plan": [
            {"title": "Campus des compétences industrielles", "priority": "skills",
             "summary": "Former et recruter sur les métiers en tension.", "already_started": True},
        ],
    }


# --- set-up (not timed) ------------------------------------------------------------------


def settings_for(path: Path) -> Settings:
    return Settings.from_env(db_url=f"sqlite:///{path}")


def checkpoint(path: Path) -> None:
    """Fold the WAL into the main file so that copying the file copies the database."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def copy_db(src: Path, dst: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    return dst


def seed(workdir: Path, cases: int) -> tuple[Path, list[int]]:
    """Initialise once, then create the candidacies through the engine (draft state)."""
    template = workdir / "template.db"
    clock = SimulatedClock(START)
    initialise(settings_for(template), clock)
    engine = open_engine(settings_for(template), clock)
    ids = [
        engine.create_case(WORKFLOW, CAMPAIGN, candidacy(i), parse_actor(f"candidate:{email_of(i)}")).id
        for i in range(cases)
    ]
    engine.db.dispose()
    checkpoint(template)
    return template, ids


# --- engine side -----------------------------------------------------------------------


def engine_steps(ids: list[int]) -> list[tuple[int, str, Actor, dict[str, Any] | None]]:
    """Every fire, phase by phase (as a campaign does: all submits, then all reviews...)."""
    system = Actor("system")
    council = Actor("regional_council", region=REGION)
    state = Actor("state_services", region=REGION)
    committee = Actor("national_committee")
    candidates = {cid: parse_actor(f"candidate:{email_of(k)}") for k, cid in enumerate(ids)}
    plan: list[tuple[int, str, Actor, dict[str, Any] | None]] = []
    plan += [(cid, "submit", candidates[cid], None) for cid in ids]
    plan += [(cid, "start_regional_review", system, None) for cid in ids]
    plan += [(cid, "give_opinion", council, OPINION) for cid in ids]
    plan += [(cid, "give_opinion", state, OPINION) for cid in ids]
    plan += [(cid, "label", committee, None) for cid in ids]
    return plan


def open_bench_engine(path: Path) -> Engine:
    return open_engine(settings_for(path), SimulatedClock(START))


def run_engine(path: Path, ids: list[int]) -> tuple[float, int, int]:
    engine = open_bench_engine(path)
    plan = engine_steps(ids)
    fire = engine.fire
    events = 0
    t0 = time.perf_counter()
    for case_id, trigger, actor, payload in plan:
        events += len(fire(case_id, trigger, actor, payload).events)
    elapsed = time.perf_counter() - t0
    engine.db.dispose()
    return elapsed, len(plan), events


# --- plain sqlite3 side ----------------------------------------------------------------


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(body)).encode()).hexdigest()


SELECT_CASE = "SELECT * FROM cases WHERE id = ?"
UPDATE_CASE = (
    "UPDATE cases SET state = ?, facts = ?, version = version + 1, last_seq = ?, head_hash = ?,"
    " updated_at = ? WHERE id = ? AND version = ?"
)
INSERT_EVENT = (
    'INSERT INTO events (case_id, seq, "trigger", source, dest, actor, role, at, payload,'
    " annotations, definition_version, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def plain_connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("PRAGMA foreign_keys=ON")
    return con


# What each step does to a case: (trigger, actor label, role, dest, payload, effect).
# An effect takes (facts, regions, at_iso) and returns (new facts, annotations).
Effect = Callable[[dict[str, Any], list[str], str], tuple[dict[str, Any], dict[str, Any]]]


def _record_regions(facts: dict[str, Any], regions: list[str], _at: str) -> tuple[dict, dict]:
    return facts, {"regions": regions}


def _no_effect(facts: dict[str, Any], _regions: list[str], _at: str) -> tuple[dict, dict]:
    return facts, {}


def _opinion(role: str, label: str) -> Effect:
    def effect(facts: dict[str, Any], _regions: list[str], at: str) -> tuple[dict, dict]:
        facts.setdefault("opinions", {}).setdefault(REGION, {})[role] = {
            "opinion": OPINION["opinion"], "reasons": OPINION["reasons"], "at": at, "actor": label,
        }
        return facts, {"region": REGION, "body": role}
    return effect


def _decision(facts: dict[str, Any], _regions: list[str], at: str) -> tuple[dict, dict]:
    facts["decision"] = {"decision": "labelled", "reason": None, "at": at}
    return facts, {"decision": "labelled"}


Step = tuple[str, str, str, str, str, dict[str, Any], Effect]  # trigger, actor, role, source, dest, payload, effect
COUNCIL, STATE = f"regional_council:{REGION}", f"state_services:{REGION}"
PLAIN_STEPS: dict[str, list[Step]] = {
    "submit": [("submit", "", "candidate", "draft", "submitted", {}, _record_regions)],
    "start_regional_review": [("start_regional_review", "system", "system", "submitted",
                               "regional_review", {}, _no_effect)],
    "opinion_council": [("give_opinion", COUNCIL, "regional_council", "regional_review",
                         "regional_review", OPINION, _opinion("regional_council", COUNCIL))],
    "opinion_state": [
        ("give_opinion", STATE, "state_services", "regional_review", "regional_review", OPINION,
         _opinion("state_services", STATE)),
        ("complete_regional_review", "system", "system", "regional_review", "national_review", {},
         _no_effect),
    ],
    "label": [("label", "national_committee", "national_committee", "national_review", "labelled",
               {}, _decision)],
}


def plain_step(con: sqlite3.Connection, case_id: int, steps: list[Step], now: datetime) -> int:
    """One transaction: read the case, chain the event(s), versioned update, insert."""
    execute = con.execute
    at_iso = now.astimezone(UTC).isoformat()
    at_db = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    execute("BEGIN IMMEDIATE")
    try:
        row = execute(SELECT_CASE, (case_id,)).fetchone()
        # columns: id, workflow, definition_version, campaign_id, state, title, owner_email,
        #          data, facts, regions, version, last_seq, head_hash, created_at, updated_at
        definition_version, owner, version, seq, prev = row[2], row[6], row[10], row[11], row[12]
        facts, regions = json.loads(row[8]), json.loads(row[9])
        state = row[4]
        rows = []
        for trigger, actor, role, source, dest, payload, effect in steps:
            assert state == source, (case_id, state, trigger)
            actor = actor or f"candidate:{owner}"
            facts, annotations = effect(facts, regions, at_iso)
            seq += 1
            body = {
                "case_id": case_id, "seq": seq, "trigger": trigger, "source": source, "dest": dest,
                "actor": actor, "role": role, "at": at_iso, "payload": payload,
                "annotations": annotations, "definition_version": definition_version,
            }
            digest = chain_hash(prev, body)
            rows.append((case_id, seq, trigger, source, dest, actor, role, at_db, json.dumps(payload),
                         json.dumps(annotations), definition_version, prev, digest))
            prev, state = digest, dest
        cur = execute(UPDATE_CASE, (state, json.dumps(facts), seq, prev, at_db, case_id, version))
        if cur.rowcount != 1:
            raise RuntimeError(f"case {case_id}: version conflict")
        if len(rows) == 1:
            execute(INSERT_EVENT, rows[0])
        else:
            con.executemany(INSERT_EVENT, rows)
        execute("COMMIT")
    except BaseException:
        execute("ROLLBACK")
        raise
    return len(rows)


def run_plain(path: Path, ids: list[int]) -> tuple[float, int, int]:
    con = plain_connect(path)
    now = START
    fires = events = 0
    t0 = time.perf_counter()
    for phase in PHASES:
        steps = PLAIN_STEPS[phase]
        for case_id in ids:
            events += plain_step(con, case_id, steps, now)
            fires += 1
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed, fires, events


# --- checks, memory, profile -------------------------------------------------------------


def same_writes(engine_db: Path, plain_db: Path, ids: list[int]) -> bool:
    """The baseline wrote exactly the engine's rows (cases and hash-chained events)."""
    last = max(ids)
    queries = (
        "SELECT id, state, facts, version, last_seq, head_hash, updated_at FROM cases"
        " WHERE id <= ? ORDER BY id",
        'SELECT case_id, seq, "trigger", source, dest, actor, role, at, payload, annotations,'
        " definition_version, prev_hash, hash FROM events WHERE case_id <= ? ORDER BY case_id, seq",
    )
    out = []
    for path in (engine_db, plain_db):
        con = sqlite3.connect(path)
        out.append([con.execute(q, (last,)).fetchall() for q in queries])
        con.close()
    return out[0] == out[1]


def attached_models(engine: Engine) -> int:
    return sum(len(m._machine.models) for m in engine.catalog.machines.values())  # noqa: SLF001


def memory_run(path: Path, ids: list[int]) -> dict[str, float]:
    """tracemalloc over the fire loop only: peak and what is still held at its end."""
    engine = open_bench_engine(path)
    plan = engine_steps(ids)
    fire = engine.fire
    # warm the engine (compiled statements, machine) on the first case outside the trace
    warm = [p for p in plan if p[0] == ids[0]]
    for case_id, trigger, actor, payload in warm:
        fire(case_id, trigger, actor, payload)
    rest = [p for p in plan if p[0] != ids[0]]
    gc.collect()
    tracemalloc.start()
    for case_id, trigger, actor, payload in rest:
        fire(case_id, trigger, actor, payload)
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    models = attached_models(engine)
    engine.db.dispose()
    return {"cases": len(ids), "peak_kb": peak / 1024, "held_kb": current / 1024, "models": models}


def profile_run(path: Path, ids: list[int], top: int) -> None:
    engine = open_bench_engine(path)
    plan = engine_steps(ids)
    fire = engine.fire
    profiler = cProfile.Profile()
    profiler.enable()
    for case_id, trigger, actor, payload in plan:
        fire(case_id, trigger, actor, payload)
    profiler.disable()
    engine.db.dispose()
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    total = next(v[3] for k, v in entries.items() if k[2] == "fire" and k[0].endswith("engine.py"))
    rows = sorted(
        ((v[3], v[2], v[1], k) for k, v in entries.items()), key=lambda r: r[0], reverse=True
    )
    print(f"\nprofile: cProfile over {len(plan)} fires ({len(ids)} cases); share = cumulative / Engine.fire")
    print(f"  {'cum share':>9} {'own share':>9} {'calls':>8}  function")
    for cum, own, calls, (file, line, name) in rows[:top]:
        where = file.split("site-packages/")[-1].split("/src/")[-1]
        print(f"  {cum / total:9.1%} {own / total:9.1%} {calls:8d}  {name} ({where}:{line})")


# --- main --------------------------------------------------------------------------------


def header(workdir: Path) -> None:
    print("fire_throughput: engine fire path vs plain sqlite3 (WAL, synchronous=FULL)")
    print(f"date     {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"python   {platform.python_version()} ({platform.python_implementation()})")
    print(f"platform {platform.platform()}  machine {platform.machine()}  cpus {os.cpu_count()}")
    print(f"sqlite   {sqlite3.sqlite_version}   db dir {workdir}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="cases per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--db-dir", type=Path, default=None, help="where the SQLite files go (default: a temp dir)")
    parser.add_argument("--mem-factor", type=int, default=4,
                        help="memory is traced at N and at K*N cases (default K=4; 0 skips it)")
    parser.add_argument("--profile", type=int, nargs="?", const=500, default=0, metavar="CASES",
                        help="also cProfile the engine fire loop over CASES cases (default 500)")
    parser.add_argument("--top", type=int, default=25, help="profile lines shown (default 25)")
    args = parser.parse_args(argv)
    if args.cases < 1 or args.rounds < 1:
        parser.error("--cases and --rounds must be at least 1")

    own_dir = args.db_dir is None
    workdir = Path(tempfile.mkdtemp(prefix="fire_throughput-")) if own_dir else args.db_dir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    header(workdir)
    n = args.cases
    try:
        total_cases = max(n, n * args.mem_factor, args.profile)
        t0 = time.perf_counter()
        template, ids = seed(workdir, total_cases)
        print(f"seeded   {total_cases} draft candidacies through Engine.create_case in "
              f"{time.perf_counter() - t0:.1f}s (not timed below)")
        round_ids = ids[:n]
        print(f"\nper case: {FIRES_PER_CASE} fires ({', '.join(PHASES)}) = {FIRES_PER_CASE} transactions, "
              f"{EVENTS_PER_CASE} events; {n} cases per round, {args.rounds} rounds, order alternates\n")
        print(f"{'round':>5} {'side':<14} {'fires':>6} {'events':>6} {'seconds':>8} {'steps/s':>8} {'events/s':>8}")
        rates: dict[str, list[float]] = {"engine": [], "sqlite3": []}
        identical = True
        for r in range(1, args.rounds + 1):
            engine_db = copy_db(template, workdir / "engine.db")
            plain_db = copy_db(template, workdir / "plain.db")
            sides = [("engine", run_engine, engine_db), ("sqlite3", run_plain, plain_db)]
            if r % 2 == 0:
                sides.reverse()
            counts = {}
            for name, run, path in sides:
                elapsed, fires, events = run(path, round_ids)
                counts[name] = (fires, events)
                rates[name].append(fires / elapsed)
                print(f"{r:>5} {name:<14} {fires:>6} {events:>6} {elapsed:>8.2f} "
                      f"{fires / elapsed:>8.0f} {events / elapsed:>8.0f}")
            assert counts["engine"] == counts["sqlite3"], counts
            identical &= same_writes(engine_db, plain_db, round_ids)
        engine_rate = statistics.median(rates["engine"])
        plain_rate = statistics.median(rates["sqlite3"])
        ratio = engine_rate / plain_rate
        print(f"\nbaseline rows identical to the engine's (cases, events, hash chain): "
              f"{'yes' if identical else 'NO'}")
        print(f"median engine   {engine_rate:8.0f} steps/s  ({engine_rate * EVENTS_PER_CASE / FIRES_PER_CASE:.0f} events/s,"
              f" {1000 / engine_rate:.3f} ms/step)")
        print(f"median sqlite3  {plain_rate:8.0f} steps/s  ({plain_rate * EVENTS_PER_CASE / FIRES_PER_CASE:.0f} events/s,"
              f" {1000 / plain_rate:.3f} ms/step)")
        print(f"engine overhead {1000 / engine_rate - 1000 / plain_rate:.3f} ms/step over plain sqlite3")
        ok_ratio = ratio >= TARGET_RATIO
        print(f"ratio {ratio:.2f} (target >= {TARGET_RATIO}): {'PASS' if ok_ratio else 'FAIL'}")

        ok_memory = True
        if args.mem_factor > 0:
            print("\nmemory: tracemalloc over the engine fire loop (peak while firing; still held after it)")
            results = []
            for k in sorted({1, args.mem_factor}):
                path = copy_db(template, workdir / "memory.db")
                m = memory_run(path, ids[: n * k])
                results.append(m)
                print(f"  {m['cases']:>6} cases  peak {m['peak_kb']:8.1f} KB  held {m['held_kb']:8.1f} KB  "
                      f"models attached after: {m['models']}")
            if len(results) > 1:
                small, big = results[0], results[-1]
                growth = big["peak_kb"] / small["peak_kb"]
                per_case = (big["held_kb"] - small["held_kb"]) * 1024 / (big["cases"] - small["cases"])
                # flat: x cases does not multiply the peak; nothing (> 64 bytes) kept per case
                ok_memory = growth < 1.5 and per_case < 64 and big["models"] == 0
                print(f"peak x{growth:.2f} for x{big['cases'] / small['cases']:.0f} cases; "
                      f"held {per_case:+.1f} bytes per extra case (target: flat): "
                      f"{'PASS' if ok_memory else 'FAIL'}")

        if args.profile:
            path = copy_db(template, workdir / "profile.db")
            profile_run(path, ids[: args.profile], args.top)
        return 0 if ok_ratio and ok_memory and identical else 1
    finally:
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
