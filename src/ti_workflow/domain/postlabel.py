"""Guards and effects of the programme after the label (FAQ 3), registered on import.

The fiche-action workflow (``workflows/action_sheet.yaml``) declares its form; what
this module adds are the rules a form cannot say: the territory is labelled, the
calendar, the financing plan, the reference to the territory's action plan, and who
reviews at the regional step (campaign parameters, FAQ 3.2 line 182). Database facts
come in ``Context.extra["territory"]`` (:mod:`ti_workflow.territories.facts`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from ti_workflow.domain.amendment_review import fr_date
from ti_workflow.domain.rules import JSON, Context, effect, guard
from ti_workflow.errors import Rule

ACTION_SHEET = "action_sheet"
TERRITORY_WORKFLOWS = (ACTION_SHEET,)
"""Workflows whose cases belong to one labelled territory (``territory_id`` in their data)."""
LONG_ACTION_YEARS = 4
REGIONAL_REVIEW = "action_sheet_regional_review"
REVIEWERS = "action_sheet_reviewers"
ROLE_FR = {"regional_council": "le conseil régional", "state_services": "les services de l'État"}


def _rule(code: str, fr: str, en: str, faq: str) -> Rule:
    return Rule(code, faq, fr, en)


def _territory(ctx: Context) -> dict[str, Any]:
    return dict(ctx.extra.get("territory") or {})


@guard
def territory_is_labelled(ctx: Context) -> list[Rule]:
    """FAQ 3.2 (line 178): fiches-actions detail the plan of a labelled territory."""
    t = _territory(ctx)
    tid = ctx.data.get("territory_id") or "?"
    if not t.get("found"):
        return [
            _rule(
                "territory_unknown",
                f"aucun Territoire d'industrie labellisé ne porte l'identifiant {tid}",
                f"no labelled territory has the id {tid!r}",
                "3.2",
            )
        ]
    if t["labelled_on"] > t["effective_on"]:
        return [
            _rule(
                "territory_not_yet_labelled",
                f"le territoire {tid} n'est labellisé qu'à compter du {fr_date(t['labelled_on'])}",
                f"territory {tid} is labelled from {t['labelled_on']}",
                "3.2",
            )
        ]
    return []


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@guard
def action_sheet_rules(ctx: Context) -> list[Rule]:
    """The rules of a fiche-action a declared form cannot express (FAQ 3.1, 3.2)."""
    d = ctx.data
    failed: list[Rule] = []
    starts, ends = d.get("starts_on"), d.get("ends_on")
    phases = [p for p in d.get("phases") or [] if isinstance(p, dict)]
    if starts and ends:
        s, e = date.fromisoformat(starts), date.fromisoformat(ends)
        if e < s:
            failed.append(
                _rule(
                    "calendar_inverted",
                    f"le calendrier finit ({fr_date(ends)}) avant de commencer ({fr_date(starts)})",
                    f"the calendar ends ({ends}) before it starts ({starts})",
                    "3.2",
                )
            )
        elif e > _add_years(s, LONG_ACTION_YEARS) and len(phases) < 2:
            failed.append(
                _rule(
                    "long_action_without_phases",
                    "une action de plus de quatre ans doit être subdivisée en phases "
                    "(au moins deux phases datées)",
                    "an action longer than four years must be split into at least two phases",
                    "3.1",
                )
            )
        for i, p in enumerate(phases, start=1):
            ps, pe = p.get("starts_on"), p.get("ends_on")
            if (ps and ps < starts) or (pe and pe > ends) or (ps and pe and pe < ps):
                failed.append(
                    _rule(
                        "phase_outside_calendar",
                        f"la phase n\u00a0°\u00a0{i} doit se tenir entre le {fr_date(starts)} "
                        f"et le {fr_date(ends)}",
                        f"phase {i} must lie between {starts} and {ends}",
                        "3.1",
                    )
                )
    cost = d.get("estimated_cost")
    rows = [r for r in d.get("financing") or [] if isinstance(r, dict)]
    if cost is not None and rows:
        total = sum((Decimal(str(r.get("amount") or 0)) for r in rows), Decimal(0))
        if total != Decimal(str(cost)):
            failed.append(
                _rule(
                    "financing_plan_unbalanced",
                    f"le plan de financement totalise {_eur(total)}, le coût estimé est de "
                    f"{_eur(Decimal(str(cost)))}{NBSP_}: ajoutez les besoins de financement "
                    f"restants comme source « à rechercher »",
                    f"the financing plan totals {total}, the estimated cost is {cost}",
                    "3.2",
                )
            )
    failed += _plan_reference(ctx)
    return failed


NBSP_ = "\u00a0"


def _eur(amount: Decimal) -> str:
    text = f"{amount:,.2f}".replace(",", NBSP_).replace(".", ",")
    return f"{text.removesuffix(',00')}{NBSP_}€"


def _fold(text: Any) -> str:
    return " ".join(str(text or "").lower().split())


def _plan_reference(ctx: Context) -> list[Rule]:
    """FAQ 3.2 (line 180): a fiche details an action of the plan, or adds a new one."""
    if ctx.data.get("origin") != "plan":
        return []
    title = ctx.data.get("plan_action_title")
    if not title:
        return [
            _rule(
                "plan_action_missing",
                "indiquez l'action du plan d'action que cette fiche détaille, ou déclarez "
                "une nouvelle action",
                "name the plan's action this sheet details, or declare a new action",
                "3.2",
            )
        ]
    plan = _territory(ctx).get("plan_actions")
    if plan is None:  # territory imported from the published list: its plan is not on file
        return []
    if _fold(title) not in {_fold(a) for a in plan}:
        listed = " ; ".join(f"« {a} »" for a in plan) or "aucune action"
        return [
            _rule(
                "plan_action_unknown",
                f"« {title} » n'est pas une action du plan d'action du territoire "
                f"({listed}){NBSP_}; déclarez-la comme nouvelle action",
                f"{title!r} is not an action of the territory's plan",
                "3.2",
            )
        ]
    return []


def _regional_review(ctx: Context) -> bool:
    return ctx.campaign.parameters.get(REGIONAL_REVIEW, True) is not False


@guard
def regional_review_required(ctx: Context) -> list[Rule]:
    """FAQ 3.2 (line 182): whether a regional review exists is a campaign parameter."""
    if _regional_review(ctx):
        return []
    return [_rule("no_regional_review", "pas d'examen régional", "no regional review", "3.2")]


@guard
def regional_review_not_required(ctx: Context) -> list[Rule]:
    if not _regional_review(ctx):
        return []
    return [_rule("regional_review", "examen régional prévu", "regional review planned", "3.2")]


@guard
def regional_reviewer(ctx: Context) -> list[Rule]:
    """FAQ 3.2 (line 182): who reviews regionally is a campaign parameter."""
    reviewers = ctx.campaign.parameters.get(REVIEWERS) or ["regional_council", "state_services"]
    if ctx.actor.role in reviewers:
        return []
    who = " et ".join(ROLE_FR.get(r, r) for r in reviewers)
    return [
        _rule(
            "not_a_reviewer",
            f"pour cette campagne, l'examen régional des fiches-actions revient à {who}",
            f"in this campaign the regional review of action sheets is for {', '.join(reviewers)}",
            "3.2",
        )
    ]


@effect
def record_progress(ctx: Context) -> tuple[JSON, JSON]:
    """A progress update: indicator value and spending, accumulated in the case's facts."""
    facts = dict(ctx.facts)
    p = ctx.payload
    entry = {k: p[k] for k in ("indicator", "value", "spent_eur", "note") if p.get(k) is not None}
    entry["at"] = ctx.now.isoformat()
    facts["progress"] = [*(facts.get("progress") or []), entry]
    facts["spent_eur"] = int(facts.get("spent_eur") or 0) + int(p.get("spent_eur") or 0)
    if p.get("indicator"):
        values = dict(facts.get("indicator_values") or {})
        values[str(p["indicator"])] = p.get("value")
        facts["indicator_values"] = values
    return facts, {}
