"""Guards and effects of the programme after the label (FAQ 3), registered on import.

The fiche-action workflow (``workflows/action_sheet.yaml``) declares its form; what
this module adds are the rules a form cannot say: the territory is labelled, the
calendar, the financing plan, the reference to the territory's action plan, and who
reviews at the regional step (campaign parameters, FAQ 3.2 line 182). Database facts
come in ``Context.extra["territory"]`` (:mod:`ti_workflow.territories.facts`).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ti_workflow.domain.amendment_review import fr_date
from ti_workflow.domain.rules import JSON, Context, effect, guard
from ti_workflow.domain.timers import parse_parameter_delay
from ti_workflow.errors import Rule

ACTION_SHEET = "action_sheet"
PROJECT_MANAGER = "project_manager"
TERRITORY_WORKFLOWS = (ACTION_SHEET, PROJECT_MANAGER)
FUNDED_STATES = ("agreement_pending", "agreement_signed", "post_filled")
"""Project-manager cases whose post the State funds (granted, signed, filled)."""
SUBSIDY_TABLE = "project_manager_subsidy"
FRAGILITY = "territory_fragility_class"
DEFAULT_CLASS = "default_fragility_class"
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


# --- project manager co-financing (FAQ 5.2-5.4) ---------------------------------------------


@guard
def no_funded_post(ctx: Context) -> list[Rule]:
    """FAQ 5.2 (line 238): one project manager per territory; a second request while a
    post is funded is refused."""
    funded = _territory(ctx).get("funded_posts") or []
    if not funded:
        return []
    listed = ", ".join(f"n\u00a0°\u00a0{i}" for i in funded)
    return [
        _rule(
            "post_already_funded",
            f"le territoire a déjà un poste de chef de projet cofinancé (dossier {listed})",
            f"the territory already has a funded project manager post (case {listed})",
            "5.2",
        )
    ]


PROGRAMMES_FR = {
    "action_coeur_de_ville": "Action Cœur de Ville",
    "crte": "Contrat de relance et de transition écologique",
    "petites_villes_de_demain": "Petites villes de demain",
    "other": "un autre programme de l'ANCT",
}


@guard
def programme_overlap_flag(ctx: Context) -> list[Rule]:
    """FAQ 5.2 (line 238) and 5.4 (line 250): synergies with the project managers of other
    ANCT programmes are sought; a declared overlap is flagged (a warning, never a refusal)."""
    other = ctx.data.get("other_programme")
    if not other or other == "none":
        return []
    return [
        Rule(
            "programme_overlap",
            "5.4",
            f"chevauchement déclaré avec un chef de projet de {PROGRAMMES_FR.get(other, other)}"
            f"{NBSP_}: à examiner lors de l'instruction (mutualisation)",
            f"declared overlap with a project manager of {other}",
            "warning",
        )
    ]


@guard
def member_of_territory(ctx: Context) -> list[Rule]:
    """FAQ 5.3 (line 246): the opinion of each intercommunality concerned is sought."""
    siren = str(ctx.payload.get("siren") or "")
    members = _territory(ctx).get("members") or []
    if siren in members:
        return []
    g = ctx.reference.groupement(siren)
    name = g.name if g else siren
    return [
        _rule(
            "not_a_member",
            f"{name} n'est pas une intercommunalité membre du territoire",
            f"{siren} is not a member intercommunality of the territory",
            "5.3",
        )
    ]


@effect
def record_member_opinion(ctx: Context) -> tuple[JSON, JSON]:
    facts = dict(ctx.facts)
    opinions = dict(facts.get("member_opinions") or {})
    opinions[str(ctx.payload["siren"])] = {
        "opinion": ctx.payload.get("opinion"),
        "at": ctx.now.isoformat(),
    }
    facts["member_opinions"] = opinions
    return facts, {}


@guard
def all_members_opined(ctx: Context) -> list[Rule]:
    """FAQ 5.3 (line 246): every member intercommunality gives its opinion."""
    members = _territory(ctx).get("members") or []
    missing = [m for m in members if m not in (ctx.facts.get("member_opinions") or {})]
    if not missing:
        return []
    return [
        _rule(
            "member_opinions_missing",
            f"{len(missing)} intercommunalité(s) membre(s) n'ont pas encore donné leur avis",
            f"{len(missing)} member(s) have not given their opinion",
            "5.3",
        )
    ]


def _subsidy_row(ctx: Context) -> tuple[str, dict[str, Any] | None]:
    params = ctx.campaign.parameters
    tid = str(ctx.data.get("territory_id"))
    klass = str((params.get(FRAGILITY) or {}).get(tid, params.get(DEFAULT_CLASS, "")))
    return klass, (params.get(SUBSIDY_TABLE) or {}).get(klass)


@guard
def subsidy_table_has_class(ctx: Context) -> list[Rule]:
    """FAQ 5.4 (line 250): maximum and rate depend on the territory's fragility; the
    campaign's table must give them for the territory's class."""
    klass, row = _subsidy_row(ctx)
    if row and "rate" in row and "max_eur" in row:
        return []
    return [
        _rule(
            "subsidy_class_unknown",
            f"le barème de la campagne ne prévoit pas la classe de fragilité « {klass} » "
            f"de ce territoire",
            f"the campaign's table has no rate and maximum for fragility class {klass!r}",
            "5.4",
        )
    ]


@effect
def compute_subsidy(ctx: Context) -> tuple[JSON, JSON]:
    """FAQ 5.4 (line 250): the State's operating subsidy, rate x cost capped at the
    maximum of the territory's fragility class (campaign table)."""
    klass, row = _subsidy_row(ctx)
    assert row is not None  # subsidy_table_has_class ran first
    rate, cap = Decimal(str(row["rate"])), Decimal(str(row["max_eur"]))
    cost = Decimal(str(ctx.data.get("annual_cost") or 0))
    amount = min((cost * rate).quantize(Decimal("0.01")), cap)
    facts = dict(ctx.facts)
    facts["subsidy"] = {
        "fragility_class": klass,
        "rate": float(rate),
        "max_eur": float(cap),
        "annual_eur": float(amount),
    }
    return facts, {}


