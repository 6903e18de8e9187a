"""Wires the connector into an engine (``bootstrap.open_engine``) when a procedure is set,
and registers the scheduler jobs ``ds_sync`` and ``ds_push``."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ti_workflow.ds import store
from ti_workflow.ds.client import DsClient
from ti_workflow.ds.errors import DsNotConfigured, MappingError
from ti_workflow.ds.mapping import DsMapping, load_mapping
from ti_workflow.ds.outbox import hook
from ti_workflow.ds.push import Pusher, PushReport
from ti_workflow.ds.sync import Syncer, SyncReport
from ti_workflow.engine import Engine
from ti_workflow.scheduling.jobs import JobContext, register_job
from ti_workflow.settings import Settings


@dataclass(frozen=True)
class Connector:
    engine: Engine
    settings: Settings
    mapping: DsMapping

    @property
    def procedure(self) -> int:
        assert self.settings.ds_procedure is not None
        return self.settings.ds_procedure

    def client(self) -> DsClient:
        return DsClient.from_settings(self.settings)

    def sync(self, since: Any = None) -> SyncReport:
        with self.client() as client:
            return Syncer(self.engine, client, self.mapping, self.procedure).run(since)

    def push(self, limit: int = 200) -> PushReport:
        instructeur = self.settings.ds_instructeur_id
        if not instructeur:
            raise DsNotConfigured(
                "set TI_WORKFLOW_DS_INSTRUCTEUR (the id of the instructeur DS records the "
                "changes as) before pushing to Démarches Simplifiées"
            )
        with self.client() as client:
            return Pusher(self.engine.db, client, instructeur, self.engine.clock).push_due(limit)


_INSTALLED: weakref.WeakKeyDictionary[Engine, Connector] = weakref.WeakKeyDictionary()


def connector_of(engine: Engine) -> Connector:
    found = _INSTALLED.get(engine)
    if found is None:
        raise DsNotConfigured(
            "Démarches Simplifiées is not configured: set TI_WORKFLOW_DS_PROCEDURE "
            "(and TI_WORKFLOW_DS_TOKEN, TI_WORKFLOW_DS_INSTRUCTEUR; see docs/ds.md)"
        )
    return found


def install(engine: Engine, settings: Settings) -> None:
    """With a procedure number set: check the mapping and hook the connector in."""
    if settings.ds_procedure is None:
        return
    store.check_tables(engine.db)  # else every review start would fail on a missing table
    mapping = load_mapping(settings.ds_mapping_path)
    errors = []
    if mapping.workflow not in engine.catalog.current:
        errors.append(f"{mapping.source}: workflow: no workflow {mapping.workflow!r}")
    campaign = engine.catalog.campaigns.get(mapping.campaign)
    if campaign is None:
        errors.append(f"{mapping.source}: campaign: no campaign {mapping.campaign!r}")
    elif not any(t.name == mapping.decision_timer for t in campaign.timers):
        names = ", ".join(t.name for t in campaign.timers)
        errors.append(
            f"{mapping.source}: decision_timer: campaign {campaign.id!r} has no timer "
            f"{mapping.decision_timer!r} (timers: {names})"
        )
    if errors:
        raise MappingError(errors)
    engine.hooks.append(hook(mapping))
    _INSTALLED[engine] = Connector(engine, settings, mapping)


@register_job("ds_sync")
def ds_sync_job(ctx: JobContext) -> Mapping[str, Any]:
    """Campaign timer job: ``actions: [{job: ds_sync}]`` with ``every: PT15M``."""
    return connector_of(ctx.engine).sync().as_dict()


@register_job("ds_push")
def ds_push_job(ctx: JobContext) -> Mapping[str, Any]:
    return connector_of(ctx.engine).push().as_dict()
