"""Rebuild a case from its events alone, and say where the history breaks a rule.

The replayer never reads the ``cases`` table: it starts from nothing and applies
each event with the definition version that event recorded. ``create``/``update``
events carry the form data; other events re-run their transition's effects with a
:class:`Context` built from the replayed case and the recorded actor, role, instant
and payload, exactly as the engine did. With ``check=True`` it also proves that each
step was allowed then: hash chain, source state, role and scope, payload, guards
re-evaluated at the recorded instant, effects' annotations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ti_workflow.domain.actors import (
    CANDIDATE,
    REGIONAL_ROLES,
    SYSTEM,
    TERRITORY_ROLES,
    Actor,
    parse_actor,
)
from ti_workflow.domain.declared import form_of
from ti_workflow.domain.definition import Definition, Transition
from ti_workflow.domain.events import GENESIS, Event
from ti_workflow.domain.payload import validate_payload
from ti_workflow.domain.rules import EFFECTS, GUARDS, Context
from ti_workflow.engine import CONTEXT, CREATE, SOURCE, UPDATE, WARNINGS, Catalog
from ti_workflow.errors import InvalidData, TiWorkflowError

MIGRATE = "migrate"
"""The trigger of a case migration event (payload ``from_version``, ``to_version``)."""


@dataclass(frozen=True)
class Finding:
    """One thing wrong, located: the case, the event sequence number (if any), what."""

    case_id: int | None  # None: a campaign-wide message (see ``orphan_messages``)
    seq: int | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "seq": self.seq,
            "code": self.code,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = "campaign" if self.case_id is None else f"case {self.case_id}"
        where += f", event #{self.seq}" if self.seq is not None else ""
        return f"{where}: [{self.code}] {self.message}"


@dataclass
class ReplayedCase:
    """What the events alone say the case is."""

    case_id: int
    workflow: str = ""
    definition_version: str = ""
    campaign_id: str = ""
    state: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    regions: tuple[str, ...] = ()
    title: str = ""
    owner_email: str | None = None
    last_seq: int = 0
    head_hash: str = GENESIS
    events: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.case_id,
            "workflow": self.workflow,
            "definition_version": self.definition_version,
            "campaign": self.campaign_id,
            "state": self.state,
            "title": self.title,
            "owner_email": self.owner_email,
            "regions": list(self.regions),
            "data": self.data,
            "facts": self.facts,
            "last_seq": self.last_seq,
        }


_ACTORS: dict[tuple[str, str], Actor] = {}


def _actor(event: Event) -> Actor:
    key = (event.actor, event.role)
    actor = _ACTORS.get(key)
    if actor is None:
        try:
            actor = parse_actor(event.actor)
        except TiWorkflowError:
            actor = Actor(event.role)
        if len(_ACTORS) > 10_000:
            _ACTORS.clear()
        _ACTORS[key] = actor
    return actor


class Replayer:
    """Applies one case's events in order. ``campaign_of`` gives the case's campaign id."""

    def __init__(self, catalog: Catalog, case_id: int, campaign_id: str, check: bool) -> None:
        self.catalog = catalog
        self.case = ReplayedCase(case_id, campaign_id=campaign_id)
        self.check = check
        self.campaign = catalog.campaigns.get(campaign_id)
        self.findings: list[Finding] = []
        self.broken = False
        """Once the chain or a step is impossible, later checks would only echo it."""

    def _fail(self, seq: int | None, code: str, message: str) -> None:
        self.findings.append(Finding(self.case.case_id, seq, code, message))

    def apply_all(self, events: Iterable[Event]) -> ReplayedCase:
        for e in events:
            self.apply(e)
        return self.case

    def apply(self, e: Event, content_hash: str | None = None) -> None:
        """``content_hash``: the event's recomputed hash when the caller has it already."""
        c = self.case
        if self.check:
            self.check_chain(
                e.case_id, e.seq, e.prev_hash, e.hash, content_hash or e.compute_hash()
            )
        c.events += 1
        c.last_seq, c.head_hash = e.seq, e.hash
        definition = self.catalog.definitions.get(e.definition_version)
        if definition is None:
            self._fail(
                e.seq,
                "unknown_definition",
                f"definition version {e.definition_version!r} "
                "is not stored: the event cannot be replayed",
            )
            self.broken = True
            c.state = e.dest
            return
        if e.trigger == CREATE:
            self._create(e, definition)
        elif e.trigger == UPDATE:
            self._update(e, definition)
        elif e.trigger == MIGRATE:
            self._migrate(e, definition)
        else:
            self._fire(e, definition)

    def resume(self, e: Event) -> None:
        """Apply ``e`` after steps that were not read (a snapshot reads only the events
        that rebuild data and facts): from the state ``e`` records leaving, which is the
        replay's own on a log that verifies."""
        if e.source is not None:
            self.case.state = e.source
        self.apply(e)

    def finish(self, seq: int, dest: str, head: str) -> None:
        """End on the last event, read or not: its number, state and hash."""
        c = self.case
        c.events = c.last_seq = seq
        c.state, c.head_hash = dest, head

    # --- chain ----------------------------------------------------------------------

    def check_chain(
        self, case_id: int, seq: int, prev_hash: str, stored_hash: str, content_hash: str
    ) -> None:
        """One event's place in the chain: its case, its number, its link, its hash."""
        c = self.case
        if case_id != c.case_id:
            self._fail(seq, "wrong_case", f"event belongs to case {case_id}")
        if seq != c.last_seq + 1:
            missing = "missing" if seq > c.last_seq + 1 else "duplicated or reordered"
            self._fail(
                seq,
                "sequence_gap",
                f"expected event #{c.last_seq + 1} after #{c.last_seq}, found #{seq} "
                f"(events {missing})",
            )
        expected_prev = c.head_hash if c.last_seq else GENESIS
        if prev_hash != expected_prev:
            self._fail(
                seq,
                "chain_broken",
                f"prev_hash {prev_hash[:12]}… does not match the previous event's hash "
                f"{expected_prev[:12]}… (an event was deleted, inserted or reordered)",
            )
        if stored_hash != content_hash:
            self._fail(
                seq,
                "hash_mismatch",
                f"stored hash {stored_hash[:12]}… differs from the hash of the event's content "
                f"{content_hash[:12]}… (the event was edited after it was written)",
            )

    # --- event kinds ----------------------------------------------------------------

    def _create(self, e: Event, d: Definition) -> None:
        c = self.case
        if self.check:
            if e.seq != 1 or e.source is not None:
                self._fail(e.seq, "misplaced_create", "a case is created by its first event only")
            if e.role not in d.create_roles:
                self._fail(
                    e.seq,
                    "role_forbidden",
                    f"role {e.role!r} may not create a {d.name} case "
                    f"(only {', '.join(d.create_roles)})",
                )
            if e.dest != d.initial:
                self._fail(
                    e.seq,
                    "wrong_destination",
                    f"a new case starts in {d.initial!r}, the event says {e.dest!r}",
                )
        c.workflow = d.name
        c.definition_version = d.version
        c.owner_email = _actor(e).email
        c.state = e.dest
        self._set_data(e, d)

    def _update(self, e: Event, d: Definition) -> None:
        c = self.case
        if self.check:
            self._check_version(e, d)
            if e.role in TERRITORY_ROLES and e.role in d.create_roles:
                if _actor(e).territory != c.data.get("territory_id"):
                    self._fail(
                        e.seq, "role_forbidden", f"{e.actor} edited another territory's file"
                    )
            elif e.role != CANDIDATE or _actor(e).email != c.owner_email:
                self._fail(
                    e.seq,
                    "role_forbidden",
                    f"{e.actor} edited the file: only its candidate ({c.owner_email}) may",
                )
            if c.state not in d.editable_in:
                self._fail(
                    e.seq,
                    "not_allowed",
                    f"file edited in state {c.state!r}; editable only in "
                    f"{', '.join(d.editable_in)}",
                )
            if e.source != c.state or e.dest != c.state:
                self._fail(
                    e.seq,
                    "state_mismatch",
                    f"event says {e.source!r} -> {e.dest!r}, replay is in {c.state!r}",
                )
        self._set_data(e, d)

    def _set_data(self, e: Event, d: Definition) -> None:
        c = self.case
        form = form_of(d, self.catalog.reference)
        raw = e.payload.get("data")
        clean: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
        if self.check:
            # The engine recorded the data already parsed and normalised: it must still be.
            try:
                if form.parse(raw) != raw:
                    self._fail(
                        e.seq, "payload_invalid", "recorded form data is not in its normalised form"
                    )
            except InvalidData as exc:
                self._fail(e.seq, "payload_invalid", f"recorded form data is invalid: {exc}")
        c.data = clean
        c.regions = form.regions(clean, self.catalog.reference)
        recorded = (e.annotations.get(CONTEXT) or _NONE).get("regions")
        if recorded is not None:
            # The engine added regions only the database knew (an amendment's territory):
            # use the very list it recorded, which must hold those the data alone gives.
            if self.check and not (
                isinstance(recorded, list) and set(c.regions) <= set(map(str, recorded))
            ):
                self._fail(
                    e.seq,
                    "regions_mismatch",
                    f"recorded regions {recorded} do not include the regions of the file "
                    f"itself ({', '.join(c.regions)})",
                )
            if isinstance(recorded, list):
                c.regions = tuple(str(r) for r in recorded)
        c.title = form.title(clean)

    def _migrate(self, e: Event, target: Definition) -> None:
        c = self.case
        source_version = e.payload.get("from_version")
        to_version = e.payload.get("to_version")
        if self.check:
            if source_version != c.definition_version or to_version != target.version:
                self._fail(
                    e.seq,
                    "migration_mismatch",
                    f"migration from {str(source_version)[:12]} to {str(to_version)[:12]} "
                    f"but the case was under {c.definition_version[:12]}",
                )
            if e.role == "auditor" or e.role == CANDIDATE or e.role in REGIONAL_ROLES:
                self._fail(e.seq, "role_forbidden", f"role {e.role!r} may not migrate cases")
            if c.state not in target.state_names or e.dest != c.state or e.source != c.state:
                self._fail(
                    e.seq,
                    "not_allowed",
                    f"case in state {c.state!r} moved to a version whose states are "
                    f"{', '.join(target.state_names)}",
                )
        c.definition_version = target.version

    def _fire(self, e: Event, d: Definition) -> None:
        c = self.case
        t = d.transition_from(e.trigger, c.state)
        actor = _actor(e)
        if self.check:
            self._check_version(e, d)
            if e.source != c.state:
                self._fail(
                    e.seq,
                    "state_mismatch",
                    f"event says it left {e.source!r}, replay is in {c.state!r}",
                )
            if t is None:
                sources = sorted({s for x in d.transitions_for(e.trigger) for s in x.sources})
                self._fail(
                    e.seq,
                    "not_allowed",
                    f"{e.trigger!r} is not possible from {c.state!r} in version "
                    f"{d.short_version} (only from: {', '.join(sources) or 'nowhere'})",
                )
        if t is not None and self.campaign is None:
            if not self.broken:
                self._fail(
                    e.seq,
                    "unknown_campaign",
                    f"campaign {c.campaign_id!r} of the case is unknown: its rules "
                    "cannot be re-evaluated",
                )
            t = None
        if t is None:
            self.broken = True
            c.state = e.dest
            return
        if not self.check and not t.effects:
            c.state = t.dest  # nothing to recompute: the hot path of snapshots
            return
        ctx = self._context(e, t, actor) if t.effects or t.guards else None
        if self.check:
            self._check_step(e, t, actor, ctx)
        if t.effects:
            assert ctx is not None
            annotations: dict[str, Any] = {}
            last = len(t.effects) - 1
            for i, name in enumerate(t.effects):
                c.facts, notes = EFFECTS[name](ctx)
                annotations.update(notes)
                if i < last:
                    ctx = self._context(e, t, actor)
        else:
            annotations = _NONE
        recorded = e.annotations
        if CONTEXT in recorded or WARNINGS in recorded or SOURCE in recorded:
            # the guards' inputs, their advice, where the values came from: not replayed
            recorded = {k: v for k, v in recorded.items() if k not in (CONTEXT, WARNINGS, SOURCE)}
        if self.check and annotations != recorded:
            self._fail(
                e.seq,
                "annotations_mismatch",
                f"recorded annotations {e.annotations} differ from the replayed "
                f"effects' {annotations}",
            )
        c.state = t.dest

    def _check_version(self, e: Event, d: Definition) -> None:
        if d.version != self.case.definition_version:
            self._fail(
                e.seq,
                "version_mismatch",
                f"event recorded version {d.short_version}, the case was under "
                f"{self.case.definition_version[:12]} (no migration event in between)",
            )

    def _check_step(self, e: Event, t: Transition, actor: Actor, ctx: Context | None) -> None:
        c = self.case
        if e.dest != t.dest:
            self._fail(
                e.seq,
                "wrong_destination",
                f"{e.trigger!r} leads to {t.dest!r}, the event says {e.dest!r}",
            )
        if e.role not in t.roles:
            self._fail(
                e.seq,
                "role_forbidden",
                f"{e.actor} (role {e.role}) fired {e.trigger!r}, reserved to {', '.join(t.roles)}",
            )
        elif e.role in REGIONAL_ROLES and actor.region not in c.regions:
            self._fail(
                e.seq,
                "role_forbidden",
                f"{e.actor} gave an opinion on a case that does not concern its region "
                f"(regions: {', '.join(c.regions)})",
            )
        elif e.role in TERRITORY_ROLES and c.data.get("territory_id") != actor.territory:
            self._fail(e.seq, "role_forbidden", f"{e.actor} acted on a case of another territory")
        elif e.role == CANDIDATE and actor.email != c.owner_email:
            self._fail(
                e.seq, "role_forbidden", f"{e.actor} acted on a case owned by {c.owner_email}"
            )
        if t.automatic and e.role != SYSTEM:
            self._fail(e.seq, "role_forbidden", f"automatic {e.trigger!r} fired by {e.actor}")
        if not t.automatic or e.payload:
            try:
                validate_payload(t, e.payload)
            except InvalidData as exc:
                self._fail(e.seq, "payload_invalid", str(exc).replace("\n", " "))
        if not t.guards:
            return
        assert ctx is not None
        failed = [rule for name in t.guards for rule in GUARDS[name](ctx) if rule.blocking]
        for rule in failed:
            self._fail(
                e.seq, "guard_failed", f"{e.trigger!r} at {e.at.isoformat()} broke a rule: {rule}"
            )

    def _context(self, e: Event, t: Transition, actor: Actor) -> Context:
        """The Context the engine built for this step (``_fast_context``: same fields)."""
        c = self.case
        return _fast_context(
            {
                "case_id": c.case_id,
                "state": c.state,
                "data": c.data,
                "facts": c.facts,
                "regions": c.regions,
                "actor": actor,
                "now": e.at,
                "campaign": self.campaign,
                "reference": self.catalog.reference,
                "payload": e.payload,
                "trigger": t.trigger,
                "extra": e.annotations.get(CONTEXT, _NONE),
                "form": self.catalog.definition(c.definition_version).form_spec,
            }
        )


_NONE: dict[str, Any] = {}
"""Shared and never written: no annotations, no extra context."""


def _fast_context(fields: dict[str, Any]) -> Context:
    """A frozen Context without the per-field ``object.__setattr__`` of its ``__init__``
    (one per replayed step with guards or effects); same class, every field given."""
    ctx = Context.__new__(Context)
    ctx.__dict__.update(fields)
    return ctx


def replay(
    catalog: Catalog, case_id: int, campaign_id: str, events: Iterable[Event], check: bool = False
) -> tuple[ReplayedCase, list[Finding]]:
    r = Replayer(catalog, case_id, campaign_id, check)
    r.apply_all(events)
    return r.case, r.findings
