"""The engine facade: create, update, fire, read. One database transaction per command
(``fire_many``: one for a batch of cases, a savepoint per case).

A fire: load the case row, check the actor may see it and take this trigger from
this state, validate the payload, evaluate every guard (collecting every failed
rule), move the shared machine, run the effects, then take the automatic
transitions whose guards now hold, and write the case (``version = expected``) and
its hash-chained events together. Any exception rolls everything back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
    TERRITORY_ROLES,
    Actor,
)
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.declared import form_of
from ti_workflow.domain.definition import Definition, Transition
from ti_workflow.domain.events import GENESIS, Event
from ti_workflow.domain.machine import CompiledMachine, IllegalStep
from ti_workflow.domain.payload import validate_payload
from ti_workflow.domain.reference import Referential
from ti_workflow.domain.rules import EFFECTS, GUARDS, Context, Form
from ti_workflow.errors import (
    Conflict,
    CreateRefused,
    Forbidden,
    GuardRefused,
    NotFound,
    Rule,
    TiWorkflowError,
    TransitionNotAllowed,
    UnknownTrigger,
    split_rules,
)
from ti_workflow.files.store import FileStore
from ti_workflow.settings import default_files_dir
from ti_workflow.storage import repository as repo
from ti_workflow.storage.database import (
    batch,
    read,
    savepoint,
    transaction,
    transaction_alive,
)
from ti_workflow.storage.repository import CaseFilter, StoredCase

MAX_AUTOMATIC_STEPS = 20
CONTEXT = "context"
"""Annotation holding the database facts (``Context.extra``) a step's rules were given."""
CREATE = "create"
UPDATE = "update"
WARNINGS = "warnings"
"""Annotation holding the non-blocking rules (``Rule.severity == "warning"``) of a step."""
SOURCE = "source"
"""Annotation naming where a command's values came from (e.g. a Démarches Simplifiées dossier
and its ``dateDerniereModification``): given by the caller, kept in the chained event, never
read by a rule (an audit replay leaves it aside, like ``context``)."""


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
    warnings: tuple[Rule, ...] = ()
    """Rules that would not refuse the trigger but are shown to the actor."""


@dataclass(frozen=True)
class FireResult:
    case: StoredCase
    events: tuple[Event, ...]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return warnings_of(self.events)


def warnings_of(events: Iterable[Event]) -> list[dict[str, Any]]:
    """The warnings recorded with these events (``Rule.as_dict`` form), in order."""
    return [w for e in events for w in e.annotations.get(WARNINGS) or ()]


@dataclass(frozen=True)
class FireOutcome:
    """One case of :meth:`Engine.fire_many`: what it wrote, or the refusal that undid it."""

    case_id: int
    result: FireResult | None = None
    refusal: Exception | None = None


@dataclass(frozen=True)
class Change:
    """What one command wrote, handed to the hooks inside the same transaction."""

    before: StoredCase | None
    case: StoredCase
    events: tuple[Event, ...]
    definition: Definition
    campaign: Campaign
    actor: Actor
    now: datetime


Hook = Callable[[Connection, Change], None]
"""Runs inside the command's transaction after the case and events are written (outbox rows,
timers, territory records...). An exception rolls the whole command back."""

ContextProvider = Callable[[Connection, StoredCase, str], Mapping[str, Any]]
"""Adds read-only facts from the database to the guards' ``Context.extra`` for one trigger."""

RegionProvider = Callable[[Connection, str, Mapping[str, Any]], Iterable[str]]
"""Adds regions a case concerns that only the database knows (workflow, clean form data):
e.g. the regions of the territory an amendment changes. Called on create and update."""


