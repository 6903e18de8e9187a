"""The review of an amendment (FAQ 2.3, line 140): how marginal the change is, the
regional opinions and the Délégation's decision. Favourable opinions of the regional
council and of the State services of every region concerned are necessary, not
sufficient: one unfavourable opinion refuses; once all are favourable, the Délégation aux
Territoires d'industrie approves or refuses (with a reason). A change beyond the
campaign's marginal share is flagged on the case; the Délégation may refuse it as not
marginal, and approves it only with a reason. Registered on import, like
:mod:`ti_workflow.domain.amendments`."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from ti_workflow.domain import amendment_forms as af
from ti_workflow.domain.actors import REGIONAL_ROLES
from ti_workflow.domain.rules import JSON, Context, effect, guard
from ti_workflow.errors import Rule

MARGINAL_SHARE_PARAMETER = "amendment_marginal_share"


_FIELD_HINT = re.compile(r" \(((?:[a-z]+_)+[a-z]+)\)")
"""A field name in brackets (``(metropole_justification)``): for the English line only."""


def _without_codes(match: re.Match[str]) -> str:
    return " (à fournir)" if match.group(1).endswith("_justification") else ""


def rule(code: str, fr: str, en: str, faq: str = "2.3") -> Rule:
    """A refusal of the amendment rules; its French text without code names, with French
    typography (non-breaking space before ``:``)."""
    french = _FIELD_HINT.sub(_without_codes, fr).replace(" :", "\u00a0:")
    return Rule(code, faq, french, en)


def fr_date(iso: str | None) -> str:
    return date.fromisoformat(iso).strftime("%d/%m/%Y") if iso else "?"


def territory_facts(ctx: Context) -> Mapping[str, Any]:
    return ctx.extra.get("territory") or {}


def marginal_threshold(ctx: Context) -> float | None:
    """The campaign's share above which a perimeter change is not "à la marge" (FAQ 2.3
    line 140 gives no figure: a campaign parameter), as the step read it: recorded in its
    context, so an audit re-reads the value in force then."""
    recorded = ctx.extra.get("parameters")
    params = recorded if recorded is not None else ctx.campaign.parameters
    threshold = params.get(MARGINAL_SHARE_PARAMETER)
    return float(threshold) if threshold is not None else None


def change_share(ctx: Context) -> tuple[float, float | None]:
    """Share of the members changed (groupements added + removed / members on the effective
    date), and the campaign's threshold above which the change is not marginal."""
    limit = marginal_threshold(ctx)
    if "add_members" in ctx.data:  # a governance amendment: no perimeter share
        return 0.0, limit
    members = len(territory_facts(ctx).get("members") or [])
    changed = len(af.changed_sirens(ctx.data))
    share = changed / members if members else float(changed > 0)
    return share, limit


def is_major(ctx: Context) -> bool:
    """Above the campaign's marginal share; with no parameter set, every perimeter change is."""
    if "add_members" in ctx.data:
        return False
    share, threshold = change_share(ctx)
    return threshold is None or share > threshold


def _percent(share: float) -> str:
    return f"{round(share * 100)}\u00a0%"


@guard
def major_change_answered(ctx: Context) -> list[Rule]:
    """A change flagged as beyond "à la marge" is approved only with the Délégation's
    reason for holding it marginal all the same: no approval passes it unseen."""
    scope = ctx.facts.get("scope") or {}
    if not scope.get("major_change") or (ctx.payload.get("reason") or "").strip():
        return []
    share, threshold = scope.get("share_changed", 0.0), scope.get("marginal_threshold")
    limit = _percent(float(threshold)) if threshold is not None else "non fixé"
    limit_en = f"{float(threshold):.0%}" if threshold is not None else "not set"
    return [
        rule(
            "major_change_needs_reason",
            f"la modification touche {_percent(float(share))} des membres, au-delà du seuil "
            f"d'une modification à la marge ({limit}) : l'approuver demande un motif "
            f"(reason), sinon la refuser comme non marginale",
            f"the change touches {float(share):.0%} of the members, above the marginal "
            f"threshold ({limit_en}): approving it needs a reason (reason); otherwise refuse "
            f"it as not marginal",
        )
    ]


def _opinions(ctx: Context) -> Mapping[str, Mapping[str, Any]]:
    return ctx.facts.get("opinions") or {}


def opinion_reasons(ctx: Context, name: str) -> str | None:
    region, _, body = name.partition("/")
    return ((_opinions(ctx).get(region) or {}).get(body) or {}).get("reasons")


def unfavourable_opinions(ctx: Context) -> list[str]:
    return [
        f"{region}/{body}"
        for region, bodies in sorted(_opinions(ctx).items())
        for body, o in sorted(bodies.items())
        if o.get("opinion") == "unfavourable"
    ]


