"""Wires scheduling and mail into an engine (called by ``bootstrap.open_engine``).

At install: the address directory is read, every notification template is checked,
and campaign timers are checked against the workflows they act on. Then one hook is
appended to ``engine.hooks``; inside each command's transaction it queues the
notifications declared ``when:`` a trigger happens, creates the case timers that an
event starts (``P14D`` after ``return_for_completion``) and cancels those whose case
left the states they act in.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, update

from ti_workflow.definitions.timers import workflow_specs
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.definition import Definition
from ti_workflow.domain.events import Event
from ti_workflow.domain.timers import NotificationSpec
from ti_workflow.engine import Change, Engine
from ti_workflow.errors import InvalidDefinition
from ti_workflow.mail.directory import load_directory
from ti_workflow.mail.errors import InvalidDirectory, InvalidTemplate
from ti_workflow.mail.outbox import Composer
from ti_workflow.mail.render import CAUSES, Renderer
from ti_workflow.scheduling.jobs import JOBS
from ti_workflow.scheduling.timers import PENDING_OF_CASE, insert_timer, timers
from ti_workflow.settings import Settings
from ti_workflow.storage.repository import StoredCase, select_rows

ESCALATION = "timer_escalated"


@dataclass(frozen=True)
class Scheduling:
    settings: Settings
    composer: Composer

    def notification(self, definition: Any, name: str) -> NotificationSpec:
        for spec in workflow_specs(definition)[1]:
            if spec.name == name:
                return spec
        raise InvalidDefinition([f"{definition.source}: notifications: no {name!r}"])


_INSTALLED: weakref.WeakKeyDictionary[Engine, Scheduling] = weakref.WeakKeyDictionary()
_RENDERERS: dict[str, Renderer] = {}
_CHECKED: set[Any] = set()
"""One renderer (compiled templates) per directory and process, checked once per state of
its files: many engines in one process (tests, the API) check the templates once."""


def scheduling_of(engine: Engine) -> Scheduling:
    found = _INSTALLED.get(engine)
    if found is None:
        raise RuntimeError("scheduling is not installed on this engine (use bootstrap)")
    return found


def install(engine: Engine, settings: Settings) -> None:
    folder = settings.notifications_dir
    if not folder.is_dir():
        raise InvalidTemplate([f"{folder}: no such directory (TI_WORKFLOW_NOTIFICATIONS_DIR)"])
    directory = load_directory(settings.directory_path)
    reference = engine.catalog.reference
    concerned = {r for g in reference.groupements.values() for r in g.regions}
    uncovered = directory.uncovered(reference.regions, concerned)
    if uncovered:
        raise InvalidDirectory(uncovered)
    specs: dict[str, NotificationSpec] = {}
    for version in engine.catalog.current.values():
        for spec in workflow_specs(engine.catalog.definition(version))[1]:
            specs.setdefault(spec.name, spec)
    campaigns: list[Campaign | None] = [*engine.catalog.campaigns.values()] or [None]
    causes = _causes(engine, specs.values())
    key = (
        str(folder),
        tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())),
        tuple(sorted(specs.items())),
        repr([(c.id, sorted(c.parameters.items())) if c else None for c in campaigns]),
        tuple(sorted(causes.items())),
    )
    if key in _CHECKED:
        renderer = _RENDERERS[str(folder)]
    else:  # new or edited templates: compile afresh, then check
        renderer = _RENDERERS[str(folder)] = Renderer(folder)
    composer = Composer(renderer, directory, engine.catalog.reference, settings.mail_from)
    if key not in _CHECKED:
        renderer.check(specs.values(), [_sample(composer, c) for c in campaigns], causes)
        _CHECKED.add(key)
    _check_campaign_timers(engine)
    engine.hooks.append(_hook(composer))
    _INSTALLED[engine] = Scheduling(settings, composer)


def _causes(engine: Engine, specs: Iterable[NotificationSpec]) -> dict[str, frozenset[str]]:
    """What sends each notification: ``event`` (its ``when:``) and/or ``timer`` (a case
    timer's ``notify:``, a campaign timer's ``notify`` action, an escalation). Templates
    are rendered at load as each cause gives them: a timer gives no ``event``."""
    causes: dict[str, set[str]] = {}
    for spec in specs:
        found = causes.setdefault(spec.name, set())
        if spec.when:
            found.add("event")
        if spec.scope != "case" or spec.name == ESCALATION:
            found.add("timer")
    for version in engine.catalog.current.values():
        for timer in workflow_specs(engine.catalog.definition(version))[0]:
            if timer.notify:
                causes.setdefault(timer.notify, set()).add("timer")
    for campaign in engine.catalog.campaigns.values():
        for campaign_timer in campaign.timers:
            for action in campaign_timer.actions:
                if action.kind == "notify":
                    causes.setdefault(action.name, set()).add("timer")
    return {name: frozenset(found or CAUSES) for name, found in causes.items()}


def _check_campaign_timers(engine: Engine) -> None:
    catalog = engine.catalog
    current = {name: catalog.current_definition(name) for name in catalog.current}
    errors = campaign_timer_errors(current, catalog.campaigns.values(), jobs=True)
    if errors:
        raise InvalidDefinition(errors)


def _delay_parameter_errors(definitions: Mapping[str, Definition], campaign: Campaign) -> list[str]:
    """Case timers whose delay is a campaign parameter (``delay: parameters.<name>``): the
    campaigns that set it give an ISO 8601 duration (the others start no such timer)."""
    errors = []
    for workflow in definitions.values():
        for timer in workflow_specs(workflow)[0]:
            if timer.delay_parameter is None:
                continue
            try:
                timer.delay_for(campaign.parameters)
            except ValueError as exc:
                errors.append(
                    f"{campaign.source}: parameters.{timer.delay_parameter} (delay of timer "
                    f"{timer.name!r} of {workflow.source}): {exc}"
                )
    return errors


def campaign_timer_errors(
    definitions: Mapping[str, Definition], campaigns: Iterable[Campaign], jobs: bool = False
) -> list[str]:
    """What the campaign timers name that the workflow files do not have: a workflow, a
    state, a trigger, a notification, the ``context:`` it needs; with ``jobs``, a job
    registered in this process. Run by ``validate``, ``init`` and at every engine start."""
    errors: list[str] = []
    for campaign in campaigns:
        errors += _delay_parameter_errors(definitions, campaign)
        for spec in campaign.timers:
            where = f"{campaign.source}: timers[{spec.name}]"
            if not spec.workflow:
                definition = None
            elif spec.workflow not in definitions:
                errors.append(f"{where}.workflow: unknown workflow {spec.workflow!r}")
                continue
            else:
                definition = definitions[spec.workflow]
            notes = {n.name: n for n in workflow_specs(definition)[1]} if definition else {}
            if spec.late == "escalate" and ESCALATION not in notes:
                errors.append(f"{where}.late: escalate needs a {ESCALATION!r} notification")
            for i, action in enumerate(spec.actions):
                path = f"{where}.actions[{i}]"
                if action.kind == "job":
                    if jobs and action.name not in JOBS:
                        known = ", ".join(sorted(JOBS)) or "none registered"
                        errors.append(f"{path}.job: unknown job {action.name!r} (known: {known})")
                    continue
                if definition is None:
                    errors.append(f"{path}: a {action.kind} action needs the timer's workflow")
                    continue
                for state in action.states:
                    if state not in definition.state_names:
                        errors.append(f"{path}.in: unknown state {state!r}")
                if action.kind == "fire" and action.name not in definition.triggers:
                    errors.append(f"{path}.fire: unknown trigger {action.name!r}")
                if action.kind == "notify":
                    note = notes.get(action.name)
                    if note is None:
                        errors.append(f"{path}.notify: unknown notification {action.name!r}")
                    else:
                        missing = sorted(set(note.variables) - set(spec.context))
                        if missing:
                            errors.append(
                                f"{where}.context: {action.name!r} needs {', '.join(missing)}"
                            )
    return errors


def _hook(composer: Composer) -> Any:
    def hook(conn: Connection, change: Change) -> None:
        case_timers, notes = workflow_specs(change.definition)
        if not case_timers and not notes:
            return
        case = change.case
        for event in change.events:
            context = None
            for spec in notes:
                if spec.when == event.trigger:
                    if context is None:  # the same for every notification of this event
                        context = composer.case_context(case, change.campaign, event, None, {})
                    composer.enqueue(
                        conn,
                        spec,
                        context,
                        dedupe_key=f"event:{case.id}:{event.seq}:{spec.name}",
                        now=change.now,
                        case=case,
                        event_seq=event.seq,
                    )
            for t in case_timers:
                if t.after == event.trigger:
                    _start_case_timer(conn, t, case, change.campaign, event, change.now)
        if case_timers and change.before is not None and change.before.state != case.state:
            cancel_case_timers(conn, case.id, case.state, change.now)

    return hook


def _start_case_timer(
    conn: Connection, t: Any, case: StoredCase, campaign: Campaign, event: Event, now: datetime
) -> None:
    delay = t.delay_for(campaign.parameters)  # checked at install: the parameter is valid
    if delay is None:
        return  # the campaign does not set this timer's delay parameter: no such timer
    insert_timer(
        conn,
        key=f"case:{case.id}:{t.name}:{event.seq}",
        campaign_id=case.campaign_id,
        case_id=case.id,
        name=t.name,
        due_at=delay.after(event.at, campaign.zone),
        action={
            "kind": "case",
            "workflow": case.workflow,
            "notify": t.notify,
            "fire": t.fire,
            "while_in": list(t.while_in),
            "after": f"{t.after} + {delay.text}{' business days' if delay.business else ''}",
        },
        late_policy=t.late,
        created_at=now,
    )


def cancel_case_timers(conn: Connection, case_id: int, state: str, now: datetime) -> int:
    rows = select_rows(conn, PENDING_OF_CASE, {"case_id": case_id})
    gone = [timer_id for timer_id, action in rows if state not in (action.get("while_in") or [])]
    if gone:
        conn.execute(
            update(timers)
            .where(timers.c.id.in_(gone))
            .values(status="cancelled", fired_at=now, outcome={"reason": f"case is now {state}"})
        )
    return len(gone)


def _sample(composer: Composer, campaign: Campaign | None) -> dict[str, Any]:
    """A plausible context (for each campaign: its parameters) to render every template once."""
    now = datetime(2023, 9, 22, 10, 0, tzinfo=UTC)
    campaign = campaign or Campaign("sample", "Sample", "Europe/Paris", now.date(), now.date())
    case = StoredCase(
        id=1,
        workflow="candidacy",
        definition_version="",
        campaign_id=campaign.id,
        state="draft",
        title="Territoire exemple",
        owner_email="a@example.org",
        data={"contact_email": "a@example.org"},
        facts={"decision": {"decision": "not_selected", "reason": "motif", "at": now.isoformat()}},
        regions=("84",),
        version=1,
        last_seq=1,
        head_hash="",
        created_at=now,
        updated_at=now,
    )
    event = Event(
        1, 2, "submit", "draft", "submitted", "candidate", "candidate", now, {}, {}, "", ""
    )
    timer = {"name": "sample", "due_at": now, "late_by": "2 jours 1 h 00 min", "actions": []}
    context = composer.case_context(case, campaign, event, timer, {})
    context.update(
        {
            "count": 1,
            "cases": [
                {
                    "id": 1,
                    "title": "Territoire exemple",
                    "state": "draft",
                    "state_label": "Brouillon",
                }
            ],
        }
    )
    return context
