"""The named guards and effects that workflow files refer to, and the forms they check.

Guards return every rule that fails (never just the first), each citing the FAQ
section it comes from; an empty list means the guard holds. Effects compute what a
transition records beyond its payload (opinions, missing opinions, decisions): they
return the case's new ``facts`` and the annotations stored in the event. Both are
pure functions of a :class:`Context`, so an auditor replaying the history gets the
same answers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stdnum.fr import siren as siren_number

from ti_workflow.clock import paris
from ti_workflow.domain.actors import REGIONAL_ROLES, Actor
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.candidacy import PRIORITIES, normalise, parse_candidacy
from ti_workflow.domain.reference import Referential
from ti_workflow.errors import Rule

JSON = dict[str, Any]


@dataclass(frozen=True)
class Context:
    """Everything a guard or an effect may look at: no database, no clock call."""

    case_id: int
    state: str
    data: Mapping[str, Any]
    facts: Mapping[str, Any]
    regions: tuple[str, ...]
    actor: Actor
    now: datetime
    campaign: Campaign
    reference: Referential
    payload: Mapping[str, Any] = field(default_factory=dict)
    trigger: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Read-only facts from the database added by the engine's context providers."""


Guard = Callable[[Context], list[Rule]]
Effect = Callable[[Context], tuple[JSON, JSON]]

GUARDS: dict[str, Guard] = {}
EFFECTS: dict[str, Effect] = {}


def guard(fn: Guard) -> Guard:
    GUARDS[fn.__name__] = fn
    return fn


def effect(fn: Effect) -> Effect:
    EFFECTS[fn.__name__] = fn
    return fn


def _fmt(instant: datetime) -> str:
    return paris(instant).strftime("%d/%m/%Y %H:%M:%S")


# --- candidacy guards -------------------------------------------------------------


@guard
def within_campaign_window(ctx: Context) -> list[Rule]:
    c = ctx.campaign
    if ctx.now < c.opens_at:
        return [
            Rule(
                "window_not_open",
                "1.2",
                f"le dépôt des candidatures n'ouvre que le {c.opens_on:%d/%m/%Y} "
                f"(nous sommes le {_fmt(ctx.now)}, heure de Paris)",
                f"filing opens on {c.opens_on.isoformat()} (now: {paris(ctx.now).isoformat()})",
            )
        ]
    return before_campaign_window_closes(ctx)


@guard
def before_campaign_window_closes(ctx: Context) -> list[Rule]:
    """FAQ 1.2: nothing is filed after the window; a draft opened before it opens is the
    way prospective candidates register (they are told when it opens)."""
    c = ctx.campaign
    if ctx.now > c.closes_at:
        return [
            Rule(
                "window_closed",
                "1.2",
                f"le dépôt des candidatures était ouvert jusqu'au {c.closes_on:%d/%m/%Y} inclus "
                f"(nous sommes le {_fmt(ctx.now)}, heure de Paris)",
                f"filing closed at the end of {c.closes_on.isoformat()} Europe/Paris "
                f"(now: {paris(ctx.now).isoformat()})",
            )
        ]
    return []


@functools.lru_cache(maxsize=8_192)
def valid_siren(siren: str) -> bool:
    """SIREN checksum (python-stdnum), remembered: perimeters are drawn from some 1,300
    groupements, checked on every submission and again by every audit replay."""
    return bool(siren_number.is_valid(siren))


