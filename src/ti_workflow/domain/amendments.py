"""Guards, effects and forms of the amendment workflows (FAQ 2.3), registered on import.

After labelling, a territory may amend its perimeter and its governance at the
margin, with a favourable opinion from the regional council **and** the State
services of every region concerned. The opinions are binding: one unfavourable
opinion refuses, both favourable from every region approve. Database facts (the
territory's members on the effective date, memberships elsewhere, communes) come
in ``Context.extra["territory"]``, filled by :mod:`ti_workflow.territories.facts`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from typing import Any

from stdnum.fr import siren as siren_number

from ti_workflow.domain import amendment_forms as af
from ti_workflow.domain.amendment_review import fr_date, rule, territory_facts
from ti_workflow.domain.rules import FORMS, Context, Form, governance_rules, guard
from ti_workflow.errors import Rule

FORMS[af.PERIMETER_AMENDMENT] = Form(
    name=af.PERIMETER_AMENDMENT,
    parse=af.parse_perimeter_amendment,
    regions=af.amendment_regions,
    title=lambda data: af.amendment_title(af.PERIMETER_AMENDMENT, data),
)
FORMS[af.GOVERNANCE_AMENDMENT] = Form(
    name=af.GOVERNANCE_AMENDMENT,
    parse=af.parse_governance_amendment,
    regions=af.amendment_regions,
    title=lambda data: af.amendment_title(af.GOVERNANCE_AMENDMENT, data),
)


@guard
def territory_labelled(ctx: Context) -> list[Rule]:
    t = territory_facts(ctx)
    tid = ctx.data.get("territory_id")
    if not t.get("found"):
        return [
            rule(
                "territory_unknown",
                f"aucun territoire d'industrie labellisé n'a l'identifiant {tid!r}",
                f"no labelled territory has the id {tid!r}",
            )
        ]
    eff, labelled, last = t["effective_on"], t["labelled_on"], t.get("last_change_on")
    if eff < labelled:
        return [
            rule(
                "amendment_before_labelling",
                f"le territoire {tid} n'est labellisé que depuis le {fr_date(labelled)} : "
                f"une modification ne peut prendre effet le {fr_date(eff)}",
                f"territory {tid} is labelled since {labelled}: a change cannot take effect "
                f"on {eff}",
            )
        ]
    if last and eff <= last:
        return [
            rule(
                "amendment_not_after_last_change",
                f"la dernière modification du territoire {tid} a pris effet le {fr_date(last)} : "
                f"la date d'effet ({fr_date(eff)}) doit être postérieure",
                f"the last change of territory {tid} took effect on {last}: the effective "
                f"date ({eff}) must be later",
            )
        ]
    return []


@guard
def filer_attached(ctx: Context) -> list[Rule]:
    """Only an account attached to the territory files for it: its contact (its candidacy's,
    or the one the Délégation set for an imported territory) or a governance member with
    an e-mail. The filer is the case's owner: the account that created and submits it."""
    t = territory_facts(ctx)
    if not t.get("found"):
        return []  # territory_labelled says so
    filers: Mapping[str, Any] = t.get("filers") or {}
    allowed = {e for e in [filers.get("contact"), *(filers.get("governance") or [])] if e}
    email = (ctx.actor.email or "").lower()
    if email in allowed:
        return []
    tid = t["id"]
    if not allowed:
        return [
            rule(
                "filer_no_contact",
                f"aucun compte n'est rattaché au territoire {tid} : la Délégation aux "
                f"Territoires d'industrie doit d'abord enregistrer son contact",
                f"no account is attached to territory {tid}: the Délégation must first set "
                f"its contact (territory contact set)",
            )
        ]
    return [
        rule(
            "filer_not_attached",
            f"le compte {email or ctx.actor.label} n'est pas rattaché au territoire {tid} : "
            f"seuls son contact et les membres de sa gouvernance dotés d'une adresse "
            f"électronique peuvent déposer une modification",
            f"account {email or ctx.actor.label} is not attached to territory {tid}: only its "
            f"contact and the members of its governance with an e-mail may file an amendment",
        )
    ]


def _common_rules(ctx: Context, changes: int) -> list[Rule]:
    failed = []
    if not (ctx.data.get("justification") or "").strip():
        failed.append(
            rule(
                "amendment_unjustified",
                "la modification doit être justifiée (justification)",
                "the amendment needs a justification (justification)",
            )
        )
    if not changes and not ctx.data.get("new_name"):
        failed.append(
            rule(
                "amendment_empty",
                "la modification ne change rien (aucun ajout, retrait ni nouveau nom)",
                "the amendment changes nothing (nothing added, removed or renamed)",
            )
        )
    name = ctx.data.get("new_name")
    if name and name == territory_facts(ctx).get("name"):
        failed.append(
            rule(
                "amendment_same_name",
                f"le territoire s'appelle déjà « {name} »",
                f"the territory is already named {name!r}",
            )
        )
    return failed


