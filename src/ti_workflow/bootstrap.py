"""The one place that wires concrete adapters together: files, database, clock, engine."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine as SqlEngine

from ti_workflow.audit.install import install as install_audit
from ti_workflow.clock import Clock, SystemClock
from ti_workflow.definitions.campaigns import load_campaign
from ti_workflow.definitions.loader import load_definitions
from ti_workflow.engine import Catalog, Engine
from ti_workflow.errors import InvalidDefinition
from ti_workflow.scheduling.install import install as install_scheduling
from ti_workflow.settings import Settings
from ti_workflow.storage import catalog as stored
from ti_workflow.storage.database import check_schema, make_engine, upgrade
from ti_workflow.storage.reference_data import load_reference_data, load_referential
from ti_workflow.territories.install import install as install_territories


@dataclass(frozen=True)
class InitReport:
    reference_rows: dict[str, int]
    definitions: dict[str, str]
    new_definitions: tuple[str, ...]
    campaigns: tuple[str, ...]


def initialise(settings: Settings, clock: Clock | None = None) -> InitReport:
    """Create or upgrade the schema, load the reference data, store definitions and campaigns."""
    db = make_engine(settings.db_url)
    try:
        upgrade(db)
        with db.begin() as conn:
            counts = load_reference_data(conn)
        new, current, campaigns = _sync(db, settings, clock or SystemClock())
        return InitReport(counts, current, new, campaigns)
    finally:
        db.dispose()


def _sync(
    db: SqlEngine, settings: Settings, clock: Clock
) -> tuple[tuple[str, ...], dict[str, str], tuple[str, ...]]:
    files = settings.workflow_files()
    if not files:
        raise InvalidDefinition([f"{settings.workflows_dir}: no workflow file (*.yaml) found"])
    definitions = load_definitions(files)
    campaign_files = settings.campaign_files()
    errors: list[str] = []
    campaigns = []
    for path in campaign_files:
        try:
            campaigns.append((load_campaign(path), path.read_text(encoding="utf-8")))
        except InvalidDefinition as exc:
            errors.extend(exc.errors)
    if errors:
        raise InvalidDefinition(errors)
    now = clock.now()
    new = []
    with db.begin() as conn:
        for d in definitions:
            text = (settings.workflows_dir / _name(d.source)).read_text(encoding="utf-8")
            if stored.store_definition(conn, d, text, now):
                new.append(f"{d.name}@{d.short_version}")
        for campaign, text in campaigns:
            stored.store_campaign(conn, campaign, text, now)
    return tuple(new), {d.name: d.version for d in definitions}, tuple(c.id for c, _ in campaigns)


def _name(source: str) -> str:
    return source.replace("\\", "/").rsplit("/", 1)[-1]


def open_engine(settings: Settings, clock: Clock | None = None) -> Engine:
    """An engine over an initialised database, with the current files' definitions."""
    clock = clock or SystemClock()
    db = make_engine(settings.db_url)
    check_schema(db)
    _, current, _ = _sync(db, settings, clock)
    with db.connect() as conn:
        definitions = {d.version: d for d in stored.stored_definitions(conn)}
        campaigns = {c.id: c for c in stored.stored_campaigns(conn)}
        reference = load_referential(conn)
    catalog = Catalog(definitions, current, campaigns, reference)
    engine = Engine(db, catalog, clock)
    for install in (install_audit, install_scheduling, install_territories):
        install(engine, settings)
    return engine
