"""The engine facade: create, update, fire, read. One database transaction per command.

A fire: load the case row, check the actor may see it and take this trigger from
this state, validate the payload, evaluate every guard (collecting every failed
rule), move the shared machine, run the effects, then take the automatic
transitions whose guards now hold, and write the case (``version = expected``) and
its hash-chained events together. Any exception rolls everything back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import Engine as SqlEngine

from ti_workflow.clock import Clock, SystemClock
from ti_workflow.domain.actors import (
    AUDITOR,
    CANDIDATE,
    REGIONAL_ROLES,
    SYSTEM,
    Actor,
)
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.definition import Definition, Transition
from ti_workflow.domain.events import GENESIS, Event
from ti_workflow.domain.machine import CompiledMachine, IllegalStep
from ti_workflow.domain.payload import validate_payload
from ti_workflow.domain.reference import Referential
from ti_workflow.domain.rules import EFFECTS, FORMS, GUARDS, Context
from ti_workflow.errors import (
    Conflict,
    Forbidden,
    GuardRefused,
    NotFound,
    Rule,
    TransitionNotAllowed,
    UnknownTrigger,
)
from ti_workflow.storage import repository as repo
from ti_workflow.storage.database import read
from ti_workflow.storage.repository import CaseFilter, StoredCase

MAX_AUTOMATIC_STEPS = 20
CREATE = "create"
UPDATE = "update"


@dataclass(frozen=True)
class Catalog:
    """Every definition version (current and past), the campaigns and the reference data."""

    definitions: Mapping[str, Definition]
    current: Mapping[str, str]
    campaigns: Mapping[str, Campaign]
    reference: Referential
    machines: dict[str, CompiledMachine] = field(default_factory=dict, compare=False)

    def definition(self, version: str) -> Definition:
        try:
            return self.definitions[version]
        except KeyError:
            raise NotFound("definition version", version) from None

    def current_definition(self, workflow: str) -> Definition:
        if workflow not in self.current:
            raise NotFound("workflow", workflow)
        return self.definitions[self.current[workflow]]

    def campaign(self, campaign_id: str) -> Campaign:
        try:
            return self.campaigns[campaign_id]
        except KeyError:
            raise NotFound("campaign", campaign_id) from None

    def machine(self, version: str) -> CompiledMachine:
        machine = self.machines.get(version)
        if machine is None:
            machine = self.machines[version] = CompiledMachine(self.definition(version))
        return machine


@dataclass(frozen=True)
class TriggerOption:
    """A trigger the actor could fire now, and what would stop it."""

    trigger: str
    dest: str
    label_fr: str
    allowed: bool
    refusal: str | None
    failed_rules: tuple[Rule, ...]
    payload_fields: tuple[str, ...]
    reason_required: bool


@dataclass(frozen=True)
class FireResult:
    case: StoredCase
    events: tuple[Event, ...]


class Engine:
    def __init__(self, db: SqlEngine, catalog: Catalog, clock: Clock | None = None) -> None:
        self.db = db
        self.catalog = catalog
        self.clock: Clock = clock or SystemClock()

    # --- commands -----------------------------------------------------------------

    def create_case(self, workflow: str, campaign: str, data: Any, actor: Actor) -> StoredCase:
        definition = self.catalog.current_definition(workflow)
        self.catalog.campaign(campaign)
        if actor.role not in definition.create_roles:
            raise Forbidden(
                actor.label,
                f"create a {workflow} case",
                f"only {', '.join(definition.create_roles)}",
            )
        form = FORMS[definition.form]
        clean = form.parse(data)
        regions = form.regions(clean, self.catalog.reference)
        now = self.clock.now()
        with self.db.begin() as conn:
            case_id = repo.insert_case(
                conn,
                workflow=workflow,
                definition_version=definition.version,
                campaign_id=campaign,
                state=definition.initial,
                title=form.title(clean),
                owner_email=actor.email,
                data=clean,
                regions=regions,
                at=now,
            )
            blank = repo.load_case(conn, case_id)
            event = self._event(
                blank, CREATE, None, definition.initial, actor, now, {"data": clean}, {}
            )
            repo.append(
                conn,
                blank,
                [event],
                state=definition.initial,
                facts={},
                data=clean,
                regions=regions,
                title=form.title(clean),
            )
            return repo.load_case(conn, case_id)

    def update_data(
        self, case_id: int, data: Any, actor: Actor, expected_version: int | None = None
    ) -> StoredCase:
        now = self.clock.now()
        with self.db.begin() as conn:
            case = self._load_for_write(conn, case_id, actor, expected_version)
            definition = self.catalog.definition(case.definition_version)
            if actor.role != CANDIDATE:
                raise Forbidden(
                    actor.label, f"edit case {case_id}", "only its candidate edits a file"
                )
            if case.state not in definition.editable_in:
                raise TransitionNotAllowed(case_id, UPDATE, case.state, definition.editable_in)
            form = FORMS[definition.form]
            clean = form.parse(data)
            regions = form.regions(clean, self.catalog.reference)
            event = self._event(
                case, UPDATE, case.state, case.state, actor, now, {"data": clean}, {}
            )
            repo.append(
                conn,
                case,
                [event],
                state=case.state,
                facts=case.facts,
                data=clean,
                regions=regions,
                title=form.title(clean),
            )
            return repo.load_case(conn, case_id)

    def fire(
        self,
        case_id: int,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> FireResult:
        now = self.clock.now()
        with self.db.begin() as conn:
            case = self._load_for_write(conn, case_id, actor, expected_version)
            new_events, state, facts = self._plan(case, trigger, actor, payload or {}, now)
            repo.append(conn, case, new_events, state=state, facts=facts)
            return FireResult(repo.load_case(conn, case_id), tuple(new_events))

    # --- reads --------------------------------------------------------------------

    def get(self, case_id: int, actor: Actor) -> StoredCase:
        with read(self.db) as conn:
            case = repo.load_case(conn, case_id)
        self._check_visible(case, actor)
        return case

    def list_cases(
        self,
        actor: Actor,
        *,
        workflow: str | None = None,
        state: str | None = None,
        campaign: str | None = None,
        region: str | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[StoredCase], int]:
        scope = CaseFilter(
            workflow=workflow,
            state=state,
            campaign=campaign,
            region=region,
            text=text,
            owner_email=actor.email if actor.role == CANDIDATE else None,
            scope_region=actor.region if actor.role in REGIONAL_ROLES else None,
        )
        with read(self.db) as conn:
            return repo.list_cases(conn, scope, limit=limit, offset=offset)

    def history(self, case_id: int, actor: Actor) -> list[Event]:
        with read(self.db) as conn:
            case = repo.load_case(conn, case_id)
            self._check_visible(case, actor)
            return repo.load_events(conn, case_id)

    def available_triggers(self, case_id: int, actor: Actor) -> list[TriggerOption]:
        """What the actor could fire now, with the reason or rules that would refuse it."""
        case = self.get(case_id, actor)
        definition = self.catalog.definition(case.definition_version)
        now = self.clock.now()
        options = []
        for t in definition.outgoing(case.state):
            if t.automatic:
                continue
            refusal = self._role_refusal(case, t, actor)
            rules: list[Rule] = []
            if refusal is None:
                rules = self._failed_rules(self._context(case, t, actor, now, {}), t)
            options.append(
                TriggerOption(
                    trigger=t.trigger,
                    dest=t.dest,
                    label_fr=t.label_fr,
                    allowed=refusal is None and not rules,
                    refusal=refusal,
                    failed_rules=tuple(rules),
                    payload_fields=tuple(f.name for f in t.payload),
                    reason_required=t.reason_required,
                )
            )
        return options

    # --- internals ----------------------------------------------------------------

    def _load_for_write(
        self, conn: Connection, case_id: int, actor: Actor, expected_version: int | None
    ) -> StoredCase:
        if actor.role == AUDITOR:
            raise Forbidden(actor.label, f"change case {case_id}", "auditors read and never write")
        case = repo.load_case(conn, case_id)
        self._check_visible(case, actor)
        if expected_version is not None and case.version != expected_version:
            raise Conflict(case_id, expected_version, case.version)
        return case

    def _check_visible(self, case: StoredCase, actor: Actor) -> None:
        """Outside one's scope a case does not exist (no leak of its existence)."""
        if actor.role == CANDIDATE and case.owner_email != actor.email:
            raise NotFound("case", case.id)
        if actor.role in REGIONAL_ROLES and actor.region not in case.regions:
            raise NotFound("case", case.id)

    def _role_refusal(self, case: StoredCase, t: Transition, actor: Actor) -> str | None:
        if actor.role not in t.roles:
            return f"{t.trigger!r} is for {', '.join(t.roles)} only"
        if actor.role in REGIONAL_ROLES and actor.region not in case.regions:
            return f"case {case.id} does not concern region {actor.region}"
        return None

    def _context(
        self,
        case: StoredCase,
        t: Transition,
        actor: Actor,
        now: datetime,
        payload: Mapping[str, Any],
        state: str | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> Context:
        return Context(
            case_id=case.id,
            state=state or case.state,
            data=case.data,
            facts=case.facts if facts is None else facts,
            regions=case.regions,
            actor=actor,
            now=now,
            campaign=self.catalog.campaign(case.campaign_id),
            reference=self.catalog.reference,
            payload=payload,
            trigger=t.trigger,
        )

    @staticmethod
    def _failed_rules(ctx: Context, t: Transition) -> list[Rule]:
        return [rule for name in t.guards for rule in GUARDS[name](ctx)]

    def _resolve(
        self, definition: Definition, case: StoredCase, trigger: str, state: str
    ) -> Transition:
        candidates = definition.transitions_for(trigger)
        if not candidates:
            raise UnknownTrigger(definition.name, trigger, definition.triggers)
        t = definition.transition_from(trigger, state)
        if t is None:
            sources = sorted({s for c in candidates for s in c.sources})
            raise TransitionNotAllowed(case.id, trigger, state, sources)
        return t

    def _plan(
        self,
        case: StoredCase,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any],
        now: datetime,
    ) -> tuple[list[Event], str, dict[str, Any]]:
        """Compute the events one fire writes (the trigger, then automatic steps)."""
        definition = self.catalog.definition(case.definition_version)
        machine = self.catalog.machine(case.definition_version)
        t = self._resolve(definition, case, trigger, case.state)
        refusal = self._role_refusal(case, t, actor)
        if refusal is not None:
            raise Forbidden(actor.label, f"fire {trigger!r} on case {case.id}", refusal)
        if t.automatic and actor.role != SYSTEM:
            raise Forbidden(
                actor.label, f"fire {trigger!r}", "automatic transitions are the system's"
            )
        clean = validate_payload(t, payload)
        events: list[Event] = []
        state, facts = case.state, dict(case.facts)
        current = case
        step: Transition | None = t
        who, body = actor, clean
        for _ in range(MAX_AUTOMATIC_STEPS):
            assert step is not None
            ctx = self._context(current, step, who, now, body, state, facts)
            failed = self._failed_rules(ctx, step)
            if failed:
                raise GuardRefused(case.id, step.trigger, failed)
            try:
                dest = machine.step(state, step.trigger)
            except IllegalStep:
                raise TransitionNotAllowed(case.id, step.trigger, state, step.sources) from None
            annotations: dict[str, Any] = {}
            for name in step.effects:
                facts, notes = EFFECTS[name](ctx)
                annotations.update(notes)
                ctx = self._context(current, step, who, now, body, state, facts)
            prev = events[-1] if events else None
            events.append(
                self._event(
                    current, step.trigger, state, dest, who, now, dict(body), annotations, prev
                )
            )
            state = dest
            step = self._next_automatic(definition, current, state, facts, now)
            if step is None:
                return events, state, facts
            who, body = Actor(SYSTEM), {}
        raise RuntimeError(f"more than {MAX_AUTOMATIC_STEPS} automatic steps from {case.state!r}")

    def _next_automatic(
        self,
        definition: Definition,
        case: StoredCase,
        state: str,
        facts: Mapping[str, Any],
        now: datetime,
    ) -> Transition | None:
        for t in definition.automatic_from(state):
            ctx = self._context(case, t, Actor(SYSTEM), now, {}, state, facts)
            if not self._failed_rules(ctx, t):
                return t
        return None

    def _event(
        self,
        case: StoredCase,
        trigger: str,
        source: str | None,
        dest: str,
        actor: Actor,
        now: datetime,
        payload: dict[str, Any],
        annotations: dict[str, Any],
        prev: Event | None = None,
    ) -> Event:
        seq = prev.seq + 1 if prev else case.last_seq + 1
        prev_hash = prev.hash if prev else (case.head_hash or GENESIS)
        event = Event(
            case_id=case.id,
            seq=seq,
            trigger=trigger,
            source=source,
            dest=dest,
            actor=actor.label,
            role=actor.role,
            at=now,
            payload=payload,
            annotations=annotations,
            definition_version=case.definition_version,
            prev_hash=prev_hash,
        )
        return Event(**{**event.__dict__, "hash": event.compute_hash()})
