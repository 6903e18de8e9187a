"""Wires the audit into an engine: its daily checkpoint is a named scheduler job.

The audit only reads the log after the fact (no hook); the auditor's read-only role is
enforced by the engine itself. A campaign file runs the checkpoint with a timer such as
``{name: audit_checkpoint, ..., every: P1D, actions: [{job: audit_checkpoint}]}``; its
root is stored in ``audit_checkpoints`` and in the timer row's outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ti_workflow.audit.checkpoints import take_checkpoint
from ti_workflow.engine import Engine
from ti_workflow.scheduling.jobs import JobContext, register_job
from ti_workflow.settings import Settings


@register_job("audit_checkpoint")
def daily_checkpoint(ctx: JobContext) -> Mapping[str, Any]:
    checkpoint = take_checkpoint(ctx.engine)
    return {"checkpoint": checkpoint.id, "root": checkpoint.root, "cases": checkpoint.cases}


def install(engine: Engine, settings: Settings) -> None:
    """Nothing to attach to the engine: the job above is registered on import."""
