"""Wires this package into an engine: hooks run inside each command's transaction,
context providers give guards read-only database facts. Called by ``bootstrap.open_engine``."""

from __future__ import annotations

from ti_workflow.engine import Engine
from ti_workflow.settings import Settings


def install(engine: Engine, settings: Settings) -> None:
    """Nothing to wire: the audit only reads the log, after the fact. Its one periodic task,
    a daily checkpoint, is ``ti_workflow.audit.take_checkpoint(engine)``, for the scheduler
    to call; the auditor's read-only role is enforced by the engine itself."""
