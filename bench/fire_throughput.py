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

Two engines are measured:

* the engine core (the target): ``open_engine``'s Engine with the area extensions that
  bootstrap installs (in-transaction hooks, context providers, region providers) removed,
  so it writes exactly what the baseline writes. Every case has the same perimeter (two
  EPCI of region 84).
* the engine as shipped (information): ``open_engine`` as is. Its hooks write more than
  the baseline (outbox rows, timers, the territory of a labelled candidacy...) and a
  groupement may belong to one territory only, so these cases each get their own pair of
  EPCI of one region (598 such pairs exist: at most 598 cases).

Targets (issue): engine core rate >= 0.5 x plain sqlite3 rate; memory flat in the number
of cases (no per-case machine), shown by tracemalloc over the core's fire loop at N/8 and
N/2 cases (4x apart; tracemalloc slows the loop ~3x, so the default stays near a minute
and a half): what the loop still holds after it (after a full collection) must not grow
with the cases, and no case may stay attached to the shared machine. The peak is printed
too, with the number of full (generation 2) collections during the loop: cyclic garbage
made by each fire waits for the next full collection, so the peak follows the collector's
schedule (bounded by the heap size) rather than the number of cases.

    .venv/bin/python bench/fire_throughput.py [--cases N] [--rounds R] [--db-dir DIR]
        [--shipped-cases M] [--mem-cases A,B] [--profile [CASES]] [--top K]
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
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy

import ti_workflow
from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import PARIS, SimulatedClock
from ti_workflow.domain.actors import Actor, parse_actor
from ti_workflow.engine import Engine
from ti_workflow.settings import Settings
from ti_workflow.storage.reference_data import read_csv

START = datetime(2023, 7, 1, 10, 0, tzinfo=PARIS)  # inside the 2023 filing window
WORKFLOW, CAMPAIGN = "candidacy", "ti-2023-2027"
# CC Faucigny-Glières and CC Cluses-Arve et Montagnes, both of region 84 (Auvergne-Rhône-Alpes)
SAME_PERIMETER = (["200000172", "200033116"], "84")
OPINION = {"opinion": "favourable", "reasons": "Cohérent avec le SRDEII."}
PHASES = ("submit", "start_regional_review", "opinion_council", "opinion_state", "label")
FIRES_PER_CASE = len(PHASES)
EVENTS_PER_CASE = FIRES_PER_CASE + 1  # + the automatic complete_regional_review
TARGET_RATIO = 0.5


def email_of(i: int) -> str:
    return f"candidature-{i:06d}@territoires.example.org"


def candidacy(i: int, members: list[str]) -> dict[str, Any]:
    return {
        "territory_name": f"Territoire d'industrie n°{i}",
        "contact_email": email_of(i),
        "perimeter": {"members": members},
        "governance": {
            "members": [
                {
                    "name": "Présidence de l'intercommunalité",
                    "role": "elected",
                    "organisation": "Intercommunalité",
                },
                {
                    "name": "Direction d'un site industriel",
                    "role": "industrial",
                    "organisation": "Industriel local",
                },
            ]
        },
        "letters_of_intent": [
            {"signatory": "Président(e)", "organisation": "Intercommunalité", "date": "2023-06-30"},
            {"signatory": "Directeur", "organisation": "Industriel local", "date": "2023-07-03"},
        ],
        "action_plan": [
            {
                "title": "Campus des compétences industrielles",
                "priority": "skills",
                "summary": "Former et recruter sur les métiers en tension.",
                "already_started": True,
            },
            {
                "title": "Requalification de friches",
                "priority": "land",
                "summary": "Remobiliser le foncier pour les implantations.",
            },
        ],
    }


Perimeter = tuple[list[str], str]  # members, their one region


def distinct_pairs() -> list[Perimeter]:
    """Pairs of EPCI of one region each, no EPCI twice (métropoles left out: they need a
    justification). The shipped reference data of 2023 gives 598."""
    by_region: dict[str, list[str]] = {}
    for row in read_csv("epci_2023.csv"):
        if ";" not in row["regions"] and row["nature"] not in ("METRO", "MET69"):
            by_region.setdefault(row["regions"], []).append(row["siren"])
    pairs = []
    for region, sirens in sorted(by_region.items()):
        pairs += [([a, b], region) for a, b in zip(sirens[::2], sirens[1::2], strict=False)]
    return pairs


