"""French words for what the pages show: dates, numbers, roles, natures, priorities.

Rule messages are never written here: they come from the engine's ``Rule`` objects. State
and transition names come from the workflow file (``label_fr``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from ti_workflow.clock import PARIS
from ti_workflow.mail.french import de_region, fr_date, fr_list

__all__ = ["de_region", "fr_date", "fr_list"]

NBSP = "\u00a0"
NNBSP = "\u202f"

ROLES = {
    "candidate": "Candidat",
    "regional_council": "Conseil régional",
    "state_services": "Services de l'État en région (SGAR)",
    "national_committee": "Comité national",
    "auditor": "Auditeur",
    "system": "Système (automatique)",
    "login": "Connexion",
}
BODIES = ("regional_council", "state_services")
NATURES = {
    "CC": "Communauté de communes",
    "CA": "Communauté d'agglomération",
    "CU": "Communauté urbaine",
    "METRO": "Métropole",
    "MET69": "Métropole de Lyon",
    "EPT": "Établissement public territorial",
}
PRIORITIES = {
    "ecological_transition": "Accélérer la transition écologique et énergétique",
    "innovation": "Faire des territoires des écosystèmes d'innovation",
    "skills": "Recrutement et compétences",
    "land": "Mobiliser un foncier adapté",
}
GOVERNANCE_ROLES = {"elected": "Élu", "industrial": "Industriel"}
OPINIONS = {"favourable": "Favorable", "unfavourable": "Défavorable"}
SPECIAL_STEPS = {
    "create": "Création du dossier",
    "update": "Modification du dossier",
    "migrate": "Passage à une nouvelle version du circuit",
}
MAIL_STATUSES = {
    "pending": "En attente d'envoi",
    "sending": "En cours d'envoi",
    "sent": "Envoyé",
    "partial": "Envoyé en partie",
    "failed": "Échec",
    "undeliverable": "Sans destinataire valide",
}


def number(value: int | float) -> str:
    """``2 000`` with a narrow no-break space between thousands, a decimal comma."""
    if isinstance(value, float) and not value.is_integer():
        whole, _, frac = f"{value:,.1f}".partition(".")
        return whole.replace(",", NNBSP) + "," + frac
    return f"{int(value):,}".replace(",", NNBSP)


def when(value: datetime | date | str | None) -> str:
    """``22 septembre 2023 à 23 h 59`` (Paris time) for an instant, the day for a date."""
    if isinstance(value, str):
        try:
            return fr_date(datetime.fromisoformat(value), with_time=True)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return fr_date(value, with_time=True)
    return fr_date(value)


def paris_input(value: datetime) -> str:
    """The value of an ``<input type="datetime-local">`` in Paris time."""
    return value.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


def remaining(delta: timedelta) -> str:
    """``12 jours et 3 heures``, ``5 heures et 20 minutes``: what is left before a deadline."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)

    def unit(n: int, word: str) -> str:
        return f"{number(n)}{NBSP}{word}{'s' if n > 1 else ''}"

    if days:
        return unit(days, "jour") + (f" et {unit(hours, 'heure')}" if hours else "")
    if hours:
        return unit(hours, "heure") + (f" et {unit(mins, 'minute')}" if mins else "")
    return unit(mins, "minute")


def role(name: str) -> str:
    return ROLES.get(name, name)


def actor(label: str, regions: dict[str, str] | None = None) -> str:
    """``regional_council:84`` -> ``Conseil régional (Auvergne-Rhône-Alpes)``."""
    name, _, qualifier = label.partition(":")
    if not qualifier:
        return role(name)
    if name in BODIES:
        return f"{role(name)} ({(regions or {}).get(qualifier, qualifier)})"
    return f"{role(name)} ({qualifier})"


def recipient(text: str) -> str:
    """``regional_council:84 <a@b.fr>`` -> ``Conseil régional (84) <a@b.fr>``."""
    who, _, address = text.partition(" <")
    return f"{actor(who)} <{address}" if address else actor(who)


def typography(text: str) -> str:
    """No-break spaces before ``: ; ? !`` and inside « » in a French sentence."""
    for mark in (" :", " ;", " ?", " !"):
        text = text.replace(mark, NBSP + mark[1])
    return text.replace("« ", "«" + NBSP).replace(" »", NBSP + "»")


def filters() -> dict[str, Any]:
    return {
        "when": when,
        "day": fr_date,
        "number": number,
        "role": role,
        "nature": lambda code: NATURES.get(code, code),
        "priority": lambda code: PRIORITIES.get(code, "non précisée") if code else "non précisée",
        "governance_role": lambda code: GOVERNANCE_ROLES.get(code, code),
        "opinion": lambda code: OPINIONS.get(code, code or "non rendu"),
        "mail_status": lambda code: MAIL_STATUSES.get(code, code),
        "fr_list": fr_list,
        "typo": typography,
        "recipient": recipient,
        "upfirst": lambda text: str(text)[:1].upper() + str(text)[1:],
    }
