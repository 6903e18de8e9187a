"""Issue 12 item 14: on a SQLite file busy with writes from another process (the API, the
scheduler), a CLI write takes its turn in the same queue, says it is waiting, and gets
through, instead of polling SQLite's lock for up to 30 s and failing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from runtime_support import CLI, env_for

BUSY = """
import sys, time
from sqlalchemy import text
from ti_workflow.storage.database import make_engine
db = make_engine(sys.argv[1])
end = time.monotonic() + float(sys.argv[2])
n = 0
while time.monotonic() < end:  # back to back, like a busy API writer: no pause between
    with db.begin() as conn:
        conn.execute(text("UPDATE scheduler_locks SET holder = holder"))
        time.sleep(0.03)
    n += 1
print(n)
"""


def test_a_cli_write_takes_its_turn_behind_a_busy_writer(sqlite_url: str, tmp_path: Path) -> None:
    busy = subprocess.Popen(
        [sys.executable, "-c", BUSY, sqlite_url, "60"], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(3)  # the busy writer is started and writing
        assert busy.poll() is None
        started = time.monotonic()
        done = subprocess.run(
            [*CLI, "users", "add", "audit", "--role", "auditor"],
            env=env_for(sqlite_url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        took = time.monotonic() - started
    finally:
        busy.kill()
        busy.communicate()
    assert done.returncode == 0, done.stderr
    assert "waiting for the write lock" in done.stderr
    assert f"{os.uname().nodename}:{busy.pid}" in done.stderr  # who holds it
    assert "database is locked" not in done.stderr
    print(f"`users add` beside a writer that never pauses: {took:.1f} s (start-up included)")


def test_two_threads_of_one_process_take_turns(sqlite_url: str) -> None:
    """One descriptor per connection: threads queue like processes; a read beside a write
    of the same thread does not wait."""
    import threading

    from sqlalchemy import text

    from ti_workflow.storage.database import make_engine, read

    db = make_engine(sqlite_url)
    order: list[str] = []

    def write(name: str) -> None:
        with db.begin() as conn:
            order.append(f"{name} in")
            conn.execute(text("UPDATE scheduler_locks SET holder = holder"))
            time.sleep(0.2)
            order.append(f"{name} out")

    threads = [threading.Thread(target=write, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(timeout=30)
    assert order == ["a in", "a out", "b in", "b out"]
    with db.begin() as outer:
        outer.execute(text("UPDATE scheduler_locks SET holder = holder"))
        with read(db) as inner:  # a read beside it never waits
            assert inner.execute(text("SELECT count(*) FROM scheduler_locks")).scalar() == 0
    db.dispose()
