"""The only module that imports ``transitions``.

One :class:`CompiledMachine` per definition version, shared by every case: a case
is attached to it only for the duration of one step, then detached, so memory does
not grow with the number of cases (LIBRARY-NOTES: add/remove costs grow with the
number of attached models; keep none attached between commands).
"""

from __future__ import annotations

from transitions import Machine, MachineError

from ti_workflow.domain.definition import Definition


class _Case:
    """The plain object transitions attaches to (no ``__eq__``, no pydantic)."""

    state: str


class IllegalStep(Exception):
    """The machine refuses the trigger from this state."""


class CompiledMachine:
    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        self._machine = Machine(
            model=None,
            states=list(definition.state_names),
            initial=definition.initial,
            transitions=[
                {"trigger": t.trigger, "source": list(t.sources), "dest": t.dest}
                for t in definition.transitions
            ],
            auto_transitions=False,
            ignore_invalid_triggers=False,
            send_event=False,
        )
        self._steps: dict[tuple[str, str], str] = {}

    def step(self, state: str, trigger: str) -> str:
        """The state reached by firing ``trigger`` from ``state`` (guards already checked).

        The machine has no conditions or callbacks, so a step is a pure function of
        (state, trigger): it runs once on the shared machine, then is remembered (attaching
        a model costs more than the rest of the step, and leaves cyclic garbage behind).
        """
        known = self._steps.get((state, trigger))
        if known is not None:
            return known
        dest = self._run(state, trigger)
        self._steps[(state, trigger)] = dest
        return dest

    def _run(self, state: str, trigger: str) -> str:
        case = _Case()
        self._machine.add_model(case, initial=state)
        try:
            getattr(case, trigger)()
        except (MachineError, AttributeError) as exc:
            raise IllegalStep(f"{trigger!r} from {state!r}") from exc
        finally:
            self._machine.remove_model(case)
        return str(case.state)

    def mermaid(self) -> str:
        """A Mermaid ``stateDiagram-v2`` of the definition, roles on the arrows."""
        d = self.definition
        lines = ["stateDiagram-v2", f"    [*] --> {d.initial}"]
        for t in d.transitions:
            roles = ", ".join(t.roles)
            tag = " (auto)" if t.automatic else ""
            for source in t.sources:
                lines.append(f"    {source} --> {t.dest}: {t.trigger}{tag} [{roles}]")
        for s in d.states:
            if s.final:
                lines.append(f"    {s.name} --> [*]")
        return "\n".join(lines) + "\n"