@dataclass
class Workload:
    """Seeded draft candidacies in an initialised database file, copied for every run."""

    template: Path
    ids: list[int]
    region: dict[int, str]  # case id -> its one region

    def first(self, n: int) -> Workload:
        return Workload(self.template, self.ids[:n], self.region)


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


def seed(path: Path, perimeters: list[Perimeter]) -> Workload:
    """Initialise once, then create the candidacies through the engine (draft state)."""
    for suffix in ("", "-wal", "-shm"):  # a --db-dir reused from an earlier run
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    clock = SimulatedClock(START)
    initialise(settings_for(path), clock)
    engine = open_engine(settings_for(path), clock)
    ids, region = [], {}
    for i, (members, where) in enumerate(perimeters):
        actor = parse_actor(f"candidate:{email_of(i)}")
        case = engine.create_case(WORKFLOW, CAMPAIGN, candidacy(i, members), actor)
        assert case.regions == (where,), (members, case.regions)
        ids.append(case.id)
        region[case.id] = where
    engine.db.dispose()
    checkpoint(path)
    return Workload(path, ids, region)


# --- engine side -----------------------------------------------------------------------


Fire = tuple[int, str, Actor, dict[str, Any] | None]  # case, trigger, actor, payload
EXTENSIONS = ("hooks", "context_providers", "region_providers")


def engine_steps(work: Workload, phases: tuple[str, ...] = PHASES) -> list[Fire]:
    """Every fire, phase by phase (as a campaign does: all submits, then all reviews...)."""
    plan: list[Fire] = []
    for phase in phases:
        for k, cid in enumerate(work.ids):
            region = work.region[cid]
            if phase == "submit":
                plan.append((cid, "submit", parse_actor(f"candidate:{email_of(k)}"), None))
            elif phase == "start_regional_review":
                plan.append((cid, "start_regional_review", Actor("system"), None))
            elif phase == "opinion_council":
                plan.append(
                    (cid, "give_opinion", Actor("regional_council", region=region), OPINION)
                )
            elif phase == "opinion_state":
                plan.append((cid, "give_opinion", Actor("state_services", region=region), OPINION))
            else:
                plan.append((cid, "label", Actor("national_committee"), None))
    return plan


def open_bench_engine(path: Path, shipped: bool = False) -> Engine:
    """``open_engine``'s Engine; unless ``shipped``, without the area extensions."""
    engine = open_engine(settings_for(path), SimulatedClock(START))
    if not shipped:
        for name in EXTENSIONS:
            getattr(engine, name, []).clear()
    return engine


def extensions(engine: Engine) -> str:
    names = [
        f"{name}: {', '.join(getattr(f, '__qualname__', type(f).__name__) for f in found)}"
        for name in EXTENSIONS
        if (found := getattr(engine, name, None))
    ]
    return "; ".join(names) or "none"


class EngineSide:
    def __init__(self, path: Path, work: Workload, shipped: bool = False) -> None:
        self.name = "shipped" if shipped else "engine"
        self.engine = open_bench_engine(path, shipped)
        self.work = work
        self.cpu = 0.0  # this process's CPU seconds in run(): insensitive to waiting on the disk

    def run(self, phase: str) -> tuple[float, int, int]:
        plan = engine_steps(self.work, (phase,))
        fire = self.engine.fire
        events = 0
        c0, t0 = time.process_time(), time.perf_counter()
        for case_id, trigger, actor, payload in plan:
            events += len(fire(case_id, trigger, actor, payload).events)
        self.cpu += time.process_time() - c0
        return time.perf_counter() - t0, len(plan), events

    def close(self) -> None:
        self.engine.db.dispose()


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
    " annotations, definition_version, prev_hash, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def plain_connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("PRAGMA foreign_keys=ON")
    return con


