"""Errors of the territories package (they join the one tree of :mod:`ti_workflow.errors`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

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
    """A programme rule, not the FAQ's (2.1 does not say it; the published list of 2023
    holds no groupement in two territories): no FAQ section is cited."""
    day = date.fromisoformat(since).strftime("%d/%m/%Y")
    return Rule(
        "double_membership",
        None,
        f"le groupement {siren} appartient déjà au territoire {other} (depuis le {day})"
        f"\u00a0: il ne peut entrer dans le territoire {territory_id} (règle du programme"
        f"\u00a0: un groupement n'appartient qu'à un seul Territoire d'industrie)",
        f"groupement {siren} already belongs to territory {other} (since {since}): it cannot "
        f"join territory {territory_id} (programme rule: one territory per groupement)",
    )
