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
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stdnum.fr import siren as siren_number

from ti_workflow.clock import paris
from ti_workflow.domain.actors import REGIONAL_ROLES, Actor
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.candidacy import (
    BINOME_PENDING,
    GOVERNANCE_ROLES,
    PER_INTERCOMMUNALITY,
    PRIORITIES,
    PRIORITY_LABELS_FR,
    ROLE_LABELS_FR,
    TERRITORY_BINOME,
    normalise,
    parse_candidacy,
)
from ti_workflow.domain.forms import FormSpec
from ti_workflow.domain.reference import Referential
from ti_workflow.errors import WARNING, Rule

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
    form: FormSpec | None = None
    """The workflow's declared form, if it declares one (for ``form_complete``)."""


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


NBSP = "\u00a0"
"""French typography: before « : ; ? ! », inside « », in "n° 1" and "34 %"."""


def _n(number: object) -> str:
    return f"n°{NBSP}{number}"


def _q(text: str) -> str:
    return f"«{NBSP}{text}{NBSP}»"


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
                "(justification à fournir)",
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
                f"justification de ses enjeux de transitions industrielles (à fournir)",
                f"a métropole ({names}) may only take part by exception, with a justification "
                f"(metropole_justification)",
            )
        )
    return failed


def _role_fr(role: str, plural: bool = False) -> str:
    label = ROLE_LABELS_FR.get(role, role)
    return label + "s" if plural else label


