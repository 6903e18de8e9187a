"""Errors of the territories package (they join the one tree of :mod:`ti_workflow.errors`)."""

from __future__ import annotations

from collections.abc import Sequence

from ti_workflow.errors import Rule, TiWorkflowError


class TerritoryRefused(TiWorkflowError):
    """A change to the territories would break a rule (a groupement in two territories...).

    Raised inside a command's transaction, it rolls the whole command back."""

    kind = "territory_refused"

    def __init__(self, action: str, rules: Sequence[Rule]) -> None:
        self.action = action
        self.rules = tuple(rules)
        listed = "\n".join(f"  - {r}" for r in self.rules)
        super().__init__(
            f"{action} refused, {len(self.rules)} rule(s) not met "
            f"/ règle(s) non respectée(s); nothing was written:\n{listed}"
        )

    def details(self) -> list[dict[str, str | None]]:
        return [r.as_dict() for r in self.rules]


def double_membership(siren: str, territory_id: str, other: str, since: str) -> Rule:
    return Rule(
        "double_membership",
        "2.1",
        f"le groupement {siren} appartient déjà au territoire {other} (depuis le {since}) : "
        f"il ne peut entrer dans le territoire {territory_id}",
        f"groupement {siren} already belongs to territory {other} (since {since}): it cannot "
        f"join territory {territory_id}",
    )