def _siren_rules(ctx: Context, sirens: list[str], field: str) -> list[Rule]:
    failed = []
    for siren, n in Counter(sirens).items():
        if n > 1:
            failed.append(
                rule(
                    "amendment_duplicate",
                    f"{field} : le groupement {siren} figure plusieurs fois",
                    f"{field}: groupement {siren} is listed more than once",
                )
            )
    for siren in dict.fromkeys(sirens):
        if not siren_number.is_valid(siren):
            failed.append(
                rule(
                    "amendment_invalid_siren",
                    f"{field} : {siren} n'est pas un numéro SIREN valide (clé de contrôle)",
                    f"{field}: {siren} is not a valid SIREN (checksum fails)",
                    "2.1",
                )
            )
        elif ctx.reference.groupement(siren) is None:
            failed.append(
                rule(
                    "amendment_unknown_groupement",
                    f"{field} : le SIREN {siren} n'est pas celui d'un EPCI à fiscalité propre ni "
                    f"d'un EPT du Grand Paris (référentiel 2023)",
                    f"{field}: SIREN {siren} is not an EPCI à fiscalité propre nor a Grand "
                    f"Paris EPT (2023 reference data)",
                    "2.1",
                )
            )
    return failed


def _gname(ctx: Context, siren: str) -> str:
    g = ctx.reference.groupement(siren)
    return f"{siren} ({g.name})" if g else siren


@guard
def perimeter_amendment_rules(ctx: Context) -> list[Rule]:
    t = territory_facts(ctx)
    add, remove = list(ctx.data.get("add") or []), list(ctx.data.get("remove") or [])
    add_c, remove_c = ctx.data.get("add_communes") or [], ctx.data.get("remove_communes") or []
    failed = _common_rules(ctx, len(add) + len(remove) + len(add_c) + len(remove_c))
    failed += _siren_rules(ctx, add, "add") + _siren_rules(ctx, remove, "remove")
    if not t.get("found"):
        return failed
    tid = t["id"]
    members = set(t.get("members") or [])
    for siren in sorted(set(add) & set(remove)):
        failed.append(
            rule(
                "amendment_add_and_remove",
                f"le groupement {siren} est à la fois ajouté et retiré",
                f"groupement {siren} is both added and removed",
            )
        )
    elsewhere: Mapping[str, Any] = t.get("elsewhere") or {}
    for siren in dict.fromkeys(add):
        if siren in members:
            failed.append(
                rule(
                    "amendment_add_already_member",
                    f"le groupement {_gname(ctx, siren)} fait déjà partie du territoire {tid} "
                    f"au {fr_date(t['effective_on'])}",
                    f"groupement {siren} is already a member of territory {tid} on "
                    f"{t['effective_on']}",
                )
            )
        other = elsewhere.get(siren)
        if other:
            until = f" jusqu'au {fr_date(other['valid_to'])} exclu" if other.get("valid_to") else ""
            failed.append(
                rule(
                    "amendment_double_membership",
                    f"le groupement {_gname(ctx, siren)} appartient au territoire "
                    f"{other['territory_id']} ({other['name']}) depuis le "
                    f"{fr_date(other['valid_from'])}{until} : un groupement ne peut appartenir "
                    f"à deux territoires (date d'effet {fr_date(t['effective_on'])})",
                    f"groupement {siren} belongs to territory {other['territory_id']} from "
                    f"{other['valid_from']}"
                    + (f" to {other['valid_to']}" if until else "")
                    + f": no groupement may be in two territories (effective {t['effective_on']})",
                    "2.1",
                )
            )
    for siren in dict.fromkeys(remove):
        if siren_number.is_valid(siren) and siren not in members:
            failed.append(
                rule(
                    "amendment_remove_not_member",
                    f"le groupement {_gname(ctx, siren)} ne fait pas partie du territoire {tid} "
                    f"au {fr_date(t['effective_on'])}",
                    f"groupement {siren} is not a member of territory {tid} on {t['effective_on']}",
                )
            )
    leaving = set(ctx.data.get("remove_communes") or [])
    for code, other in sorted((t.get("communes_elsewhere") or {}).items()):
        if code not in leaving:
            failed.append(
                rule(
                    "amendment_commune_elsewhere",
                    f"la commune {code}, d'un groupement ajouté, appartient déjà au territoire "
                    f"{other} : la retirer dans la même demande (remove_communes)",
                    f"commune {code}, of an added groupement, already belongs to territory "
                    f"{other}: take it out in the same amendment (remove_communes)",
                    "2.1",
                )
            )
    metropoles = [g.name for s in add if (g := ctx.reference.groupement(s)) and g.is_metropole]
    if metropoles and not (ctx.data.get("metropole_justification") or "").strip():
        names = ", ".join(metropoles)
        failed.append(
            rule(
                "amendment_metropole_unjustified",
                f"une métropole ({names}) ne rejoint un territoire que par exception, avec une "
                f"justification (metropole_justification)",
                f"a métropole ({names}) joins a territory only by exception, with a "
                f"justification (metropole_justification)",
                "2.4",
            )
        )
    after = (members | set(add)) - set(remove)
    if members and not after:
        failed.append(
            rule(
                "amendment_removes_last_member",
                f"la modification retirerait le dernier groupement du territoire {tid} : un "
                f"territoire garde au moins un membre",
                f"the amendment would remove the last groupement of territory {tid}",
            )
        )
    return failed + _commune_rules(ctx, after)


