"""api: the HTTP fire path under load, next to the engine's in-process rate.

Starts ``ti-workflow serve`` on 127.0.0.1 (a free port), seeds N candidacies in a
campaign open today (``serve`` uses the real clock), then 50 concurrent clients each
take cases from a queue and drive them through 5 fires over HTTP (submit by the
candidate, start_regional_review and label by the national committee, give_opinion
by the regional council and the State services of region 84): fires per second and
p50/p99 latency. The same 5 fires are run in-process through ``Engine.fire`` on an
identically seeded database, and ``bench/fire_throughput.py``'s own engine loop
(its function, unchanged) gives the reference in-process rate, all in the same run.
SQLite with one worker and with ``--workers`` processes (they take turns to write
through a lock file), then fewer clients (``--sweep``) to show the latency at lower
concurrency, and PostgreSQL with ``--workers`` processes. Each run has its own
database. The framework's floor (``GET /v1/health``, no database) is measured at the
same concurrency. Bounded in count (``--cases``) and time (``--max-seconds`` per load
run); loopback only. The load generator is a minimal HTTP/1.1 client on asyncio
streams (httpx would take ~3.8 ms of CPU per request from the server's two cores).

Targets (issue 5): HTTP >= 0.3 x in-process rate, p99 < 50 ms at 50 clients on SQLite.
Exit status 1 when a target is missed.

    .venv/bin/python bench/api.py [--cases 250] [--clients 50] [--workers 2] [--sweep 5,10,20]
                                  [--no-pg] [--no-sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fire_throughput

from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.domain.actors import Actor
from ti_workflow.http import accounts
from ti_workflow.settings import Settings

PG_ADMIN = os.environ.get(
    "TI_WORKFLOW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CAMPAIGN = "bench-open-now"
EMAIL = "bench@territoires.example.org"
OPINION = {"opinion": "favourable", "reasons": "Cohérent avec le SRDEII."}
STEPS = (
    ("submit", "candidate", None),
    ("start_regional_review", "committee", None),
    ("give_opinion", "council", OPINION),
    ("give_opinion", "state", OPINION),
    ("label", "committee", None),
)
REGIONAL = {"council": "regional_council", "state": "state_services"}
NATIONAL = {"candidate": "candidate", "committee": "national_committee"}


def actor(who: str, region: str) -> Actor:
    if who in REGIONAL:
        return Actor(REGIONAL[who], region=region)
    return Actor(NATIONAL[who], email=EMAIL if who == "candidate" else None)


def workflows_with_open_campaign(workdir: Path) -> Path:
    target = workdir / "workflows"
    shutil.copytree(Settings().workflows_dir, target)
    today = date.today()
    (target / "campaigns" / f"{CAMPAIGN}.yaml").write_text(
        f"campaign: {CAMPAIGN}\nname: Bench campaign open today\ntimezone: Europe/Paris\n"
        f"window: {{opens_on: {today - timedelta(days=1)}, "
        f"closes_on: {today + timedelta(days=30)}}}\n"
    )
    return target


PAIRS = fire_throughput.distinct_pairs()
"""A labelled candidacy becomes a territory and a groupement belongs to one territory only:
each case gets its own two EPCI of one region (598 such pairs in the 2023 data), split
between the HTTP run and the in-process run of one database. Opinions come from the
bodies of that region."""


def seed(url: str, cases: int, offset: int = 0) -> list[tuple[int, str]]:
    engine = open_engine(Settings.from_env(db_url=url))
    who = actor("candidate", "")
    seeded = []
    for i in range(offset, min(offset + cases, len(PAIRS))):
        members, region = PAIRS[i]
        data = {**fire_throughput.candidacy(i, members), "contact_email": EMAIL}
        seeded.append((engine.create_case("candidacy", CAMPAIGN, data, who).id, region))
    engine.db.dispose()
    return seeded


def tokens(url: str, regions: set[str]) -> dict[str, str]:
    """One user and token per national role, and per regional body of each region."""
    engine = open_engine(Settings.from_env(db_url=url))
    now = datetime.now(UTC)
    users: dict[str, tuple[str, str | None]] = {n: (r, None) for n, r in NATIONAL.items()}
    for region in regions:
        users.update({f"{name}:{region}": (role, region) for name, role in REGIONAL.items()})
    out = {}
    for name, (role, body_region) in users.items():
        login = f"bench-{name.replace(':', '-')}-{uuid.uuid4().hex[:6]}"
        email = EMAIL if role == "candidate" else None
        accounts.add_user(engine.db, login, role, now, body_region, email)
        out[name] = accounts.create_token(engine.db, login, now)[0]
    engine.db.dispose()
    return out


def in_process(url: str, cases: list[tuple[int, str]]) -> tuple[float, int]:
    """The same fires through Engine.fire, one after the other (the engine's own rate)."""
    engine = open_engine(Settings.from_env(db_url=url))
    fires = 0
    t0 = time.perf_counter()
    for trigger, who, payload in STEPS:
        for cid, region in cases:
            engine.fire(cid, trigger, actor(who, region), payload)
            fires += 1
    elapsed = time.perf_counter() - t0
    engine.db.dispose()
    return fires / elapsed, fires


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "TI_WORKFLOW_DB": url}
    cmd = [
        sys.executable,
        "-m",
        "ti_workflow.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    log = open(os.environ.get("BENCH_API_SERVER_LOG", os.devnull), "ab")  # noqa: SIM115
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/v1/ready", timeout=2).status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            break
        time.sleep(0.2)
    server.terminate()
    raise SystemExit("serve did not become ready")


class Connection:
    """One keep-alive HTTP/1.1 connection over asyncio streams: the load generator.

    httpx costs ~3.8 ms of CPU per request here, which on a 2-core machine is CPU taken
    from the server under test; this client costs ~0.07 ms. It speaks just what the bench
    needs (JSON POST, Content-Length responses) and is checked against every response's
    status line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def request(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, bytes]:
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(data)}\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + data)
        response = await self.reader.readuntil(b"\r\n\r\n")
        lines = response.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def load(
    base: str,
    toks: dict[str, str],
    cases: list[tuple[int, str]],
    clients: int,
    max_s: float,
    warmup: int = 10,
) -> dict[str, Any]:
    """Drive ``cases`` (after ``warmup`` of them, untimed) through STEPS from ``clients``
    concurrent connections: the timed fires' rate and latency percentiles."""
    host, port = base.removeprefix("http://").split(":")
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    latencies: list[float] = []
    errors: dict[int | str, int] = {}
    samples: dict[int, str] = {}
    deadline = time.perf_counter() + max_s
    conns = [await Connection.open(host, int(port)) for _ in range(clients)]
    for conn in conns:  # one warm-up request per connection, not timed
        await conn.request("GET", "/v1/health")
    warm, cases = cases[:warmup], cases[warmup:]
    for cid, region in warm:  # the fire path once per step, untimed (templates, caches)
        for trigger, who, payload in STEPS:
            token = toks[f"{who}:{region}"] if who in REGIONAL else toks[who]
            await conns[0].request("POST", f"/v1/cases/{cid}/triggers/{trigger}", token, payload)
    for case in cases:
        queue.put_nowait(case)

    async def worker(conn: Connection) -> None:
        while time.perf_counter() < deadline:
            try:
                cid, region = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            for trigger, who, payload in STEPS:
                token = toks[f"{who}:{region}"] if who in REGIONAL else toks[who]
                t0 = time.perf_counter()
                try:
                    status, body = await conn.request(
                        "POST", f"/v1/cases/{cid}/triggers/{trigger}", token, payload
                    )
                except (OSError, asyncio.IncompleteReadError) as exc:
                    name = type(exc).__name__
                    errors[name] = errors.get(name, 0) + 1
                    return
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors[status] = errors.get(status, 0) + 1
                    samples.setdefault(status, f"{trigger}: {body[:300]!r}")
                    break

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(conn) for conn in conns))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    for conn in conns:
        conn.close()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return {
        "fires": len(latencies),
        "seconds": elapsed,
        "rate": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "max_ms": latencies[-1] * 1000,
        "client_cpu_ms": cpu / max(1, len(latencies)) * 1000,
        "errors": errors,
        "error_samples": samples,
    }


