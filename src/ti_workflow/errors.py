"""The one error tree of ti-workflow.

Every error a user can meet derives from :class:`TiWorkflowError`, carries the
values that explain it as attributes, and builds its message from them::

    TiWorkflowError
    ├── NotFound                 unknown case, workflow, campaign or definition version
    ├── UnknownTrigger           the workflow has no such trigger
    ├── TransitionNotAllowed     the trigger exists but not from the case's state
    ├── Forbidden                the actor's role or scope may not do this
    ├── GuardRefused             business rules failed (all of them are listed)
    │   └── CreateRefused        ... for a new case (``create: guards:``)
    ├── Conflict                 the case changed since the version the caller saw
    ├── InvalidData              malformed form data or payload (each field named)
    └── InvalidDefinition        a workflow or campaign file is wrong (file + path)

``kind`` is the stable machine-readable name used by the CLI's ``--json`` output
and, later, by the HTTP API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Rule:
    """A business rule that failed, in words an operator understands.

    ``severity`` ``warning``: the rule is shown to the person acting and recorded with the
    event, but does not refuse the step (e.g. FAQ 3.1 advice, not a requirement)."""

    code: str
    faq: str | None
    message_fr: str
    message_en: str
    severity: str = ERROR

    @property
    def blocking(self) -> bool:
        return self.severity != WARNING

    def as_dict(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "faq": self.faq,
            "message_fr": self.message_fr,
            "message_en": self.message_en,
            "severity": self.severity,
        }

    def __str__(self) -> str:
        ref = f" (FAQ {self.faq})" if self.faq else ""
        return f"{self.message_fr}{ref} / {self.message_en}"


def split_rules(rules: Sequence[Rule]) -> tuple[list[Rule], list[Rule]]:
    """(blocking rules, warnings), each in the order the guards gave them."""
    return [r for r in rules if r.blocking], [r for r in rules if not r.blocking]


@dataclass(frozen=True)
class FieldError:
    """One problem in submitted data: where it is, and what is allowed."""

    location: str
    message: str
    message_fr: str = ""
    """The same in French, for the people filling the form (declared forms give it)."""

    def as_dict(self) -> dict[str, str]:
        out = {"location": self.location, "message": self.message}
        if self.message_fr:
            out["message_fr"] = self.message_fr
        return out

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class TiWorkflowError(Exception):
    kind = "error"

    def details(self) -> list[dict[str, str | None]]:
        """Structured details (failed rules, field errors) for machine output."""
        return []


class NotFound(TiWorkflowError):
    kind = "not_found"

    def __init__(self, what: str, key: object) -> None:
        self.what = what
        self.key = key
        super().__init__(f"unknown {what} {key!r}")


class UnknownTrigger(TiWorkflowError):
    kind = "unknown_trigger"

    def __init__(self, workflow: str, trigger: str, known: Sequence[str]) -> None:
        self.workflow = workflow
        self.trigger = trigger
        self.known = tuple(known)
        super().__init__(
            f"workflow {workflow!r} has no trigger {trigger!r}; "
            f"known triggers: {', '.join(sorted(self.known))}"
        )


class TransitionNotAllowed(TiWorkflowError):
    kind = "not_allowed"

    def __init__(self, case_id: int, trigger: str, state: str, allowed_from: Sequence[str]) -> None:
        self.case_id = case_id
        self.trigger = trigger
        self.state = state
        self.allowed_from = tuple(allowed_from)
        super().__init__(
            f"case {case_id}: {trigger!r} is not possible from state {state!r} "
            f"(only from: {', '.join(self.allowed_from)})"
        )


class Forbidden(TiWorkflowError):
    kind = "forbidden"

    def __init__(self, actor: str, action: str, reason: str) -> None:
        self.actor = actor
        self.action = action
        self.reason = reason
        super().__init__(f"{actor} may not {action}: {reason}")


class GuardRefused(TiWorkflowError):
    kind = "guard_refused"

    def __init__(self, case_id: int, trigger: str, rules: Sequence[Rule]) -> None:
        self.case_id = case_id
        self.trigger = trigger
        self.rules = tuple(rules)
        listed = "\n".join(f"  - {r}" for r in self.rules)
        super().__init__(
            f"case {case_id}: {trigger!r} refused, {len(self.rules)} rule(s) not met "
            f"/ règle(s) non respectée(s):\n{listed}"
        )

    def details(self) -> list[dict[str, str | None]]:
        return [r.as_dict() for r in self.rules]


class CreateRefused(GuardRefused):
    """A new case is refused by its workflow's ``create: guards:``; nothing was stored."""

    def __init__(self, workflow: str, rules: Sequence[Rule]) -> None:
        self.case_id = 0
        self.trigger = "create"
        self.workflow = workflow
        self.rules = tuple(rules)
        listed = "\n".join(f"  - {r}" for r in self.rules)
        TiWorkflowError.__init__(
            self,
            f"a new {workflow!r} case is refused, {len(self.rules)} rule(s) not met "
            f"/ règle(s) non respectée(s):\n{listed}",
        )


class Conflict(TiWorkflowError):
    kind = "conflict"

    def __init__(self, case_id: int, expected: int | None, actual: int | None) -> None:
        self.case_id = case_id
        self.expected = expected
        self.actual = actual
        now = f"it is now at version {actual}" if actual is not None else "it was changed"
        super().__init__(
            f"case {case_id} was changed by someone else (you expected version {expected}, "
            f"{now}); reload it and try again. Nothing was written."
        )


class InvalidData(TiWorkflowError):
    kind = "invalid_data"

    def __init__(self, what: str, errors: Sequence[FieldError]) -> None:
        self.what = what
        self.errors = tuple(errors)
        listed = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"invalid {what}:\n{listed}")

    def details(self) -> list[dict[str, str | None]]:
        return [dict(e.as_dict()) for e in self.errors]


class InvalidDefinition(TiWorkflowError):
    kind = "invalid_definition"
    partial: Any = None
    """What did parse despite the errors (a campaign's valid timers), for further checks."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        listed = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{len(self.errors)} error(s) in workflow definitions:\n{listed}")

    def details(self) -> list[dict[str, str | None]]:
        return [{"message": e} for e in self.errors]