# What each step does to a case: (trigger, role, source, dest, payload, effect). The actor
# is the role, qualified by the owner's e-mail (candidate) or the case's region (regional
# bodies). An effect takes (facts, regions, at_iso) and returns (new facts, annotations).
JSON = dict[str, Any]
Effect = Callable[[JSON, list[str], str], tuple[JSON, JSON]]
Step = tuple[str, str, str, str, JSON, Effect]
REGIONAL = ("regional_council", "state_services")


LETTERS = {
    "elected": ["Président(e) (Intercommunalité)"],
    "industrial": ["Directeur (Industriel local)"],
    "other": [],
}
"""``record_submission``'s classification of the letters every bench case has (FAQ 4.5)."""


def _record_submission(facts: JSON, regions: list[str], _at: str) -> tuple[JSON, JSON]:
    facts["governance_mode"] = "territory"
    facts["letters_of_intent"] = LETTERS
    return facts, {"regions": regions, "governance_mode": "territory", "letters_of_intent": LETTERS}


def _no_effect(facts: JSON, _regions: list[str], _at: str) -> tuple[JSON, JSON]:
    return facts, {}


def _opinion(role: str) -> Effect:
    def effect(facts: JSON, regions: list[str], at: str) -> tuple[JSON, JSON]:
        region = regions[0]
        facts.setdefault("opinions", {}).setdefault(region, {})[role] = {
            "opinion": OPINION["opinion"],
            "reasons": OPINION["reasons"],
            "at": at,
            "actor": f"{role}:{region}",
        }
        return facts, {"region": region, "body": role}

    return effect


def _decision(facts: JSON, _regions: list[str], at: str) -> tuple[JSON, JSON]:
    facts["decision"] = {"decision": "labelled", "reason": None, "at": at}
    return facts, {"decision": "labelled"}