@guard
def perimeter_rules(ctx: Context) -> list[Rule]:
    perimeter = ctx.data.get("perimeter") or {}
    members: list[str] = list(perimeter.get("members") or [])
    failed: list[Rule] = []
    seen: set[str] = set()
    for siren in members:
        if siren in seen:
            failed.append(
                Rule(
                    "perimeter_duplicate",
                    "2.1",
                    f"le groupement {siren} figure plusieurs fois dans le périmètre",
                    f"groupement {siren} is listed more than once",
                )
            )
        seen.add(siren)
    known = []
    for siren in dict.fromkeys(members):
        if not valid_siren(siren):
            failed.append(
                Rule(
                    "perimeter_invalid_siren",
                    "2.1",
                    f"{siren} n'est pas un numéro SIREN valide (clé de contrôle incorrecte)",
                    f"{siren} is not a valid SIREN (checksum fails)",
                )
            )
            continue
        g = ctx.reference.groupement(siren)
        if g is None:
            failed.append(
                Rule(
                    "perimeter_unknown_groupement",
                    "2.1",
                    f"le SIREN {siren} n'est pas celui d'un EPCI à fiscalité propre "
                    f"ni d'un établissement public territorial du Grand Paris (référentiel 2023)",
                    f"SIREN {siren} is not an EPCI à fiscalité propre nor a Grand Paris EPT "
                    f"(2023 reference data)",
                )
            )
            continue
        known.append(g)
    distinct = len(seen)
    if distinct == 0:
        failed.append(
            Rule(
                "perimeter_empty",
                "2.1",
                "le périmètre doit regrouper au moins deux intercommunalités",
                "the perimeter must group at least two intercommunalities",
            )
        )
    elif distinct == 1 and not (perimeter.get("single_member_justification") or "").strip():
        failed.append(
            Rule(
                "perimeter_single_member_unjustified",
                "2.2",
                "un périmètre d'une seule intercommunalité doit justifier de sa taille critique "
                "(single_member_justification)",
                "a single-intercommunality perimeter needs a justification of its critical "
                "size (single_member_justification)",
            )
        )
    metropoles = [g for g in known if g.is_metropole]
    if metropoles and not (perimeter.get("metropole_justification") or "").strip():
        names = ", ".join(g.name for g in metropoles)
        failed.append(
            Rule(
                "perimeter_metropole_unjustified",
                "2.4",
                f"une métropole ({names}) ne peut être candidate que par exception, avec une "
                f"justification (metropole_justification)",
                f"a métropole ({names}) may only take part by exception, with a justification "
                f"(metropole_justification)",
            )
        )
    return failed


@guard
def governance_rules(ctx: Context) -> list[Rule]:
    governance = ctx.data.get("governance") or {}
    members = list(governance.get("members") or [])
    roles = [m.get("role") for m in members]
    failed: list[Rule] = []
    if "elected" not in roles:
        failed.append(
            Rule(
                "governance_no_elected",
                "4.1",
                "la gouvernance doit compter au moins un élu (binôme élu-industriel)",
                "the governance needs at least one elected official (binôme)",
            )
        )
    if "industrial" not in roles:
        failed.append(
            Rule(
                "governance_no_industrial",
                "4.1",
                "la gouvernance doit compter au moins un industriel (binôme élu-industriel)",
                "the governance needs at least one industrialist (binôme)",
            )
        )
    for i, m in enumerate(members):
        if not (m.get("name") or "").strip():
            failed.append(
                Rule(
                    "governance_member_unnamed",
                    "4.1",
                    f"le membre n°{i + 1} de la gouvernance n'a pas de nom",
                    f"governance member #{i + 1} has no name",
                )
            )
    if len(members) > 2 and not (governance.get("extended_governance_justification") or "").strip():
        failed.append(
            Rule(
                "governance_extended_unjustified",
                "4.4",
                f"une gouvernance de {len(members)} membres (polynôme) doit être justifiée "
                f"(extended_governance_justification)",
                f"a governance of {len(members)} members needs a justification "
                f"(extended_governance_justification)",
            )
        )
    return failed


@guard
def letters_of_intent_rules(ctx: Context) -> list[Rule]:
    letters = [
        x for x in ctx.data.get("letters_of_intent") or [] if (x.get("signatory") or "").strip()
    ]
    if letters:
        return []
    return [
        Rule(
            "letter_of_intent_missing",
            "4.5",
            "au moins une lettre d'intention signée doit accompagner la candidature",
            "at least one signed letter of intent must be attached",
        )
    ]


