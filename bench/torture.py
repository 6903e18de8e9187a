"""Kill -9 at random points, restart, and check that nothing was lost (issue 12 item 15).

Three scenarios, each on real processes of the CLI (``python -m ti_workflow.cli``, no
wrapper: the pid killed is the program's own):

* ``closing``: ``scheduler tick`` running the 2023 closing sweep over many drafts
  (SQLite and PostgreSQL), killed at random instants, restarted until it finishes.
  Checks: ``audit verify`` passes, no half-moved case (each case's state and last seq
  are those of its last event), no double fire (one ``lapse`` per case), every draft
  lapsed, and the timer's outcome counts what it did across every attempt.
* ``api``: ``serve`` under bursts of writes from 4 clients (create a case, submit it),
  killed at random instants, restarted (SQLite and PostgreSQL). Checks: every write
  answered 2xx is in the database, ``audit verify`` passes, no half-moved case.
* ``mail``: ``notifications send`` to a slow SMTP server (aiosmtpd on 127.0.0.1),
  killed mid-batch, restarted. Checks: every message arrived, none is left claimed or
  pending, and messages sent twice (same Message-ID) stay within the documented bound
  (``FLUSH_EVERY`` + 1 per kill).

It prints its counts (attempts, faults, data lost) and exits 1 on any loss.

    .venv/bin/python bench/torture.py                 # the full run (several minutes)
    .venv/bin/python bench/torture.py --short         # what `make test` runs (SQLite)
    .venv/bin/python bench/torture.py --only closing --backend sqlite --rounds 5 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import httpx
from sqlalchemy import create_engine, func, select, text

from conftest import candidacy
from runtime_support import (
    CLI,
    Seeded,
    count_events,
    env_for,
    fill_outbox,
    outbox_statuses,
    run,
    start,
)
from ti_workflow.http.accounts import add_user, create_token
from ti_workflow.mail.dispatch import FLUSH_EVERY
from ti_workflow.mail.sink import RecordingHandler, start_sink
from ti_workflow.scheduling.timers import timers
from ti_workflow.settings import Settings
from ti_workflow.storage import repository as repo


@dataclass
class Tally:
    scenario: str
    backend: str
    attempts: int = 0
    faults: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def loss(self, count: int, what: str) -> None:
        if count:
            self.lost += count
            self.problems.append(f"{count} {what}")

    def line(self) -> str:
        notes = f"  ({'; '.join(self.notes)})" if self.notes else ""
        return (
            f"{self.scenario:<8} {self.backend:<10} attempts {self.attempts:>3}  "
            f"faults {self.faults:>3}  data lost {self.lost}{notes}"
        )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kill9(process: subprocess.Popen[Any]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)


def wait_or_kill(
    process: subprocess.Popen[str], rng: random.Random, ready: Any, span: float
) -> bool:
    """Wait until ``ready()`` then a random part of ``span`` seconds, and kill -9 the
    process if it is still running. True if it was killed."""
    deadline = time.monotonic() + 600
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    end = time.monotonic() + rng.uniform(0, span)
    while time.monotonic() < end and process.poll() is None:
        time.sleep(0.02)
    if process.poll() is not None:
        process.communicate()
        return False
    kill9(process)
    return True


def half_moved(url: str) -> int:
    """Cases whose row disagrees with their last event (state or sequence number)."""
    e, c = repo.events, repo.cases
    last = select(e.c.case_id, func.max(e.c.seq).label("seq")).group_by(e.c.case_id).subquery()
    query = (
        select(func.count())
        .select_from(c)
        .join(last, last.c.case_id == c.c.id)
        .join(e, (e.c.case_id == c.c.id) & (e.c.seq == last.c.seq))
        .where((c.c.state != e.c.dest) | (c.c.last_seq != last.c.seq))
    )
    db = create_engine(url)
    with db.connect() as conn:
        n = int(conn.execute(query).scalar_one())
    db.dispose()
    return n


def audit_ok(url: str, tally: Tally) -> None:
    """``ti-workflow audit verify`` (in this process: same command, no start-up)."""
    from typer.testing import CliRunner

    from ti_workflow.cli.app import app

    verified = CliRunner().invoke(app, ["audit", "verify", "--db", url])
    if verified.exit_code != 0:
        tally.loss(1, f"audit verify failure: {verified.output.strip()[:300]}")


# --- closing sweep ---------------------------------------------------------------


def closing(backend: str, drafts: int, rounds: int, kills: int, rng: random.Random) -> Tally:
    tally = Tally("closing", backend)
    with tempfile.TemporaryDirectory() as tmp:
        seed = Seeded(backend, drafts, Path(tmp))
        try:
            for _ in range(rounds):
                _closing_round(seed.copy(), drafts, kills, rng, tally)
        finally:
            seed.drop()
    return tally


def _closing_round(url: str, drafts: int, kills: int, rng: random.Random, t: Tally) -> None:
    env = env_for(url)
    threshold = rng.randrange(0, drafts)
    for _ in range(kills):
        t.attempts += 1
        tick = start("scheduler", "tick", "--no-send", env=env)
        if wait_or_kill(tick, rng, lambda k=threshold: count_events(url, "lapse") >= k, 1.5):
            t.faults += 1
        elif tick.returncode != 0:
            t.loss(1, f"tick failed without being killed (exit {tick.returncode})")
        threshold = rng.randrange(count_events(url, "lapse"), drafts + 1)
    t.attempts += 1
    final = run("scheduler", "tick", "--no-send", env=env)
    if final.returncode != 0:
        t.loss(1, f"the restarted tick failed: {final.stderr.strip()[:300]}")
    db = create_engine(url)
    with db.connect() as conn:
        per_case = Counter(
            conn.execute(select(repo.events.c.case_id).where(repo.events.c.trigger == "lapse"))
            .scalars()
            .all()
        )
        drafts_left = conn.execute(
            select(func.count()).select_from(repo.cases).where(repo.cases.c.state == "draft")
        ).scalar_one()
        row = conn.execute(select(timers).where(timers.c.name == "window_closing")).one()
    db.dispose()
    t.loss(sum(1 for n in per_case.values() if n > 1), "case(s) lapsed twice")
    t.loss(int(drafts_left), "draft(s) never lapsed")
    t.loss(half_moved(url), "half-moved case(s)")
    fired = {a["name"]: a.get("fired") for a in row.outcome.get("actions", [])}
    if row.status != "done" or fired.get("lapse") != sum(per_case.values()):
        t.loss(1, f"timer outcome {row.status} {fired} for {sum(per_case.values())} lapses")
    audit_ok(url, t)


# --- API bursts ---------------------------------------------------------------------


def workflows_open_now(where: Path) -> Path:
    workflows = where / "workflows"
    shutil.copytree(Settings().workflows_dir, workflows)
    today = date.today()
    (workflows / "campaigns" / "open-now.yaml").write_text(
        "campaign: open-now\nname: Campagne ouverte aujourd'hui\ntimezone: Europe/Paris\n"
        f"window: {{opens_on: {today - timedelta(days=1)}, "
        f"closes_on: {today + timedelta(days=30)}}}\n"
    )
    return workflows


@dataclass
class Acked:
    created: dict[int, str] = field(default_factory=dict)  # case id -> territory name
    submitted: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(base: list[str], token: str, acked: Acked, stop: threading.Event, n: int) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    i = 0
    with httpx.Client(timeout=10, headers=auth) as client:
        while not stop.is_set():
            i += 1
            name = f"Territoire {n}-{i}-{uuid.uuid4().hex[:6]}"
            try:
                r = client.post(
                    f"{base[0]}/v1/cases",
                    json={"campaign": "open-now", "data": candidacy(territory_name=name)},
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                )
                if r.status_code != 201:
                    continue
                cid = r.json()["id"]
                with acked.lock:
                    acked.created[cid] = name
                r = client.post(
                    f"{base[0]}/v1/cases/{cid}/triggers/submit", headers={"If-Match": '"1"'}
                )
                if r.status_code == 200:
                    with acked.lock:
                        acked.submitted.add(cid)
            except httpx.HTTPError:
                time.sleep(0.1)  # the server is down: it is being restarted


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/ready", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("serve did not start")


def api(backend: str, rounds: int, kills: int, rng: random.Random) -> Tally:
    tally = Tally("api", backend)
    with tempfile.TemporaryDirectory() as tmp:
        seed = Seeded(backend, 0, Path(tmp))
        try:
            for _ in range(rounds):
                _api_round(seed.copy(), Path(tmp), kills, rng, tally)
        finally:
            seed.drop()
    return tally


def _api_round(url: str, tmp: Path, kills: int, rng: random.Random, t: Tally) -> None:
    from ti_workflow.storage.database import make_engine

    env = {**env_for(url), "TI_WORKFLOW_WORKFLOWS_DIR": str(workflows_open_now(tmp / "wf"))}
    db = make_engine(url)
    now = datetime.now(UTC)
    add_user(db, "arve", "candidate", now, email="ti@arve.example.org")
    token = create_token(db, "arve", now)[0]
    db.dispose()
    port = free_port()
    base = [f"http://127.0.0.1:{port}"]
    acked, stop = Acked(), threading.Event()
    t.attempts += 1
    server = _serve(env, port)
    clients = [
        threading.Thread(target=_client, args=(base, token, acked, stop, n)) for n in range(4)
    ]
    for c in clients:
        c.start()
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.3, 2.5))
            kill9(server)
            t.faults += 1
            t.attempts += 1
            server = _serve(env, port)
        time.sleep(rng.uniform(0.3, 1.0))
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=60)
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=60)
    shutil.rmtree(tmp / "wf")
    db = create_engine(url)
    with db.connect() as conn:
        rows = dict(conn.execute(select(repo.cases.c.id, repo.cases.c.title)).all())
        submitted = set(
            conn.execute(
                select(repo.events.c.case_id).where(repo.events.c.trigger == "submit")
            ).scalars()
        )
    db.dispose()
    t.loss(
        sum(1 for cid, name in acked.created.items() if rows.get(cid) != name),
        "acked case(s) missing",
    )
    t.loss(len(acked.submitted - submitted), "acked submit(s) missing")
    t.loss(half_moved(url), "half-moved case(s)")
    t.notes.append(f"{len(acked.created)} creates and {len(acked.submitted)} submits acknowledged")
    audit_ok(url, t)


# --- mail ---------------------------------------------------------------------------


class SlowHandler(RecordingHandler):
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


def mail(backend: str, messages: int, kills: int, rng: random.Random) -> Tally:
    tally = Tally("mail", backend)
    with tempfile.TemporaryDirectory() as tmp:
        seed = Seeded(backend, 0, Path(tmp))
        try:
            url = seed.copy()
            ids = fill_outbox(url, messages)
            handler = SlowHandler()
            port = free_port()
            controller = start_sink("127.0.0.1", port, handler)
            env = env_for(url, TI_WORKFLOW_SMTP_HOST="127.0.0.1", TI_WORKFLOW_SMTP_PORT=str(port))
            try:
                for _ in range(kills):
                    tally.attempts += 1
                    # (received counts the duplicates too: it may pass ``messages``)
                    target = rng.randrange(min(len(handler.received), messages - 1), messages)
                    sender = start("notifications", "send", env=env)
                    if wait_or_kill(sender, rng, lambda k=target: len(handler.received) >= k, 0.5):
                        tally.faults += 1
                tally.attempts += 1
                final = run("notifications", "send", env=env)
                if final.returncode != 0:
                    tally.loss(1, f"the restarted sender failed: {final.stderr.strip()[:300]}")
            finally:
                controller.stop()
            got = Counter(str(m.message["Message-ID"]) for m in handler.received)
            tally.loss(len(set(ids) - set(got)), "message(s) never delivered")
            left = {k: v for k, v in outbox_statuses(url).items() if k != "sent"}
            tally.loss(sum(left.values()), f"message(s) not sent in the end {left}")
            twice = sum(n - 1 for n in got.values())
            bound = tally.faults * (FLUSH_EVERY + 1)
            if twice > bound:
                tally.loss(twice - bound, f"duplicate(s) over the bound of {bound}")
            tally.notes.append(f"{twice} sent twice (bound {bound})")
        finally:
            seed.drop()
    return tally


# --- main ---------------------------------------------------------------------------


def pg_available() -> bool:
    from conftest import PG_ADMIN_URL

    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the < 60 s form (make test)")
    parser.add_argument("--only", choices=("closing", "api", "mail"), action="append")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), action="append")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kills", type=int, default=3, help="kills per round")
    parser.add_argument("--drafts", type=int, default=1100)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)
    backends = args.backend or ["sqlite", "postgresql"]
    if "postgresql" in backends and not pg_available():
        print("PostgreSQL not reachable: SQLite only")
        backends = [b for b in backends if b != "postgresql"]
    scenarios = args.only or ["closing", "api", "mail"]
    started = time.monotonic()
    print(f"torture: seed {seed}, {'short' if args.short else 'full'} run, {', '.join(backends)}")
    tallies: list[Tally] = []
    for scenario in scenarios:
        for backend in backends:
            if args.short:  # one kill each, small sizes, SQLite only unless asked
                if backend != "sqlite" and not args.backend:
                    continue
                job = {
                    "closing": lambda b=backend: closing(b, 300, 1, 1, rng),
                    "api": lambda b=backend: api(b, 1, 1, rng),
                    "mail": lambda b=backend: mail(b, 100, 1, rng),
                }[scenario]
            else:
                job = {
                    "closing": lambda b=backend: closing(
                        b, args.drafts, args.rounds, args.kills, rng
                    ),
                    "api": lambda b=backend: api(b, args.rounds, args.kills, rng),
                    "mail": lambda b=backend: mail(b, args.messages, args.kills * args.rounds, rng),
                }[scenario]
            began = time.monotonic()
            tally = job()
            print(f"{tally.line()}  [{time.monotonic() - began:.0f} s]", flush=True)
            for problem in tally.problems:
                print(f"  LOST: {problem}", flush=True)
            tallies.append(tally)
    total = Tally("total", "")
    for t in tallies:
        total.attempts += t.attempts
        total.faults += t.faults
        total.lost += t.lost
    print(total.line() + f"  in {time.monotonic() - started:.0f} s")
    return 1 if total.lost else 0


if __name__ == "__main__":
    sys.exit(main())