@guard
def single_intercommunality_justified(ctx: Context) -> list[Rule]:
    """FAQ 2.2: a territory of one intercommunality justifies the critical size of its
    perimeter; an amendment whose groupements leave one needs that justification too (as
    the 2.4 check for a métropole). A rename of a one-member territory changes no perimeter."""
    t = territory_facts(ctx)
    add, remove = list(ctx.data.get("add") or []), list(ctx.data.get("remove") or [])
    after = (set(t.get("members") or []) | set(add)) - set(remove)
    if not t.get("found") or not (add or remove) or len(after) != 1:
        return []
    if (ctx.data.get("single_member_justification") or "").strip():
        return []
    only = _gname(ctx, next(iter(after)))
    tid = t["id"]
    return [
        rule(
            "amendment_single_member_unjustified",
            f"après la modification, le territoire {tid} ne compterait qu'une "
            f"intercommunalité ({only}) : il doit justifier de la taille critique de ce "
            f"périmètre (single_member_justification)",
            f"after the amendment territory {tid} would have a single intercommunality "
            f"({only}): justify the critical size of this perimeter "
            f"(single_member_justification)",
            "2.2",
        )
    ]


def _commune_rules(ctx: Context, after: set[str]) -> list[Rule]:
    """A commune is in the territory after the change when included on its own, or through a
    member groupement and not taken out; only then may it be taken out, only else added."""
    communes: Mapping[str, Any] = territory_facts(ctx).get("communes") or {}
    failed = []
    for field, codes in (
        ("add_communes", ctx.data.get("add_communes") or []),
        ("remove_communes", ctx.data.get("remove_communes") or []),
    ):
        for code in dict.fromkeys(codes):
            c = communes.get(code)
            if c is None:
                failed.append(
                    rule(
                        "amendment_unknown_commune",
                        f"{field} : aucune commune n'a le code INSEE {code} (référentiel 2023)",
                        f"{field}: no commune has the INSEE code {code} (2023 reference data)",
                    )
                )
                continue
            label = f"{code} ({c['name']})"
            inside = c["included"] or (c["epci_siren"] in after and not c["excluded"])
            if field == "add_communes" and inside:
                failed.append(
                    rule(
                        "commune_already_in_territory",
                        f"la commune {label} fait déjà partie du territoire",
                        f"commune {label} is already part of the territory",
                    )
                )
            elif field == "add_communes" and c.get("held_by"):
                held = ", ".join(c["held_by"])
                failed.append(
                    rule(
                        "commune_double_membership",
                        f"la commune {label} appartient au territoire {held} à la date d'effet : "
                        f"ce territoire doit d'abord la retirer (remove_communes)",
                        f"commune {label} belongs to territory {held} on the effective date: "
                        f"that territory must first take it out (remove_communes)",
                        "2.1",
                    )
                )
            elif field == "remove_communes" and not inside:
                failed.append(
                    rule(
                        "commune_not_in_territory",
                        f"la commune {label} ne fait pas partie du territoire",
                        f"commune {label} is not part of the territory",
                    )
                )
    return failed


def governance_after(
    current: list[dict[str, Any]], data: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The governance in force once the amendment applies (used by guards and by the hook)."""
    leaving = set(data.get("remove_members") or [])
    kept = [m for m in current if m.get("name") not in leaving]
    return kept + list(data.get("add_members") or [])


def resulting_governance(ctx: Context) -> list[dict[str, Any]]:
    return governance_after(list(territory_facts(ctx).get("governance") or []), ctx.data)


@guard
def governance_amendment_rules(ctx: Context) -> list[Rule]:
    add = ctx.data.get("add_members") or []
    remove = ctx.data.get("remove_members") or []
    failed = _common_rules(ctx, len(add) + len(remove))
    t = territory_facts(ctx)
    if not t.get("found"):
        return failed
    names = {m.get("name") for m in t.get("governance") or []}
    for name in dict.fromkeys(remove):
        if name not in names:
            listed = ", ".join(sorted(str(n) for n in names)) or "aucun"
            failed.append(
                rule(
                    "governance_remove_unknown_member",
                    f"{name!r} n'est pas membre de la gouvernance en vigueur ({listed})",
                    f"{name!r} is not a member of the governance in force ({listed})",
                    "4.1",
                )
            )
    governance = {
        "members": resulting_governance(ctx),
        "extended_governance_justification": ctx.data.get("extended_governance_justification"),
    }
    return failed + governance_rules(dataclasses.replace(ctx, data={"governance": governance}))
