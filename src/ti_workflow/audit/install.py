"""Wires this package into an engine: hooks run inside each command's transaction,
context providers give guards read-only database facts. Called by ``bootstrap.open_engine``."""

from __future__ import annotations

from ti_workflow.engine import Engine
from ti_workflow.settings import Settings


def install(engine: Engine, settings: Settings) -> None:
    """Nothing to wire yet."""