@effect
def record_post(ctx: Context) -> tuple[JSON, JSON]:
    facts = dict(ctx.facts)
    facts["post"] = {
        "recruited_on": ctx.payload.get("recruited_on"),
        "person": ctx.payload.get("person"),
        "filled_at": ctx.now.isoformat(),
    }
    return facts, {}


@effect
def record_justification(ctx: Context) -> tuple[JSON, JSON]:
    facts = dict(ctx.facts)
    entry = {
        "year": ctx.payload.get("year"),
        "spent_eur": ctx.payload.get("spent_eur"),
        "at": ctx.now.isoformat(),
    }
    facts["justifications"] = [*(facts.get("justifications") or []), entry]
    return facts, {}


REMINDER_AFTER = "justification_reminder_after"
ESCALATION_AFTER = "justification_escalation_after"


def _justification_late(ctx: Context, parameter: str) -> list[Rule]:
    """Due when the campaign's delay has run since the last justification (or since the
    post was filled): a timer armed by an older event finds it not due and is skipped."""
    done = ctx.facts.get("justifications") or []
    last = done[-1]["at"] if done else (ctx.facts.get("post") or {}).get("filled_at")
    raw = ctx.campaign.parameters.get(parameter)
    if not last or not raw:
        return [_rule("justification_not_due", "pas de justification attendue", "none", "5.4")]
    due = parse_parameter_delay(raw).after(datetime.fromisoformat(last), ctx.campaign.zone)
    if ctx.now >= due:
        return []
    return [
        _rule(
            "justification_not_due",
            "une justification a été déclarée depuis : pas de relance",
            f"a justification was recorded since: next due {due.isoformat()}",
            "5.4",
        )
    ]


@guard
def justification_reminder_due(ctx: Context) -> list[Rule]:
    return _justification_late(ctx, REMINDER_AFTER)


@guard
def justification_escalation_due(ctx: Context) -> list[Rule]:
    return _justification_late(ctx, ESCALATION_AFTER)