def _territory_members(members: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Members of the governance for the whole territory (not one intercommunality's)."""
    return [m for m in members if not m.get("represents")]


def _polynome_rule(count: int, governance: Mapping[str, Any]) -> list[Rule]:
    if count <= 2 or (governance.get("extended_governance_justification") or "").strip():
        return []
    return [
        Rule(
            "governance_extended_unjustified",
            "4.4",
            f"une gouvernance de {count}{NBSP}membres pour le territoire (polynôme) doit être "
            f"justifiée (justification de la gouvernance élargie à fournir)",
            f"a governance of {count} members for the territory needs a justification "
            f"(extended_governance_justification)",
        )
    ]


def _binome_rules(members: list[Mapping[str, Any]]) -> list[Rule]:
    roles = {m.get("role") for m in members}
    failed = []
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
    return failed


def _groupement_fr(ctx: Context, siren: str) -> str:
    g = ctx.reference.groupement(siren)
    return f"{g.name} (SIREN {siren})" if g else f"SIREN {siren}"


def _per_intercommunality_rules(
    ctx: Context, members: list[Mapping[str, Any]], governance: Mapping[str, Any]
) -> list[Rule]:
    perimeter = list(dict.fromkeys((ctx.data.get("perimeter") or {}).get("members") or []))
    failed: list[Rule] = []
    by_epci: dict[str, list[Mapping[str, Any]]] = {siren: [] for siren in perimeter}
    for i, m in enumerate(members):
        siren = m.get("represents")
        if not siren:
            failed.append(
                Rule(
                    "governance_member_without_intercommunality",
                    "4.1",
                    f"le membre {_n(i + 1)} de la gouvernance doit indiquer l'intercommunalité "
                    f"qu'il représente (un binôme par intercommunalité)",
                    f"governance member #{i + 1} must name the intercommunality it represents "
                    f"(represents: a SIREN of the perimeter)",
                )
            )
        elif siren not in by_epci:
            failed.append(
                Rule(
                    "governance_represents_outside_perimeter",
                    "4.1",
                    f"le membre {_n(i + 1)} de la gouvernance représente le groupement "
                    f"{_groupement_fr(ctx, siren)}, qui ne fait pas partie du périmètre",
                    f"governance member #{i + 1} represents {siren}, which is not in the perimeter",
                )
            )
        else:
            by_epci[siren].append(m)
    for siren, found in by_epci.items():
        roles = {m.get("role") for m in found}
        lacking = [r for r in GOVERNANCE_ROLES if r not in roles]
        if lacking:
            fr = " et ".join(f"un {_role_fr(r)}" for r in lacking)
            failed.append(
                Rule(
                    "governance_intercommunality_without_binome",
                    "4.1",
                    f"le binôme de l'intercommunalité {_groupement_fr(ctx, siren)} est incomplet"
                    f"{NBSP}: il manque {fr}",
                    f"the binôme of intercommunality {siren} lacks: {', '.join(lacking)}",
                )
            )
        if (
            len(found) > 2
            and not (governance.get("extended_governance_justification") or "").strip()
        ):
            failed.append(
                Rule(
                    "governance_extended_unjustified",
                    "4.4",
                    f"l'intercommunalité {_groupement_fr(ctx, siren)} compte {len(found)}{NBSP}"
                    f"membres (polynôme){NBSP}: cette gouvernance doit être justifiée "
                    f"(justification de la gouvernance élargie à fournir)",
                    f"intercommunality {siren} has {len(found)} members: a justification is "
                    f"needed (extended_governance_justification)",
                )
            )
    return failed


@guard
def governance_rules(ctx: Context) -> list[Rule]:
    """FAQ 4.1 and 4.4: a binôme for the territory, one per intercommunality at first, or
    none yet with how it will be found (it "ne doit pas devenir un point bloquant")."""
    governance = ctx.data.get("governance") or {}
    members = list(governance.get("members") or [])
    mode = governance.get("mode") or TERRITORY_BINOME
    failed: list[Rule] = []
    for i, m in enumerate(members):
        if not (m.get("name") or "").strip():
            failed.append(
                Rule(
                    "governance_member_unnamed",
                    "4.1",
                    f"le membre {_n(i + 1)} de la gouvernance n'a pas de nom",
                    f"governance member #{i + 1} has no name",
                )
            )
    territory = _territory_members(members)
    if mode == PER_INTERCOMMUNALITY:
        failed += _per_intercommunality_rules(ctx, members, governance)
        return failed
    if mode == BINOME_PENDING:
        if not (governance.get("binome_search_plan") or "").strip():
            failed.append(
                Rule(
                    "governance_binome_search_plan_missing",
                    "4.1",
                    "sans binôme élu-industriel identifié, la candidature doit expliquer comment "
                    "il sera trouvé (démarche d'identification du binôme à fournir)",
                    "without a binôme yet, the candidacy must say how it will be found "
                    "(binome_search_plan)",
                )
            )
    else:
        failed += _binome_rules(members)
    return failed + _polynome_rule(len(territory), governance)


def _fold(text: Any) -> str:
    """Case-, accent- and spacing-insensitive form of a name (letters of intent, FAQ 4.5)."""
    decomposed = unicodedata.normalize("NFKD", str(text or ""))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def letter_matches(letter: Mapping[str, Any], member: Mapping[str, Any]) -> bool:
    """A letter is the member's if it has the same signatory name or the same organisation."""
    sig, org = _fold(letter.get("signatory")), _fold(letter.get("organisation"))
    name, member_org = _fold(member.get("name")), _fold(member.get("organisation"))
    return bool(sig and sig == name) or bool(org and org == member_org)


def classify_letters(data: Mapping[str, Any]) -> dict[str, list[str]]:
    """Signed letters by what they stand for: a governance member's (``elected``,
    ``industrial``) or another actor's (``other``: chambers, federations...). In governance
    ``pending``, a letter no member matches counts for the role its signatory declares."""
    governance = data.get("governance") or {}
    members = list(governance.get("members") or [])
    pending = (governance.get("mode") or TERRITORY_BINOME) == BINOME_PENDING
    found: dict[str, list[str]] = {"elected": [], "industrial": [], "other": []}
    for letter in data.get("letters_of_intent") or []:
        signatory = (letter.get("signatory") or "").strip()
        if not signatory:
            continue
        org = (letter.get("organisation") or "").strip()
        label = f"{signatory} ({org})" if org else signatory
        roles = [r for r in GOVERNANCE_ROLES if any(
            m.get("role") == r and letter_matches(letter, m) for m in members
        )]  # fmt: skip
        if not roles and pending and letter.get("signatory_role") in GOVERNANCE_ROLES:
            roles = [letter["signatory_role"]]
        for role in roles or ["other"]:
            found[role].append(label)
    return found


@guard
def letters_of_intent_rules(ctx: Context) -> list[Rule]:
    """FAQ 4.5: letters confirm the binôme and the support of the élus and industriels: one
    at least from an elected and one from an industrial member of the governance."""
    found = classify_letters(ctx.data)
    if not any(found.values()):
        return [
            Rule(
                "letter_of_intent_missing",
                "4.5",
                "la candidature doit être accompagnée de lettres d'intention signées, au moins "
                "une d'un élu et une d'un industriel de la gouvernance",
                "signed letters of intent are required, at least one from an elected and one "
                "from an industrial member of the governance",
            )
        ]
    governance = ctx.data.get("governance") or {}
    pending = (governance.get("mode") or TERRITORY_BINOME) == BINOME_PENDING
    failed = []
    for role in GOVERNANCE_ROLES:
        if found[role]:
            continue
        if pending:
            fr = (
                f"aucune lettre d'intention d'un {_role_fr(role)} du territoire{NBSP}: "
                f"joignez-en une signée par un {_role_fr(role)} de la gouvernance ou "
                f"précisez la qualité du signataire ({_role_fr(role)})"
            )
        else:
            fr = (
                f"aucune lettre d'intention ne correspond à un {_role_fr(role)} de la "
                f"gouvernance (même nom de signataire ou même organisme)"
            )
        failed.append(
            Rule(
                f"letter_of_intent_no_{role}",
                "4.5",
                fr,
                f"no letter of intent matches an {role} member of the governance "
                f"(same signatory name or organisation)"
                + (", or declares signatory_role " + role if pending else ""),
            )
        )
    return failed


LONG_ACTION_MONTHS = 48
"""FAQ 3.1: "une réalisation en quatre ans maximum", phases "pour les cas les plus complexes"."""


@guard
def action_plan_rules(ctx: Context) -> list[Rule]:
    """FAQ 3.1: "plusieurs actions", each with its title and "quelques éléments descriptifs";
    FAQ 1.5: each under one of the four priorities. Beyond four years without phases: a
    warning (advice of the FAQ, not a requirement)."""
    actions = list(ctx.data.get("action_plan") or [])
    if len(actions) < 2:
        code = "action_plan_empty" if not actions else "action_plan_too_short"
        return [
            Rule(
                code,
                "3.1",
                f"le plan d'action doit comporter plusieurs actions, au moins deux "
                f"({len(actions)} actuellement)",
                f"the action plan needs several actions, at least two (now {len(actions)})",
            )
        ]
    failed = []
    allowed_fr = ", ".join(PRIORITY_LABELS_FR.values())
    allowed = ", ".join(PRIORITIES)
    for i, action in enumerate(actions):
        if not (action.get("title") or "").strip():
            failed.append(
                Rule(
                    "action_untitled",
                    "3.1",
                    f"l'action {_n(i + 1)} du plan d'action n'a pas de titre",
                    f"action #{i + 1} has no title",
                )
            )
        if action.get("priority") not in PRIORITIES:
            failed.append(
                Rule(
                    "action_without_priority",
                    "1.5",
                    f"l'action {_n(i + 1)} doit relever d'une des quatre priorités du programme "
                    f"({allowed_fr})",
                    f"action #{i + 1} must come under one of the four priorities ({allowed})",
                )
            )
        if not (action.get("summary") or "").strip():
            failed.append(
                Rule(
                    "action_without_summary",
                    "3.1",
                    f"l'action {_n(i + 1)} doit être décrite en quelques éléments (synthèse "
                    f"à fournir)",
                    f"action #{i + 1} needs a summary",
                )
            )
        months = action.get("duration_months")
        phases = [p for p in action.get("phases") or [] if str(p).strip()]
        if isinstance(months, int) and months > LONG_ACTION_MONTHS and not phases:
            failed.append(
                Rule(
                    "action_long_without_phases",
                    "3.1",
                    f"l'action {_n(i + 1)} est prévue sur {months}{NBSP}mois, au-delà de "
                    f"quatre ans{NBSP}: il est conseillé de la subdiviser en phases",
                    f"action #{i + 1} lasts {months} months, beyond four years: splitting it "
                    f"into phases is advised",
                    severity=WARNING,
                )
            )
    return failed


OPEN_CANDIDACY_STATES_FR = {
    "submitted": "déposée",
    "regional_review": "en avis d'opportunité régional",
    "national_review": "en sélection nationale",
}
"""The open candidacies a groupement may already be part of (``groupements_elsewhere``)."""


@guard
def groupements_not_held_elsewhere(ctx: Context) -> list[Rule]:
    """Programme rule (not written in the FAQ; the published list holds no such case): a
    groupement belongs to one territory. At ``submit``: a warning only (the other
    candidacy may not be labelled); the refusal comes when labelling."""
    held = ctx.extra.get("groupements_elsewhere") or {}
    warnings = []
    for siren, holders in held.items():
        where_fr, where_en = [], []
        for h in holders:
            if h.get("kind") == "territory":
                where_fr.append(f"le Territoire d'industrie labellisé {_q(h.get('name') or '')}")
                where_en.append(f"labelled territory {h.get('territory_id')}")
            else:
                state = OPEN_CANDIDACY_STATES_FR.get(str(h.get("state")), "en cours")
                where_fr.append(
                    f"la candidature {_q(h.get('title') or '')} (dossier {_n(h.get('case_id'))}"
                    f", {state})"
                )
                where_en.append(f"candidacy {h.get('case_id')} ({h.get('state')})")
        warnings.append(
            Rule(
                "groupement_held_elsewhere",
                None,
                f"le groupement {_groupement_fr(ctx, siren)} figure déjà dans "
                f"{' et dans '.join(where_fr)}{NBSP}: un groupement ne peut appartenir qu'à un "
                f"seul Territoire d'industrie (règle du programme)",
                f"groupement {siren} is already part of {' and '.join(where_en)}: a groupement "
                f"belongs to one territory only (programme rule)",
                severity=WARNING,
            )
        )
    return warnings


# --- regional review ----------------------------------------------------------------


def missing_opinions(regions: tuple[str, ...], facts: Mapping[str, Any]) -> list[str]:
    opinions = facts.get("opinions") or {}
    return [
        f"{region}/{body}"
        for region in regions
        for body in REGIONAL_ROLES
        if body not in (opinions.get(region) or {})
    ]


BODY_LABELS_FR = {
    "regional_council": "conseil régional",
    "state_services": "services de l'État en région",
}


def opinions_fr(reference: Referential, missing: list[str]) -> str:
    """``[84/regional_council, 84/state_services]`` -> ``Auvergne-Rhône-Alpes (conseil
    régional, services de l'État en région)``, regions separated by semicolons."""
    by_region: dict[str, list[str]] = {}
    for item in missing:
        region, _, body = item.partition("/")
        by_region.setdefault(region, []).append(BODY_LABELS_FR.get(body, body))
    return f"{NBSP}; ".join(
        f"{reference.region_name(region)} ({', '.join(bodies)})"
        for region, bodies in by_region.items()
    )


def any_opinion_given(facts: Mapping[str, Any]) -> bool:
    return any(by_region for by_region in (facts.get("opinions") or {}).values())


@guard
def all_regional_opinions_given(ctx: Context) -> list[Rule]:
    missing = missing_opinions(ctx.regions, ctx.facts)
    if not missing:
        return []
    listed_fr = opinions_fr(ctx.reference, missing)
    return [
        Rule(
            "regional_opinions_missing",
            "1.3",
            f"avis d'opportunité manquants{NBSP}: {listed_fr}",
            f"missing regional opinions: {', '.join(missing)}",
        )
    ]


@guard
def reason_when_no_opinion(ctx: Context) -> list[Rule]:
    """FAQ 1.3 (line 91): the national selection is made "sur la base d'un avis
    d'opportunité"; a region may stay silent, but labelling a case on which not one opinion
    was given is an explicit, motivated choice of the committee."""
    if any_opinion_given(ctx.facts) or (ctx.payload.get("reason") or "").strip():
        return []
    return [
        Rule(
            "label_without_any_opinion_unjustified",
            "1.3",
            "aucun avis d'opportunité régional n'a été rendu sur cette candidature"
            f"{NBSP}: la labellisation doit être motivée (motif à indiquer)",
            "not one regional opinion was given on this candidacy: labelling it needs a reason",
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
    """The decision, with the opinions it was taken without (FAQ 1.3: the decision's mail
    and page say which were missing)."""
    facts = dict(ctx.facts)
    decision = "labelled" if ctx.trigger == "label" else "not_selected"
    facts["decision"] = {
        "decision": decision,
        "reason": ctx.payload.get("reason"),
        "at": ctx.now.isoformat(),
    }
    annotations: JSON = {"decision": decision}
    missing = missing_opinions(ctx.regions, ctx.facts)
    if missing:
        facts["decision"]["missing_opinions"] = missing
        facts["decision"]["without_any_opinion"] = not any_opinion_given(ctx.facts)
        annotations["missing_opinions"] = missing
        annotations["without_any_opinion"] = facts["decision"]["without_any_opinion"]
    return facts, annotations


@effect
def record_submission(ctx: Context) -> tuple[JSON, JSON]:
    """What the console and the audit show of a filed candidacy: its governance mode (FAQ
    4.1) and its letters of intent by what they stand for (FAQ 4.5)."""
    facts = dict(ctx.facts)
    governance = ctx.data.get("governance") or {}
    mode = governance.get("mode") or TERRITORY_BINOME
    letters = classify_letters(ctx.data)
    facts["governance_mode"] = mode
    facts["letters_of_intent"] = letters
    return facts, {"governance_mode": mode, "letters_of_intent": letters}


# --- follow-up of a territory labelled without one binôme (FAQ 4.1) -------------------------

BINOME_FOLLOW_UP_MODES = (PER_INTERCOMMUNALITY, BINOME_PENDING)


def has_territory_binome(members: list[Mapping[str, Any]]) -> bool:
    """An elected and an industrial member for the whole territory (none ``represents``)."""
    roles = {m.get("role") for m in _territory_members(members)}
    return set(GOVERNANCE_ROLES) <= roles


@guard
def binome_follow_up_due(ctx: Context) -> list[Rule]:
    """FAQ 4.1: a territory labelled with one binôme per intercommunality, or none yet, is
    followed until a governance amendment gives it one binôme for the territory. The
    territory's governance in force comes from the database (``territory_governance``)."""
    mode = ctx.facts.get("governance_mode") or TERRITORY_BINOME
    if mode not in BINOME_FOLLOW_UP_MODES:
        return [
            Rule(
                "binome_follow_up_not_needed",
                "4.1",
                "le territoire a été labellisé avec un binôme élu-industriel à son échelle",
                "the territory was labelled with one binôme for the whole territory",
            )
        ]
    t = ctx.extra.get("territory_governance") or {}
    if t.get("amended") and has_territory_binome(list(t.get("members") or [])):
        return [
            Rule(
                "binome_consolidated",
                "4.1",
                "une modification de la gouvernance approuvée a donné au territoire un binôme "
                "élu-industriel à son échelle",
                "an approved governance amendment gave the territory one binôme",
            )
        ]
    return []


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
