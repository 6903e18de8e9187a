"""The one place that wires concrete adapters together: files, database, clock, engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine as SqlEngine

from ti_workflow.audit.install import install as install_audit
from ti_workflow.clock import Clock, SystemClock
from ti_workflow.definitions.campaigns import load_campaign
from ti_workflow.definitions.loader import load_definitions
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.definition import Definition
from ti_workflow.engine import Catalog, Engine
from ti_workflow.errors import InvalidDefinition
from ti_workflow.files.install import install as install_files
from ti_workflow.files.store import FileStore
from ti_workflow.scheduling.install import campaign_timer_errors
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


def initialise(
    settings: Settings, clock: Clock | None = None, check_jobs: bool = False
) -> InitReport:
    """Create or upgrade the schema, load the reference data, store definitions and campaigns.

    ``check_jobs``: campaign timers may only name jobs registered in this process (the
    command line's; a program registering its own jobs after ``initialise`` leaves it off).
    """
    db = make_engine(settings.db_url)
    try:
        upgrade(db)
        with db.begin() as conn:
            counts = load_reference_data(conn)
        synced = _sync(db, settings, clock or SystemClock(), check_jobs)
        return InitReport(counts, synced.current, synced.new, tuple(c.id for c in synced.campaigns))
    finally:
        db.dispose()


@dataclass(frozen=True)
class _Files:
    """The workflow and campaign files as read (and stored) at start-up."""

    definitions: tuple[Definition, ...]
    campaigns: tuple[Campaign, ...]
    new: tuple[str, ...]

    @property
    def current(self) -> dict[str, str]:
        return {d.name: d.version for d in self.definitions}


def _sync(db: SqlEngine, settings: Settings, clock: Clock, check_jobs: bool = False) -> _Files:
    """Read and check every file, store new definition versions and campaign changes."""
    files = settings.workflow_files()
    if not files:
        raise InvalidDefinition([f"{settings.workflows_dir}: no workflow file (*.yaml) found"])
    definitions = load_definitions(files)
    errors: list[str] = []
    campaigns = []
    partial = []  # what parsed of a wrong campaign file: its timers are checked too
    for path in settings.campaign_files():
        try:
            campaigns.append((load_campaign(path), path.read_text(encoding="utf-8")))
        except InvalidDefinition as exc:
            errors.extend(exc.errors)
            partial += [exc.partial] if exc.partial is not None else []
    current = {d.name: d for d in definitions}
    checked = [*(c for c, _ in campaigns), *partial]
    errors += campaign_timer_errors(current, checked, jobs=check_jobs)
    if errors:  # nothing stored: a file that names what the others lack is refused whole
        raise InvalidDefinition(errors)
    now = clock.now()
    new = []
    with db.begin() as conn:
        for d in definitions:
            text = Path(d.source).read_text(encoding="utf-8")
            if stored.store_definition(conn, d, text, now):
                new.append(f"{d.name}@{d.short_version}")
        for campaign, text in campaigns:
            stored.store_campaign(conn, campaign, text, now)
    return _Files(tuple(definitions), tuple(c for c, _ in campaigns), tuple(new))


def open_engine(settings: Settings, clock: Clock | None = None) -> Engine:
    """An engine over an initialised database, with the current files' definitions."""
    clock = clock or SystemClock()
    db = make_engine(settings.db_url)
    check_schema(db)
    synced = _sync(db, settings, clock)
    with db.connect() as conn:
        known = {d.version: d for d in synced.definitions}
        definitions = {**stored.past_definitions(conn, set(known)), **known}
        campaigns = {c.id: c for c in stored.stored_campaigns(conn)}
        reference = load_referential(conn)
    catalog = Catalog(definitions, synced.current, campaigns, reference)
    engine = Engine(db, catalog, clock, files=FileStore(settings.files_root))
    for install in (install_files, install_audit, install_scheduling, install_territories):
        install(engine, settings)
    return engine
