"""Issue 12 item 12: ``serve --workers 2`` on a busy machine starts, answers, and says
when a worker dies; a worker imports the application, not the whole CLI."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from test_api_cli import CLI, make_env
from test_api_fixtures import free_port

IMPORT_CLI = re.compile(r"\|\s+ti_workflow\.cli\.app$", re.MULTILINE)


def _import_seconds(statement: str) -> float:
    code = f"import time; t = time.process_time(); {statement}; print(time.process_time() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_two_workers_start_under_cpu_load_and_a_dead_worker_is_logged(
    tmp_path: Path, sqlite_url: str
) -> None:
    light = _import_seconds("import ti_workflow.http.worker")
    heavy = _import_seconds("import ti_workflow.cli.app, ti_workflow.http.worker")
    print(f"worker import: {light:.2f} s CPU (it was {heavy:.2f} s with the CLI)")
    env = {**make_env(tmp_path, sqlite_url), "PYTHONPROFILEIMPORTTIME": "1"}
    burners = [  # every core busy, as on the machine where the workers restarted forever
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)
    ]
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        answered = 0
        while answered < 10:  # both workers up: several answers in a row
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "serve never answered under load"
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).status_code
                answered = answered + 1 if ok == 200 else 0
            except httpx.TransportError:
                answered = 0
            time.sleep(0.2)
        for burner in burners:
            burner.kill()
            burner.wait()
        workers = _children(server.pid)
        workers = [w for w in workers if "spawn_main" in _cmdline(w)]
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while f"Child process [{workers[0]}] died" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=30).status_code == 200
    finally:
        for burner in burners:
            burner.kill()
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    text = log.read_text()
    assert "died" not in text.replace(f"Child process [{workers[0]}] died", "")
    # The parent imported the CLI once; the workers (three started) never did.
    assert len(IMPORT_CLI.findall(text)) == 1


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""
