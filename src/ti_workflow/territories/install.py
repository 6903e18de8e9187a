"""Wires this package into an engine: hooks run inside each command's transaction,
context providers give guards read-only database facts. Called by ``bootstrap.open_engine``."""

from __future__ import annotations

from ti_workflow.engine import Engine
from ti_workflow.settings import Settings
from ti_workflow.territories.facts import candidacy_provider, context_provider, region_provider
from ti_workflow.territories.hooks import on_approved, on_labelled


def install(engine: Engine, settings: Settings) -> None:
    """A labelled candidacy creates its territory; an approved amendment changes it."""
    engine.hooks.append(on_labelled)
    engine.hooks.append(on_approved)
    engine.context_providers.append(context_provider(engine.clock))
    engine.context_providers.append(candidacy_provider(engine.clock))
    engine.region_providers.append(region_provider(engine.clock, engine.catalog.reference))
