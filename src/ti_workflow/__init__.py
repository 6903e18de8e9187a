"""ti-workflow: the Territoires d'industrie labelling programme as declarative state machines.

The public API: open an :class:`Engine` over an initialised database and drive cases::

    from ti_workflow import Actor, Settings, initialise, open_engine

    settings = Settings.from_env()
    initialise(settings)
    engine = open_engine(settings)
    candidate = Actor("candidate", email="ti@example.org")
    case = engine.create_case("candidacy", "ti-2023-2027", data, candidate)
"""

from __future__ import annotations

from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import Clock, SimulatedClock, SystemClock
from ti_workflow.domain.actors import Actor, parse_actor
from ti_workflow.engine import Engine, FireResult, TriggerOption
from ti_workflow.errors import (
    Conflict,
    FieldError,
    Forbidden,
    GuardRefused,
    InvalidData,
    InvalidDefinition,
    NotFound,
    Rule,
    TiWorkflowError,
    TransitionNotAllowed,
    UnknownTrigger,
)
from ti_workflow.settings import Settings

__all__ = [
    "Actor",
    "Clock",
    "Conflict",
    "Engine",
    "FieldError",
    "FireResult",
    "Forbidden",
    "GuardRefused",
    "InvalidData",
    "InvalidDefinition",
    "NotFound",
    "Rule",
    "Settings",
    "SimulatedClock",
    "SystemClock",
    "TiWorkflowError",
    "TransitionNotAllowed",
    "TriggerOption",
    "UnknownTrigger",
    "initialise",
    "open_engine",
    "parse_actor",
]