@guard
def action_plan_rules(ctx: Context) -> list[Rule]:
    actions = list(ctx.data.get("action_plan") or [])
    if not actions:
        return [
            Rule(
                "action_plan_empty",
                "3.1",
                "le plan d'action doit comporter au moins une action",
                "the action plan needs at least one action",
            )
        ]
    failed = []
    allowed = ", ".join(PRIORITIES)
    for i, action in enumerate(actions):
        if not (action.get("title") or "").strip():
            failed.append(
                Rule(
                    "action_untitled",
                    "3.1",
                    f"l'action n°{i + 1} du plan d'action n'a pas de titre",
                    f"action #{i + 1} has no title",
                )
            )
        if action.get("priority") not in PRIORITIES:
            failed.append(
                Rule(
                    "action_without_priority",
                    "1.5",
                    f"l'action n°{i + 1} doit relever d'une des quatre priorités du programme "
                    f"({allowed})",
                    f"action #{i + 1} must come under one of the four priorities ({allowed})",
                )
            )
    return failed


# --- regional review ----------------------------------------------------------------


def missing_opinions(regions: tuple[str, ...], facts: Mapping[str, Any]) -> list[str]:
    opinions = facts.get("opinions") or {}
    return [
        f"{region}/{body}"
        for region in regions
        for body in REGIONAL_ROLES
        if body not in (opinions.get(region) or {})
    ]


@guard
def all_regional_opinions_given(ctx: Context) -> list[Rule]:
    missing = missing_opinions(ctx.regions, ctx.facts)
    if not missing:
        return []
    listed = ", ".join(missing)
    return [
        Rule(
            "regional_opinions_missing",
            "1.3",
            f"avis d'opportunité manquants : {listed}",
            f"missing regional opinions: {listed}",
        )
    ]


@effect
def record_regions(ctx: Context) -> tuple[JSON, JSON]:
    return dict(ctx.facts), {"regions": list(ctx.regions)}


FACTS_KEPT: frozenset[str] = frozenset({"record_regions"})
"""Effects that only annotate: the facts they return equal ``ctx.facts`` (tested), so a
snapshot, which rebuilds facts and not annotations, may skip the steps that have no other."""


@effect
def record_opinion(ctx: Context) -> tuple[JSON, JSON]:
    # New dicts along the path written, the rest shared: ``ctx.facts`` is never mutated.
    facts = dict(ctx.facts)
    region = ctx.actor.region or ""
    body = ctx.actor.role
    opinions = facts["opinions"] = dict(facts.get("opinions") or {})
    by_region = opinions[region] = dict(opinions.get(region) or {})
    previous = by_region.get(body)
    by_region[body] = {
        "opinion": ctx.payload.get("opinion"),
        "reasons": ctx.payload.get("reasons"),
        "at": ctx.now.isoformat(),
        "actor": ctx.actor.label,
    }
    annotations = {"region": region, "body": body}
    if previous is not None:
        annotations["replaces"] = previous["opinion"]
    return facts, annotations


@effect
def record_missing_opinions(ctx: Context) -> tuple[JSON, JSON]:
    facts = dict(ctx.facts)
    missing = missing_opinions(ctx.regions, ctx.facts)
    facts["missing_opinions"] = missing
    return facts, {"missing_opinions": missing}


@effect
def record_decision(ctx: Context) -> tuple[JSON, JSON]:
    facts = dict(ctx.facts)
    decision = "labelled" if ctx.trigger == "label" else "not_selected"
    facts["decision"] = {
        "decision": decision,
        "reason": ctx.payload.get("reason"),
        "at": ctx.now.isoformat(),
    }
    return facts, {"decision": decision}


# --- forms ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """How a workflow's case data is checked, normalised and routed to regions."""

    name: str
    parse: Callable[[Any], dict[str, Any]]
    regions: Callable[[Mapping[str, Any], Referential], tuple[str, ...]]
    title: Callable[[Mapping[str, Any]], str]


FORMS: dict[str, Form] = {
    "candidacy": Form(
        name="candidacy",
        parse=lambda data: normalise(parse_candidacy(data)),
        regions=lambda data, ref: ref.regions_of(
            (data.get("perimeter") or {}).get("members") or []
        ),
        title=lambda data: str(data.get("territory_name", "")),
    ),
}