def server_cpu(server: subprocess.Popen[bytes]) -> float:
    """CPU seconds used so far by the server process and its (worker) children."""
    pids = [server.pid]
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


async def floor(base: str, clients: int, requests: int) -> dict[str, Any]:
    """The framework alone: ``GET /v1/health`` (no database, no auth) from ``clients``
    connections; what any route costs before it does anything."""
    host, port = base.removeprefix("http://").split(":")
    conns = [await Connection.open(host, int(port)) for _ in range(clients)]
    for conn in conns:
        await conn.request("GET", "/v1/health")
    latencies: list[float] = []
    left = iter(range(requests))

    async def worker(conn: Connection) -> None:
        for _ in left:
            t0 = time.perf_counter()
            await conn.request("GET", "/v1/health")
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(conn) for conn in conns))
    elapsed = time.perf_counter() - t0
    for conn in conns:
        conn.close()
    q = statistics.quantiles(sorted(latencies), n=100)
    return {"rate": len(latencies) / elapsed, "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000}


def run_backend(
    name: str,
    url: str,
    cases: int,
    clients: int,
    workers: int,
    max_s: float,
    with_floor: bool = False,
) -> dict[str, Any]:
    """Seed ``url``, measure the in-process rate on half the cases, then serve it with
    ``workers`` processes and drive the other half over HTTP."""
    cases = min(cases, len(PAIRS) // 2)  # HTTP and in-process cases: distinct perimeters
    http_cases = seed(url, cases)
    local_cases = seed(url, cases, offset=cases)
    toks = tokens(url, {region for _, region in http_cases})
    rate_local, _ = in_process(url, local_cases)
    server, base = start_server(url, workers)
    try:
        cpu0 = server_cpu(server)
        result = asyncio.run(load(base, toks, http_cases, clients, max_s))
        result["server_cpu_ms"] = (server_cpu(server) - cpu0) / max(1, result["fires"]) * 1000
        if with_floor:
            result["floor"] = asyncio.run(floor(base, clients, 5_000))
    finally:
        server.terminate()
        server.wait(timeout=30)
    result.update(backend=name, workers=workers, clients=clients, in_process=rate_local)
    return result


def reference_rate(workdir: Path, cases: int) -> float:
    """bench/fire_throughput.py's loop with the engine as shipped (hooks on), 2023 clock."""
    perimeters = fire_throughput.distinct_pairs()[:cases]
    work = fire_throughput.seed(workdir / "ref" / "seed.db", perimeters)
    path = fire_throughput.copy_db(work.template, workdir / "ref" / "run.db")
    side = fire_throughput.EngineSide(path, work, shipped=True)
    elapsed = fires = 0.0
    for phase in fire_throughput.PHASES:
        seconds, n, _ = side.run(phase)
        elapsed, fires = elapsed + seconds, fires + n
    side.close()
    return fires / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases", type=int, default=250, help="cases per load run (5 fires each; at most 299)"
    )
    parser.add_argument("--clients", type=int, default=50, help="concurrent HTTP clients")
    parser.add_argument(
        "--workers", type=int, default=2, help="uvicorn workers (SQLite also runs with 1)"
    )
    parser.add_argument(
        "--sweep",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[5, 10, 20],
        help="other client counts to run on SQLite with --workers (comma-separated)",
    )
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time bound per load run")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    (workdir / "ref").mkdir()
    os.environ["TI_WORKFLOW_WORKFLOWS_DIR"] = str(workflows_with_open_campaign(workdir))
    print("api: HTTP fire path (ti-workflow serve) vs in-process Engine.fire")
    print(f"date     {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(
        f"python   {platform.python_version()}  machine {platform.machine()}  cpus {os.cpu_count()}"
    )
    print(
        f"load     {args.clients} concurrent clients, "
        f"{args.cases} cases x {len(STEPS)} fires, loopback"
    )
    results = []
    try:
        reference = reference_rate(workdir, args.cases)
        print(f"fire_throughput engine as shipped (in-process, SQLite): {reference:,.0f} fires/s")
        if not args.no_sqlite:
            runs = [(args.clients, w) for w in sorted({1, args.workers})]
            runs += [(c, args.workers) for c in args.sweep if c != args.clients]
            for n, (clients, workers) in enumerate(runs):
                sqlite_url = f"sqlite:///{workdir / f'api-{n}.db'}"
                initialise(Settings.from_env(db_url=sqlite_url))
                results.append(
                    run_backend(
                        "sqlite",
                        sqlite_url,
                        args.cases,
                        clients,
                        workers,
                        args.max_seconds,
                        with_floor=n == 0,
                    )
                )
        if not args.no_pg:
            name = f"ti_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            pg_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
            try:
                initialise(Settings.from_env(db_url=pg_url))
                results.append(
                    run_backend(
                        "postgresql",
                        pg_url,
                        args.cases,
                        args.clients,
                        args.workers,
                        args.max_seconds,
                    )
                )
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\n{'backend':<11}{'workers':>8}{'clients':>8}{'fires':>7}{'HTTP/s':>9}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'max ms':>8}{'srv CPU ms':>11}{'cli CPU ms':>11}{'in-proc/s':>11}"
        f"{'ratio':>7}{'ratio ft':>9}  errors"
    )
    for r in results:
        print(
            f"{r['backend']:<11}{r['workers']:>8}{r['clients']:>8}{r['fires']:>7}"
            f"{r['rate']:>9.0f}{r['p50_ms']:>8.1f}{r['p99_ms']:>8.1f}{r['max_ms']:>8.1f}"
            f"{r['server_cpu_ms']:>11.2f}{r['client_cpu_ms']:>11.2f}{r['in_process']:>11.0f}"
            f"{r['rate'] / r['in_process']:>7.2f}{r['rate'] / reference:>9.2f}  "
            f"{r['errors'] or '-'}"
        )
        for status, sample in r["error_samples"].items():
            print(f"    {status}: {sample}")
    for r in results:
        if "floor" in r:
            f = r["floor"]
            print(
                f"\nframework floor (GET /v1/health, {r['clients']} clients, {r['workers']} "
                f"worker): {f['rate']:,.0f} req/s, p50 {f['p50_ms']:.1f} ms, "
                f"p99 {f['p99_ms']:.1f} ms"
            )
    if not results or results[0]["backend"] != "sqlite":
        return 0
    at_target = [r for r in results if r["backend"] == "sqlite" and r["clients"] == args.clients]
    best = max(at_target, key=lambda r: r["rate"])
    ratio = best["rate"] / best["in_process"]
    print(
        f"\ntarget SQLite, {args.clients} clients ({best['workers']} worker(s)): "
        f"ratio >= 0.3 -> {ratio:.2f} ({'met' if ratio >= 0.3 else 'NOT met'}); "
        f"p99 < 50 ms -> {best['p99_ms']:.1f} ms ({'met' if best['p99_ms'] < 50 else 'NOT met'})"
    )
    return 0 if ratio >= 0.3 and best["p99_ms"] < 50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
