"""The scheduler takes the audit's daily checkpoint when a campaign declares it."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import func, select

from conftest import paris
from ti_workflow.audit.tables import CheckpointRow
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.scheduling.sweep import sweep
from ti_workflow.settings import Settings

CHECKPOINT_TIMER = """
  - name: audit_checkpoint
    at: window.opens_on
    time: "01:00"
    every: P1D
    actions: [{job: audit_checkpoint}]
    late: fire
"""


def test_daily_checkpoint_runs_once_per_day_and_catches_up_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    workflows = tmp_path / "workflows"
    shutil.copytree(Settings().workflows_dir, workflows)
    campaign = workflows / "campaigns" / "ti-2023-2027.yaml"
    campaign.write_text(campaign.read_text(encoding="utf-8") + CHECKPOINT_TIMER, encoding="utf-8")
    clock = SimulatedClock(paris("2023-06-23T02:00:00"))
    engine = open_engine(Settings(db_url=sqlite_url, workflows_dir=workflows), clock)
    table = CheckpointRow.__table__  # type: ignore[attr-defined]

    def checkpoints() -> int:
        with engine.db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    try:
        done = [t for t in sweep(engine).timers if t["name"] == "audit_checkpoint"]
        assert [t["status"] for t in done] == ["done"] and checkpoints() == 1
        assert [t for t in sweep(engine).timers if t["name"] == "audit_checkpoint"] == []
        assert checkpoints() == 1, "a second sweep the same day takes no second checkpoint"
        clock.set(paris("2023-06-27T09:00:00"))  # the scheduler was down for four days
        done = [t for t in sweep(engine).timers if t["name"] == "audit_checkpoint"]
        assert len(done) == 1 and checkpoints() == 2, "one catch-up checkpoint, not four"
    finally:
        engine.db.dispose()
