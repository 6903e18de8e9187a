"""Issue 12 item 15: the outside pass kept in the project. ``bench/torture.py --short``
kills a real closing sweep, a real ``serve`` under write bursts
and a real sender mid-batch with SIGKILL, restarts them, and exits 1 on any loss (SQLite; the
PostgreSQL kills are in test_runtime_crashes.py and the full run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TORTURE = Path(__file__).resolve().parents[1] / "bench" / "torture.py"


def test_kill_9_at_random_points_loses_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(TORTURE), "--short"], capture_output=True, text=True, timeout=900
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "data lost 0" in done.stdout.splitlines()[-1]
    assert "faults   0" not in done.stdout.splitlines()[-1]  # something was killed
