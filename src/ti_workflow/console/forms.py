"""The candidacy form of the console: posted fields <-> the case's data, field errors.

This checks only the shape of what was typed (a SIREN has 9 digits, a date is a date,
a priority is one of the list), in French, next to each field. Whether a file may be
submitted is the engine's business (its ``submit`` rules, shown as the checklist).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ti_workflow.domain.actors import EMAIL_RE
from ti_workflow.domain.candidacy import GOVERNANCE_ROLES, PRIORITIES
from ti_workflow.domain.reference import Groupement, Referential

SIREN_RE = re.compile(r"^\d{9}$")
MAX_ROWS = 100
TEXT_MAX = 2_000
LONG_MAX = 20_000


@dataclass
class Posted:
    """The form as posted: the data to save, the errors by field id, what was asked."""

    data: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    action: str = "enregistrer"
    search: str = ""
    letter_rows: list[int] = field(default_factory=list)
    """The row number in the form of each letter kept (its file input is ``loi-N-fichier``)."""


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _rows(form: Mapping[str, Any], prefix: str) -> int:
    raw = _text(form, f"{prefix}_rows")
    return min(int(raw), MAX_ROWS) if raw.isdigit() else 0


def parse(form: Any, *, require_identity: bool = True) -> Posted:
    """Read the posted form (a Starlette ``FormData``: ``getlist`` for repeated names)."""
    errors: dict[str, str] = {}
    action = _text(form, "action") or "enregistrer"
    name = _text(form, "territory_name")
    email = _text(form, "contact_email").lower()
    if require_identity and not name:
        errors["territory_name"] = "Indiquez le nom du territoire."
    elif len(name) > 300:
        errors["territory_name"] = "Le nom du territoire compte au plus 300 caractères."
    if require_identity and not EMAIL_RE.match(email):
        errors["contact_email"] = (
            "Indiquez une adresse électronique valide, par exemple contact@territoire.fr."
        )

    members = [m for m in form.getlist("membre") if isinstance(m, str) and SIREN_RE.match(m)]
    removed = _text(form, "retirer")
    members = [m for m in members if m != removed]
    added = _text(form, "ajouter")
    typed = _text(form, "siren_saisi").replace(" ", "")
    if action == "ajouter_siren" and typed:
        if SIREN_RE.match(typed):
            added = typed
        else:
            errors["siren_saisi"] = "Un numéro SIREN compte exactement 9 chiffres."
    if added and SIREN_RE.match(added) and added not in members:
        members.append(added)
        action = "ajouter"

    governance = []
    for i in range(_rows(form, "gov")):
        row = {k: _text(form, f"gov-{i}-{k}") for k in ("name", "role", "organisation")}
        if form.get(f"gov-{i}-remove") or not any(row.values()):
            continue
        if row["role"] not in GOVERNANCE_ROLES:
            errors[f"gov-{i}-role"] = "Choisissez « Élu » ou « Industriel »."
            row["role"] = "elected"
        governance.append(row)

    letters = []
    letter_rows = []
    for i in range(_rows(form, "loi")):
        row = {k: _text(form, f"loi-{i}-{k}") for k in ("signatory", "organisation", "date")}
        upload = form.get(f"loi-{i}-fichier")
        uploading = bool(getattr(upload, "filename", None))
        kept = _file_ref(form, i)
        if form.get(f"loi-{i}-remove") or not (any(row.values()) or uploading or kept):
            continue
        day: str | None = row["date"] or None
        if day:
            try:
                day = date.fromisoformat(day).isoformat()
            except ValueError:
                errors[f"loi-{i}-date"] = "Indiquez une date valide, par exemple 2023-07-01."
                day = None
        letters.append({**row, "date": day, "file": kept})
        letter_rows.append(i)

    actions = []
    for i in range(_rows(form, "act")):
        row = {k: _text(form, f"act-{i}-{k}") for k in ("title", "priority", "summary")}
        started = bool(form.get(f"act-{i}-started"))
        if form.get(f"act-{i}-remove") or not (any(row.values()) or started):
            continue
        priority: str | None = row["priority"] or None
        if priority is not None and priority not in PRIORITIES:
            errors[f"act-{i}-priority"] = "Choisissez une des quatre priorités du programme."
            priority = None
        actions.append({**row, "priority": priority, "already_started": started})

    texts = {
        "single_member_justification": LONG_MAX,
        "metropole_justification": LONG_MAX,
        "extended_governance_justification": LONG_MAX,
    }
    for key, limit in texts.items():
        if len(_text(form, key)) > limit:
            errors[key] = f"Ce texte compte au plus {limit:,} caractères.".replace(",", "\u202f")
    for i, row in enumerate(governance):
        for key in ("name", "organisation"):
            if len(row[key]) > TEXT_MAX:
                errors[f"gov-{i}-{key}"] = "Ce champ compte au plus 2\u202f000 caractères."

    data = {
        "territory_name": name,
        "contact_email": email,
        "perimeter": {
            "members": members,
            "single_member_justification": _text(form, "single_member_justification") or None,
            "metropole_justification": _text(form, "metropole_justification") or None,
        },
        "governance": {
            "members": governance,
            "extended_governance_justification": _text(form, "extended_governance_justification")
            or None,
        },
        "letters_of_intent": letters,
        "action_plan": actions,
    }
    return Posted(data, errors, action, _text(form, "recherche"), letter_rows)


def _file_ref(form: Mapping[str, Any], i: int) -> dict[str, Any] | None:
    """The document a letter already had (hidden fields), kept unless replaced."""
    sha = _text(form, f"loi-{i}-sha256")
    name = _text(form, f"loi-{i}-nom-fichier")
    size = _text(form, f"loi-{i}-taille")
    if re.match(r"^[0-9a-f]{64}$", sha) and name and size.isdigit():
        return {"sha256": sha, "name": name, "size": int(size), "media_type": "application/pdf"}
    return None


def blank() -> dict[str, Any]:
    return {
        "territory_name": "",
        "contact_email": "",
        "perimeter": {"members": []},
        "governance": {"members": []},
        "letters_of_intent": [],
        "action_plan": [],
    }


# --- the reference data search (EPCI and EPT by name or SIREN) -------------------------


def fold(text: str) -> str:
    """Lower case, no accents, hyphens and apostrophes as spaces (``Cluses-Arve``)."""
    plain = unicodedata.normalize("NFD", text.lower())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return " ".join(re.sub(r"[-'’.,()]", " ", plain).split())


_INDEX: dict[int, tuple[Referential, tuple[tuple[str, Groupement], ...]]] = {}


def _index(reference: Referential) -> tuple[tuple[str, Groupement], ...]:
    """Folded names, sorted, computed once per reference data set (kept with it)."""
    kept = _INDEX.get(id(reference))
    if kept is None or kept[0] is not reference:
        names = sorted(
            ((fold(g.name), g) for g in reference.groupements.values()), key=lambda x: x[0]
        )
        kept = _INDEX[id(reference)] = (reference, tuple(names))
    return kept[1]


def search(reference: Referential, query: str, limit: int = 8) -> list[Groupement]:
    """Groupements whose SIREN starts with the digits typed, or whose name has every word."""
    q = query.strip()
    if len(q) < 2:
        return []
    digits = q.replace(" ", "")
    if digits.isdigit():
        found = [g for s, g in reference.groupements.items() if s.startswith(digits)]
        return sorted(found, key=lambda g: g.siren)[:limit]
    words = fold(q).split()
    hits = [g for name, g in _index(reference) if all(w in name for w in words)]
    return hits[:limit]
