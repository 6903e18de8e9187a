"""Named jobs a campaign timer may run (``actions: [{job: NAME}]``): the extension point.

Another package registers a job in its ``install`` (which ``bootstrap`` calls before
the scheduling one), e.g. the audit's daily checkpoint::

    from ti_workflow.scheduling.jobs import JobContext, register_job

    @register_job("audit_checkpoint")
    def checkpoint(ctx: JobContext) -> dict[str, object]:
        ...  # runs once per due timer row, after the row is claimed
        return {"checkpoint": 42}            # stored in the timer row's outcome

and a campaign file declares when it runs (``every: P1D`` repeats it daily).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ti_workflow.engine import Engine


@dataclass(frozen=True)
class JobContext:
    engine: Engine
    campaign_id: str
    timer_name: str
    due_at: datetime
    now: datetime
    late: bool


Job = Callable[[JobContext], Mapping[str, Any]]
JOBS: dict[str, Job] = {}


def register_job(name: str) -> Callable[[Job], Job]:
    def decorate(fn: Job) -> Job:
        JOBS[name] = fn
        return fn

    return decorate