class Engine:
    def __init__(
        self,
        db: SqlEngine,
        catalog: Catalog,
        clock: Clock | None = None,
        hooks: Sequence[Hook] = (),
        context_providers: Sequence[ContextProvider] = (),
        files: FileStore | None = None,
    ) -> None:
        self.db = db
        self.files = files or FileStore(default_files_dir(db.url.render_as_string(False)))
        """Uploaded documents (letters of intent): see :mod:`ti_workflow.files`."""
        self.catalog = catalog
        self.clock: Clock = clock or SystemClock()
        self.hooks: list[Hook] = list(hooks)
        self.context_providers: list[ContextProvider] = list(context_providers)
        self.region_providers: list[RegionProvider] = []

    # --- commands -----------------------------------------------------------------

    def create_case(
        self,
        workflow: str,
        campaign: str,
        data: Any,
        actor: Actor,
        source: Mapping[str, Any] | None = None,
    ) -> StoredCase:
        definition = self.catalog.current_definition(workflow)
        self.catalog.campaign(campaign)
        if actor.role not in definition.create_roles:
            raise Forbidden(
                actor.label,
                f"create a {workflow} case",
                f"only {', '.join(definition.create_roles)}",
            )
        form = form_of(definition, self.catalog.reference)
        clean = form.parse(data)
        if actor.role in TERRITORY_ROLES and clean.get("territory_id") != actor.territory:
            raise Forbidden(
                actor.label, f"create a {workflow} case", f"only for territory {actor.territory}"
            )
        now = self.clock.now()
        with transaction(self.db) as conn:
            regions, read_facts = self._regions(conn, form, workflow, clean)
            if definition.create_guards:
                extra = self._create_extra(conn, definition, campaign, actor, clean, regions, now)
                if extra:  # what the create guards read, kept in the event like a step's
                    read_facts[CONTEXT] = {**read_facts.get(CONTEXT, {}), **extra}
                ctx = Context(
                    case_id=0,
                    state=definition.initial,
                    data=clean,
                    facts={},
                    regions=regions,
                    actor=actor,
                    now=now,
                    campaign=self.catalog.campaign(campaign),
                    reference=self.catalog.reference,
                    payload={},
                    trigger=CREATE,
                    extra=extra,
                    form=definition.form_spec,
                )
                failed, _ = split_rules(
                    [r for name in definition.create_guards for r in GUARDS[name](ctx)]
                )
                if failed:
                    raise CreateRefused(workflow, failed)
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
                blank,
                CREATE,
                None,
                definition.initial,
                actor,
                now,
                {"data": clean},
                {**read_facts, **_noted(source)},
            )
            version = repo.append(
                conn,
                blank,
                [event],
                state=definition.initial,
                facts={},
                data=clean,
                regions=regions,
                title=form.title(clean),
            )
            case = _advanced(
                blank, [event], version, definition.initial, {}, clean, regions, form.title(clean)
            )
            self._run_hooks(conn, None, case, [event], actor, now)
            return case

    def update_data(
        self,
        case_id: int,
        data: Any,
        actor: Actor,
        expected_version: int | None = None,
        source: Mapping[str, Any] | None = None,
    ) -> StoredCase:
        now = self.clock.now()
        with transaction(self.db) as conn:
            case = self._load_for_write(conn, case_id, actor, expected_version)
            definition = self.catalog.definition(case.definition_version)
            if actor.role not in definition.create_roles:
                raise Forbidden(
                    actor.label,
                    f"edit case {case_id}",
                    f"only {' or '.join(definition.create_roles)} may edit its data",
                )
            if case.state not in definition.editable_in:
                raise TransitionNotAllowed(case_id, UPDATE, case.state, definition.editable_in)
            form = form_of(definition, self.catalog.reference)
            clean = form.parse(data)
            if actor.role in TERRITORY_ROLES and clean.get("territory_id") != actor.territory:
                raise Forbidden(actor.label, f"edit case {case_id}", "its territory is fixed")
            regions, read_facts = self._regions(conn, form, case.workflow, clean)
            event = self._event(
                case,
                UPDATE,
                case.state,
                case.state,
                actor,
                now,
                {"data": clean},
                {**read_facts, **_noted(source)},
            )
            version = repo.append(
                conn,
                case,
                [event],
                state=case.state,
                facts=case.facts,
                data=clean,
                regions=regions,
                title=form.title(clean),
            )
            after = _advanced(
                case, [event], version, case.state, case.facts, clean, regions, form.title(clean)
            )
            self._run_hooks(conn, case, after, [event], actor, now)
            return after

    def fire(
        self,
        case_id: int,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        source: Mapping[str, Any] | None = None,
    ) -> FireResult:
        """``source``: where this command came from, kept in its first event (``SOURCE``)."""
        now = self.clock.now()
        with transaction(self.db) as conn:
            case = self._load_for_write(conn, case_id, actor, expected_version)
            return self._fire_loaded(conn, case, trigger, actor, payload or {}, now, source)

    def fire_many(
        self,
        case_ids: Sequence[int],
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        refusals: tuple[type[Exception], ...] = (TiWorkflowError,),
    ) -> list[FireOutcome]:
        """``fire`` on each case in turn, in one transaction (one commit, one fsync on SQLite).

        Each case is fired exactly as ``fire`` would (same checks, events, hooks) inside its
        own savepoint. An exception of ``refusals`` (by default any
        refusal) undoes that case alone and is its outcome. Any other exception stops the
        batch: the cases before it are committed, that case and the rest are not, and the
        exception propagates, as if each case had been fired on its own, in order.
        """
        outcomes: list[FireOutcome] = []
        stopped: Exception | None = None
        with batch(self.db) as conn:
            loaded = repo.load_cases(conn, case_ids)
            for case_id in case_ids:
                try:
                    with savepoint(conn):
                        case = self._load_for_write(conn, case_id, actor, None, loaded)
                        result = self._fire_loaded(
                            conn, case, trigger, actor, payload or {}, self.clock.now()
                        )
                    loaded[case_id] = result.case
                    outcomes.append(FireOutcome(case_id, result))
                except refusals as exc:
                    outcomes.append(FireOutcome(case_id, refusal=exc))
                except Exception as exc:
                    if not transaction_alive(conn):  # nothing left to commit
                        raise
                    stopped = exc
                    break
        if stopped is not None:
            raise stopped
        return outcomes

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
        order: str = "id",
    ) -> tuple[list[StoredCase], int]:
        scope = CaseFilter(
            order=order,
            workflow=workflow,
            state=state,
            campaign=campaign,
            region=region,
            text=text,
            owner_email=actor.email if actor.role == CANDIDATE else None,
            scope_region=actor.region if actor.role in REGIONAL_ROLES else None,
            scope_territory=(actor.territory or "?") if actor.role in TERRITORY_ROLES else None,
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
        now = self.clock.now()
        with read(self.db) as conn:
            case = repo.load_case(conn, case_id)
            self._check_visible(case, actor)
            definition = self.catalog.definition(case.definition_version)
            outgoing = [t for t in definition.outgoing(case.state) if not t.automatic]
            extras = {t.trigger: self._extra(conn, case, t.trigger) for t in outgoing}
        options = []
        for t in outgoing:
            refusal = self._role_refusal(case, t, actor)
            rules: list[Rule] = []
            warnings: list[Rule] = []
            if refusal is None:
                ctx = self._context(case, t, actor, now, {}, extra=extras[t.trigger])
                rules, warnings = split_rules(self._failed_rules(ctx, t))
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
                    warnings=tuple(warnings),
                )
            )
        return options

    # --- internals ----------------------------------------------------------------

    def _regions(
        self, conn: Connection, form: Form, workflow: str, clean: dict[str, Any]
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        """The case's regions, and the annotations of the create/update event: where the
        database added regions, ``{"context": {"regions": [...]}}``, the very list the
        replay then uses (it cannot read the database as it was)."""
        regions = form.regions(clean, self.catalog.reference)
        found, from_database = set(regions), False
        for provider in self.region_providers:
            more = set(provider(conn, workflow, clean))
            from_database = from_database or bool(more)
            found |= more
        if not from_database:
            return regions, {}
        every = tuple(sorted(found))
        return every, {CONTEXT: {"regions": list(every)}}

    def _create_extra(
        self,
        conn: Connection,
        definition: Definition,
        campaign: str,
        actor: Actor,
        clean: dict[str, Any],
        regions: tuple[str, ...],
        now: datetime,
    ) -> dict[str, Any]:
        """The database facts the create guards read, for the case about to exist."""
        if not self.context_providers:
            return {}
        draft = StoredCase(
            id=0,
            workflow=definition.name,
            definition_version=definition.version,
            campaign_id=campaign,
            state=definition.initial,
            title="",
            owner_email=actor.email,
            data=clean,
            facts={},
            regions=regions,
            version=0,
            last_seq=0,
            head_hash=GENESIS,
            created_at=now,
            updated_at=now,
        )
        return self._extra(conn, draft, CREATE)

    def _fire_loaded(
        self,
        conn: Connection,
        case: StoredCase,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any],
        now: datetime,
        source: Mapping[str, Any] | None = None,
    ) -> FireResult:
        extra = self._extra(conn, case, trigger)
        new_events, state, facts = self._plan(case, trigger, actor, payload, now, extra, source)
        version = repo.append(conn, case, new_events, state=state, facts=facts)
        after = _advanced(case, new_events, version, state, facts)
        self._run_hooks(conn, case, after, new_events, actor, now)
        return FireResult(after, tuple(new_events))

    def _extra(self, conn: Connection, case: StoredCase, trigger: str) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        for provider in self.context_providers:
            extra.update(provider(conn, case, trigger))
        return extra

    def _run_hooks(
        self,
        conn: Connection,
        before: StoredCase | None,
        after: StoredCase,
        events: Sequence[Event],
        actor: Actor,
        now: datetime,
    ) -> None:
        if not self.hooks:
            return
        change = Change(
            before=before,
            case=after,
            events=tuple(events),
            definition=self.catalog.definition(after.definition_version),
            campaign=self.catalog.campaign(after.campaign_id),
            actor=actor,
            now=now,
        )
        for hook in self.hooks:
            hook(conn, change)

    def _load_for_write(
        self,
        conn: Connection,
        case_id: int,
        actor: Actor,
        expected_version: int | None,
        loaded: Mapping[int, StoredCase] | None = None,
    ) -> StoredCase:
        """The case to change (from ``loaded`` when a batch read it already), if allowed."""
        if actor.role == AUDITOR:
            raise Forbidden(actor.label, f"change case {case_id}", "auditors read and never write")
        case = repo.load_case(conn, case_id) if loaded is None else loaded.get(case_id)
        if case is None:
            raise NotFound("case", case_id)
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
        if actor.role in TERRITORY_ROLES and case.data.get("territory_id") != actor.territory:
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
        extra: Mapping[str, Any] | None = None,
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
            extra=extra or {},
            form=self.catalog.definition(case.definition_version).form_spec,
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
        extra: Mapping[str, Any],
        source: Mapping[str, Any] | None = None,
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
            ctx = self._context(current, step, who, now, body, state, facts, extra)
            failed, warnings = split_rules(self._failed_rules(ctx, step))
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
                ctx = self._context(current, step, who, now, body, state, facts, extra)
            if warnings:
                annotations[WARNINGS] = [w.as_dict() for w in warnings]
            if extra and (step.guards or step.effects):
                # What the guards and effects read from the database, kept in the chained
                # event: an audit re-evaluates them on exactly these facts.
                annotations[CONTEXT] = dict(extra)
            if source and not events:
                annotations[SOURCE] = dict(source)
            prev = events[-1] if events else None
            events.append(
                self._event(
                    current, step.trigger, state, dest, who, now, dict(body), annotations, prev
                )
            )
            state = dest
            step = self._next_automatic(definition, current, state, facts, now, extra)
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
        extra: Mapping[str, Any],
    ) -> Transition | None:
        for t in definition.automatic_from(state):
            ctx = self._context(case, t, Actor(SYSTEM), now, {}, state, facts, extra)
            if not split_rules(self._failed_rules(ctx, t))[0]:
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
        # Sealed before anyone else sees it: the hash of the fields just set.
        object.__setattr__(event, "hash", event.compute_hash())
        return event


def _noted(source: Mapping[str, Any] | None) -> dict[str, Any]:
    return {SOURCE: dict(source)} if source else {}


def _advanced(
    case: StoredCase,
    events: Sequence[Event],
    version: int,
    state: str,
    facts: dict[str, Any],
    data: dict[str, Any] | None = None,
    regions: Sequence[str] | None = None,
    title: str = "",
) -> StoredCase:
    """The case as just written, without reading it back."""
    last = events[-1]
    changes: dict[str, Any] = {
        "state": state,
        "facts": facts,
        "version": version,
        "last_seq": last.seq,
        "head_hash": last.hash,
        "updated_at": last.at,
    }
    if data is not None:
        changes["data"] = data
        changes["regions"] = tuple(regions or ())
        changes["title"] = title
    return replace(case, **changes)