@guard
def an_opinion_is_unfavourable(ctx: Context) -> list[Rule]:
    if unfavourable_opinions(ctx):
        return []
    return [rule("no_unfavourable_opinion", "aucun avis défavorable", "no unfavourable opinion")]


@guard
def all_opinions_favourable(ctx: Context) -> list[Rule]:
    opinions = _opinions(ctx)
    waiting = [
        f"{region}/{body}"
        for region in ctx.regions
        for body in REGIONAL_ROLES
        if (opinions.get(region) or {}).get(body, {}).get("opinion") != "favourable"
    ]
    if not waiting:
        return []
    listed = ", ".join(waiting)
    return [
        rule(
            "favourable_opinions_missing",
            f"avis favorables attendus (conseil régional et services de l'État) : {listed}",
            f"favourable opinions still needed (regional council and State services): {listed}",
        )
    ]


@effect
def record_amendment_scope(ctx: Context) -> tuple[JSON, JSON]:
    share, threshold = change_share(ctx)
    t = territory_facts(ctx)
    notes = {
        "regions": list(ctx.regions),
        "effective_on": t.get("effective_on"),
        "members_before": len(t.get("members") or []),
        "share_changed": round(share, 4),
        "marginal_threshold": threshold,
        "major_change": is_major(ctx),
    }
    return {**ctx.facts, "scope": notes}, notes


@effect
def record_amendment_outcome(ctx: Context) -> tuple[JSON, JSON]:
    """``approve`` and ``reject`` are the Délégation's; ``refuse`` follows an unfavourable
    opinion. The reasons given are kept for the letter to the territory."""
    approved = ctx.trigger == "approve"
    t = territory_facts(ctx)
    decision: dict[str, Any] = {
        "decision": "approved" if approved else "refused",
        "at": ctx.now.isoformat(),
        "by": ctx.actor.label,
        "effective_on": t.get("effective_on") if approved else None,
    }
    if ctx.payload.get("reason"):
        decision["reason"] = ctx.payload["reason"]
    if ctx.trigger == "reject":
        decision["not_marginal"] = bool(ctx.payload.get("not_marginal"))
    if ctx.trigger == "refuse":
        decision["unfavourable"] = unfavourable_opinions(ctx)
        decision["reasons"] = {
            name: opinion_reasons(ctx, name) for name in decision["unfavourable"]
        }
    return {**ctx.facts, "decision": decision}, decision


# --- earlier definition versions ----------------------------------------------------------
# Amendment cases filed under the first versions of the amendment workflows (approval by
# the opinions alone, a national acknowledgement of a major change) keep being opened and
# replayed with the guards and effects those versions name, unchanged: an audit of those
# cases must find them as they were. No current workflow uses them (`cases migrate` moves
# an open case to the current version).


@guard
def change_is_major(ctx: Context) -> list[Rule]:
    if is_major(ctx):
        return []
    share, threshold = change_share(ctx)
    return [
        rule(
            "change_is_marginal",
            f"la modification ({share:.0%} des membres) est marginale (seuil {threshold:.0%}) : "
            f"rien à prendre en compte",
            f"the change ({share:.0%} of the members) is marginal (threshold "
            f"{threshold:.0%}): nothing to acknowledge",
        )
    ]


@guard
def major_change_acknowledged(ctx: Context) -> list[Rule]:
    if not is_major(ctx) or ctx.facts.get("major_change_acknowledged"):
        return []
    share, threshold = change_share(ctx)
    limit = f"{threshold:.0%}" if threshold is not None else "non défini / not set"
    return [
        rule(
            "major_change_not_acknowledged",
            f"la modification touche {share:.0%} des membres (au-delà du seuil de modification "
            f"marginale, {limit}) : le comité national doit en prendre acte "
            f"(acknowledge_major_change)",
            f"the change touches {share:.0%} of the members (above the marginal threshold, "
            f"{limit}): the national committee must acknowledge it (acknowledge_major_change)",
        )
    ]


@effect
def record_acknowledgement(ctx: Context) -> tuple[JSON, JSON]:
    share, threshold = change_share(ctx)
    ack = {
        "at": ctx.now.isoformat(),
        "actor": ctx.actor.label,
        "reason": ctx.payload.get("reason"),
        "share_changed": round(share, 4),
        "marginal_threshold": threshold,
    }
    return {**copy.deepcopy(dict(ctx.facts)), "major_change_acknowledged": ack}, ack


@effect
def record_amendment_decision(ctx: Context) -> tuple[JSON, JSON]:
    approved = ctx.trigger == "approve"
    t = territory_facts(ctx)
    decision: dict[str, Any] = {
        "decision": "approved" if approved else "refused",
        "at": ctx.now.isoformat(),
        "effective_on": t.get("effective_on") if approved else None,
    }
    if not approved:
        decision["unfavourable"] = unfavourable_opinions(ctx)
    return {**ctx.facts, "decision": decision}, decision