REVIEW = "regional_review"
PLAIN_STEPS: dict[str, list[Step]] = {
    "submit": [("submit", "candidate", "draft", "submitted", {}, _record_submission)],
    "start_regional_review": [
        ("start_regional_review", "system", "submitted", REVIEW, {}, _no_effect)
    ],
    "opinion_council": [
        ("give_opinion", "regional_council", REVIEW, REVIEW, OPINION, _opinion("regional_council"))
    ],
    "opinion_state": [
        ("give_opinion", "state_services", REVIEW, REVIEW, OPINION, _opinion("state_services")),
        ("complete_regional_review", "system", REVIEW, "national_review", {}, _no_effect),
    ],
    "label": [("label", "national_committee", "national_review", "labelled", {}, _decision)],
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
        for trigger, role, source, dest, payload, effect in steps:
            assert state == source, (case_id, state, trigger)
            if role == "candidate":
                actor = f"candidate:{owner}"
            elif role in REGIONAL:
                actor = f"{role}:{regions[0]}"
            else:
                actor = role
            facts, annotations = effect(facts, regions, at_iso)
            seq += 1
            body = {
                "case_id": case_id,
                "seq": seq,
                "trigger": trigger,
                "source": source,
                "dest": dest,
                "actor": actor,
                "role": role,
                "at": at_iso,
                "payload": payload,
                "annotations": annotations,
                "definition_version": definition_version,
            }
            digest = chain_hash(prev, body)
            rows.append(
                (
                    case_id,
                    seq,
                    trigger,
                    source,
                    dest,
                    actor,
                    role,
                    at_db,
                    canonical_json(payload),  # stored as the text its hash covers
                    canonical_json(annotations),
                    definition_version,
                    prev,
                    digest,
                )
            )
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


class PlainSide:
    name = "sqlite3"

    def __init__(self, path: Path, work: Workload) -> None:
        self.con = plain_connect(path)
        self.ids = work.ids
        self.cpu = 0.0

    def run(self, phase: str) -> tuple[float, int, int]:
        con, steps, now = self.con, PLAIN_STEPS[phase], START
        events = 0
        c0, t0 = time.process_time(), time.perf_counter()
        for case_id in self.ids:
            events += plain_step(con, case_id, steps, now)
        self.cpu += time.process_time() - c0
        return time.perf_counter() - t0, len(self.ids), events

    def close(self) -> None:
        self.con.close()


# --- checks, memory, profile -------------------------------------------------------------


def same_writes(engine_db: Path, plain_db: Path, ids: list[int]) -> bool:
    """The baseline wrote the engine's rows (cases and hash-chained events), exactly."""
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


def extra_rows(engine_db: Path, plain_db: Path) -> dict[str, int]:
    """Rows the engine wrote beyond the baseline's, table by table."""
    counts = []
    for path in (engine_db, plain_db):
        con = sqlite3.connect(path)
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        counts.append({n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names})
        con.close()
    return {n: c - counts[1].get(n, 0) for n, c in counts[0].items() if c != counts[1].get(n, 0)}


def attached_models(engine: Engine) -> int:
    return sum(len(m._machine.models) for m in engine.catalog.machines.values())


def memory_run(path: Path, work: Workload) -> dict[str, float]:
    """tracemalloc over the fire loop only: peak, held before and after a full collection."""
    engine = open_bench_engine(path)
    plan = engine_steps(work)
    ids = work.ids
    fire = engine.fire
    # warm the engine (compiled statements, machine, pool) on the first case, untraced
    for case_id, trigger, actor, payload in [p for p in plan if p[0] == ids[0]]:
        fire(case_id, trigger, actor, payload)
    rest = [p for p in plan if p[0] != ids[0]]
    gc.collect()
    full_before = gc.get_stats()[2]["collections"]
    tracemalloc.start()
    for case_id, trigger, actor, payload in rest:
        fire(case_id, trigger, actor, payload)
    before, _ = tracemalloc.get_traced_memory()
    full = gc.get_stats()[2]["collections"] - full_before
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    models = attached_models(engine)
    engine.db.dispose()
    return {
        "cases": len(ids),
        "fires": len(plan),
        "peak_kb": peak / 1024,
        "garbage_kb": (before - held) / 1024,
        "held_kb": held / 1024,
        "full_gcs": full,
        "models": models,
    }


Key = tuple[str, str, int]  # function, file, line


def _pyinstrument(fire_all: Callable[[], None]) -> tuple[str, dict[Key, float], dict[Key, float]]:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    profiler.start()
    fire_all()
    session = profiler.stop()
    cum: dict[Key, float] = {}
    own: dict[Key, float] = {}

    def walk(frame: Any, seen: frozenset[Key], inside: bool) -> None:
        key = (frame.function or "?", frame.file_path or "?", frame.line_no or 0)
        inside = inside or (key[0] == "fire" and key[1].endswith("engine.py"))
        synthetic = key[0].startswith("[")  # pyinstrument's [self] / [await] markers
        if inside and not synthetic:
            if key not in seen:
                cum[key] = cum.get(key, 0.0) + frame.time
            own[key] = own.get(key, 0.0) + frame.total_self_time
        for child in frame.children:
            walk(child, seen | {key}, inside)

    walk(session.root_frame(), frozenset(), False)
    return "pyinstrument (sampling every 0.2 ms)", cum, own


def _cprofile(fire_all: Callable[[], None]) -> tuple[str, dict[Key, float], dict[Key, float]]:
    profiler = cProfile.Profile()
    profiler.enable()
    fire_all()
    profiler.disable()
    entries = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    cum = {(name, file, line): v[3] for (file, line, name), v in entries.items()}
    own = {(name, file, line): v[2] for (file, line, name), v in entries.items()}
    return "cProfile (deterministic: inflates Python calls against C)", cum, own


def profile_run(path: Path, work: Workload, top: int, shipped: bool = False) -> None:
    """Where a fire's time goes: pyinstrument (sampling) if installed, else cProfile.

    Shares are of the time spent inside Engine.fire; "cum" counts a function once per
    stack (recursion is not double-counted), "own" is the time in its own body.
    """
    engine = open_bench_engine(path, shipped)
    plan = engine_steps(work)

    def fire_all() -> None:
        for case_id, trigger, actor, payload in plan:
            engine.fire(case_id, trigger, actor, payload)

    try:
        import pyinstrument  # noqa: F401

        tool, cum, own = _pyinstrument(fire_all)
    except ImportError:
        tool, cum, own = _cprofile(fire_all)
    engine.db.dispose()
    total = max(
        t for (name, file, _), t in cum.items() if name == "fire" and file.endswith("engine.py")
    )
    print(
        f"\nprofile of the engine {'as shipped' if shipped else 'core'}: {tool}, {len(plan)} fires"
        f" ({len(work.ids)} cases);"
        f" share of the time inside Engine.fire"
    )
    print(f"  {'cum':>6} {'own':>6}  function")
    rows = sorted(cum.items(), key=lambda kv: kv[1], reverse=True)
    for (name, file, line), t in rows[:top]:
        where = file.split("site-packages/")[-1].split("/src/")[-1].split("/lib/python3")[-1]
        mine = own.get((name, file, line), 0.0)
        print(f"  {t / total:6.1%} {mine / total:6.1%}  {name} ({where}:{line})")
    ranked = sorted(own.items(), key=lambda kv: kv[1], reverse=True)
    print("\n  top own time (self, excluding callees):")
    for (name, file, line), t in ranked[:12]:
        where = file.split("site-packages/")[-1].split("/src/")[-1].split("/lib/python3")[-1]
        print(f"  {t / total:6.1%}  {name} ({where}:{line})")


# --- main --------------------------------------------------------------------------------


def code_version() -> str:
    """Which ti_workflow is measured: its path, and its git commit when it is a checkout."""
    src = Path(ti_workflow.__file__).resolve().parent
    where = str(src)
    try:

        def git(*cmd: str) -> str:
            return subprocess.run(
                ["git", "-C", str(src), *cmd],
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout.strip()

        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", ".")
        return f"{where} @ {commit}{' + uncommitted changes' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return f"{where} (not a git checkout)"


def header(workdir: Path) -> None:
    print("fire_throughput: engine fire path vs plain sqlite3 (WAL, synchronous=FULL)")
    print(f"date     {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"python   {platform.python_version()} ({platform.python_implementation()})")
    print(f"platform {platform.platform()}  machine {platform.machine()}  cpus {os.cpu_count()}")
    print(f"sqlite   {sqlite3.sqlite_version} (sqlalchemy {sqlalchemy.__version__})")
    print(f"db dir   {workdir}")
    print(f"engine   {code_version()}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="cases per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--db-dir", type=Path, default=None, help="where the SQLite files go (default: a temp dir)"
    )
    parser.add_argument(
        "--shipped-cases",
        type=int,
        default=None,
        metavar="M",
        help="cases for the engine as shipped, each with its own EPCI pair "
        "(default: min(N/2, 598); 0 skips it)",
    )
    parser.add_argument(
        "--shipped-rounds", type=int, default=1, help="rounds for the engine as shipped (default 1)"
    )
    parser.add_argument(
        "--mem-cases",
        default=None,
        metavar="A,B,...",
        help="case counts at which the fire loop runs under tracemalloc "
        "(default: N/8,N/2; 0 skips it)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=500,
        default=0,
        metavar="CASES",
        help="also profile the engine fire loop over CASES cases "
        "(default 500; pyinstrument if installed, else cProfile)",
    )
    parser.add_argument(
        "--profile-shipped",
        action="store_true",
        help="profile the engine as shipped too (its own EPCI pairs, at most 598 cases)",
    )
    parser.add_argument("--top", type=int, default=25, help="profile lines shown (default 25)")
    args = parser.parse_args(argv)
    if args.cases < 1 or args.rounds < 1:
        parser.error("--cases and --rounds must be at least 1")
    if args.shipped_cases is None:
        args.shipped_cases = min(max(1, args.cases // 2), 598)
    if args.mem_cases is None:  # 4x apart; tracemalloc slows the loop ~3x
        args.mem_cases = sorted({max(1, args.cases // 8), max(1, args.cases // 2)})
    else:
        args.mem_cases = sorted({int(x) for x in args.mem_cases.split(",") if int(x) > 0})
    return args


def throughput(
    work: Workload, workdir: Path, rounds: int, shipped: bool = False
) -> tuple[float, bool, dict[str, int]]:
    """Interleaved rounds, engine against plain sqlite3.

    Returns the ratio of the median rates, whether the cases and events tables came out
    identical, and the rows the engine wrote beyond the baseline's (last round)."""
    engine_name = "shipped" if shipped else "engine"
    print(
        f"{'round':>5} {'side':<8} {'fires':>6} {'events':>6} {'seconds':>8} {'steps/s':>8}"
        f" {'events/s':>8} {'CPU ms/step':>11}"
    )
    rates: dict[str, list[float]] = {engine_name: [], "sqlite3": []}
    cpu_ms: dict[str, list[float]] = {engine_name: [], "sqlite3": []}
    paired: list[float] = []  # engine rate / sqlite3 rate, phase by phase, run back to back
    identical, extra = True, {}
    for r in range(1, rounds + 1):
        engine_db = copy_db(work.template, workdir / "engine.db")
        plain_db = copy_db(work.template, workdir / "plain.db")
        sides: list[EngineSide | PlainSide] = [
            EngineSide(engine_db, work, shipped),
            PlainSide(plain_db, work),
        ]
        totals = {side.name: [0.0, 0.0, 0.0] for side in sides}  # seconds, fires, events
        for i, phase in enumerate(PHASES):
            # the sides take turns phase by phase (first one, then the other): a burst of
            # disk or CPU load from elsewhere lands on both rather than on one
            seconds = {}
            for side in sides if (r + i) % 2 else sides[::-1]:
                elapsed, fires, events = side.run(phase)
                seconds[side.name] = elapsed / fires
                t = totals[side.name]
                t[0], t[1], t[2] = t[0] + elapsed, t[1] + fires, t[2] + events
            paired.append(seconds["sqlite3"] / seconds[engine_name])
        for side in sides:
            side.close()
            took, done, written = totals[side.name]
            rates[side.name].append(done / took)
            cpu_ms[side.name].append(side.cpu * 1000 / done)
            print(
                f"{r:>5} {side.name:<8} {done:>6.0f} {written:>6.0f} {took:>8.2f}"
                f" {done / took:>8.0f} {written / took:>8.0f} {side.cpu * 1000 / done:>11.3f}"
            )
        assert totals[engine_name][1:] == totals["sqlite3"][1:], totals
        identical &= same_writes(engine_db, plain_db, work.ids)
        extra = extra_rows(engine_db, plain_db)

    print(
        "\ncases and events rows identical to the engine's (hash chain included): "
        + ("yes" if identical else "NO")
    )
    if extra:
        more = ", ".join(f"{table} +{n}" for table, n in sorted(extra.items()))
        print(f"rows the engine wrote beyond the baseline (last round): {more}")
    median = {name: statistics.median(values) for name, values in rates.items()}
    cpu = {name: statistics.median(values) for name, values in cpu_ms.items()}
    for name, rate in median.items():
        print(
            f"median {name:<8} {rate:8.0f} steps/s  ({rate * EVENTS_PER_CASE / FIRES_PER_CASE:.0f}"
            f" events/s, {1000 / rate:.3f} ms/step wall, {cpu[name]:.3f} ms/step CPU)"
        )
    wall = 1000 / median[engine_name] - 1000 / median["sqlite3"]
    print(
        f"{engine_name} overhead: {wall:.3f} ms/step wall,"
        f" {cpu[engine_name] - cpu['sqlite3']:.3f} ms/step CPU (the rest of a step waits on fsync)"
    )
    print(
        f"paired ratios (each phase back to back, {len(paired)} pairs):"
        f" median {statistics.median(paired):.2f}, min {min(paired):.2f}, max {max(paired):.2f}"
    )
    return median[engine_name] / median["sqlite3"], identical, extra


def memory(work: Workload, workdir: Path, counts: list[int]) -> bool:
    print(
        "\nmemory: tracemalloc over the engine core's fire loop, KB (held = still traced after"
        " the loop and a full gc.collect(); garbage = what that collection freed)"
    )
    print(
        f"  {'cases':>6} {'fires':>6} {'peak':>8} {'garbage':>8} {'held':>8} {'full gcs':>8}"
        f" {'models attached':>15}"
    )
    results = []
    for k in counts:
        m = memory_run(copy_db(work.template, workdir / "memory.db"), work.first(k))
        results.append(m)
        print(
            f"  {m['cases']:>6} {m['fires']:>6} {m['peak_kb']:>8.1f} {m['garbage_kb']:>8.1f}"
            f" {m['held_kb']:>8.1f} {m['full_gcs']:>8} {m['models']:>15}"
        )
    ok = all(m["models"] == 0 for m in results)
    if len(results) > 1:
        small, big = results[0], results[-1]
        grown = big["held_kb"] - small["held_kb"]
        per_case = grown * 1024 / (big["cases"] - small["cases"])
        # flat: what the loop keeps does not grow with the cases (a machine model kept
        # attached is ~10 KB a case); 64 KB absorbs bounded caches and allocator noise
        ok = ok and grown < 64
        times = big["cases"] / small["cases"]
        print(
            f"held {grown:+.1f} KB ({per_case:+.1f} bytes per extra case), no case left attached;"
            f" peak x{big['peak_kb'] / small['peak_kb']:.2f} for x{times:.0f} cases"
            f" (target: flat): {'PASS' if ok else 'FAIL'}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    own_dir = args.db_dir is None
    workdir = Path(tempfile.mkdtemp(prefix="fire_throughput-")) if own_dir else args.db_dir
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    header(workdir)
    try:
        total_cases = max([args.cases, args.profile, *args.mem_cases])
        t0 = time.perf_counter()
        work = seed(workdir / "template.db", [SAME_PERIMETER] * total_cases)
        print(
            f"seeded   {total_cases} draft candidacies through Engine.create_case in "
            f"{time.perf_counter() - t0:.1f}s (not timed below)"
        )
        print(
            f"\nengine core vs plain sqlite3, same writes. Per case: {FIRES_PER_CASE} fires"
            f" ({', '.join(PHASES)}) = {FIRES_PER_CASE} transactions, {EVENTS_PER_CASE} events;"
            f" {args.cases} cases per round, {args.rounds} rounds; the sides alternate phase by"
            " phase\n"
        )
        ratio, identical, extra = throughput(work.first(args.cases), workdir, args.rounds)
        ok_ratio = ratio >= TARGET_RATIO
        print(f"ratio {ratio:.2f} (target >= {TARGET_RATIO}): {'PASS' if ok_ratio else 'FAIL'}")
        identical = identical and not extra

        if args.shipped_cases:
            pairs = distinct_pairs()[: args.shipped_cases]
            t0 = time.perf_counter()
            shipped = seed(workdir / "shipped.db", pairs)
            probe = open_bench_engine(shipped.template, shipped=True)
            installed = extensions(probe)
            probe.db.dispose()
            print(
                f"\nengine as shipped (open_engine, {installed}) vs the same plain sqlite3"
                f" writes: information, not like for like. {len(pairs)} cases, each its own two"
                f" EPCI (seeded in {time.perf_counter() - t0:.1f}s), {args.shipped_rounds}"
                " round(s)\n"
            )
            shipped_ratio, _, _ = throughput(shipped, workdir, args.shipped_rounds, shipped=True)
            print(f"ratio {shipped_ratio:.2f} (engine as shipped; no target)")

        ok_memory = memory(work, workdir, args.mem_cases) if args.mem_cases else True
        if args.profile:
            path = copy_db(work.template, workdir / "profile.db")
            profile_run(path, work.first(args.profile), args.top)
        if args.profile and args.profile_shipped:
            pairs = distinct_pairs()[: args.profile]
            shipped = seed(workdir / "shipped-profile.db", pairs)
            profile_run(shipped.template, shipped, args.top, shipped=True)
        return 0 if ok_ratio and ok_memory and identical else 1
    finally:
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
