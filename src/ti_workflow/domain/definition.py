"""The frozen, typed model of a workflow definition (what ``workflows/*.yaml`` declare)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ti_workflow.domain.forms import FormSpec

PAYLOAD_TYPES = ("text", "string", "choice", "date", "boolean", "integer")


@dataclass(frozen=True)
class PayloadField:
    name: str
    type: str
    required: bool = True
    choices: tuple[str, ...] = ()
    max_length: int = 10_000


@dataclass(frozen=True)
class State:
    name: str
    final: bool = False
    label_fr: str = ""
    label_en: str = ""


@dataclass(frozen=True)
class Transition:
    trigger: str
    sources: tuple[str, ...]
    dest: str
    roles: tuple[str, ...]
    guards: tuple[str, ...] = ()
    effects: tuple[str, ...] = ()
    payload: tuple[PayloadField, ...] = ()
    reason_required: bool = False
    automatic: bool = False
    label_fr: str = ""

    def payload_field(self, name: str) -> PayloadField | None:
        return next((f for f in self.payload if f.name == name), None)


@dataclass(frozen=True)
class Definition:
    """One version of one workflow. ``version`` is the SHA-256 of its canonical content."""

    name: str
    version: str
    source: str
    initial: str
    form: str
    create_roles: tuple[str, ...]
    editable_in: tuple[str, ...]
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    title: str = ""
    create_guards: tuple[str, ...] = ()
    """Rules a new case must meet (``create: guards:``), e.g. no draft after the window."""
    timers: tuple[dict[str, Any], ...] = ()
    notifications: tuple[dict[str, Any], ...] = ()
    form_spec: FormSpec | None = None
    """The fields declared under ``form:`` (then ``form`` is the workflow's name); none: the
    form named by ``form`` is written in code (``rules.FORMS``)."""
    _by_trigger: dict[str, tuple[Transition, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _from: dict[tuple[str, str], Transition] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        index: dict[str, list[Transition]] = {}
        steps: dict[tuple[str, str], Transition] = {}
        for t in self.transitions:
            index.setdefault(t.trigger, []).append(t)
            for source in t.sources:
                steps.setdefault((t.trigger, source), t)  # the first declared wins
        object.__setattr__(self, "_by_trigger", {k: tuple(v) for k, v in index.items()})
        object.__setattr__(self, "_from", steps)

    @property
    def short_version(self) -> str:
        return self.version[:12]

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @property
    def triggers(self) -> tuple[str, ...]:
        return tuple(self._by_trigger)

    def state(self, name: str) -> State:
        return next(s for s in self.states if s.name == name)

    def transitions_for(self, trigger: str) -> tuple[Transition, ...]:
        return self._by_trigger.get(trigger, ())

    def transition_from(self, trigger: str, state: str) -> Transition | None:
        return self._from.get((trigger, state))

    def automatic_from(self, state: str) -> tuple[Transition, ...]:
        return tuple(t for t in self.transitions if t.automatic and state in t.sources)

    def outgoing(self, state: str) -> tuple[Transition, ...]:
        return tuple(t for t in self.transitions if state in t.sources)
