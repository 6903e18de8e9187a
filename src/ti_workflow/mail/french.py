"""French wording for notifications: dates, regions and their councils, lists, periods.

Pure functions registered as Jinja filters by :mod:`ti_workflow.mail.render`; what a
template cannot say without them (``d'Auvergne-Rhône-Alpes``, ``Collectivité de Corse``,
``aux conseils régionaux``, ``fin octobre 2023``) is written once here.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from jinja2 import pass_context
from markupsafe import Markup, escape

from ti_workflow.clock import PARIS

MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def fr_date(value: date | datetime | str | None, with_time: bool = False) -> str:
    """``22 septembre 2023`` (and ``à 23 h 59`` on request), Paris time."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return str(value)  # a free-text value given by a campaign file: shown as written
    if isinstance(value, datetime):
        local = value.astimezone(PARIS)
        text = f"{_day(local.day)} {MONTHS[local.month - 1]} {local.year}"
        return f"{text} à {local.hour} h {local.minute:02d}" if with_time else text
    return f"{_day(value.day)} {MONTHS[value.month - 1]} {value.year}"


def _day(day: int) -> str:
    return "1er" if day == 1 else str(day)  # « le 1er juillet »


REGION_ARTICLES = {
    "01": "de ",  # Guadeloupe
    "02": "de ",  # Martinique
    "03": "de ",  # Guyane
    "04": "de ",  # La Réunion (the article is part of the name: « de La Réunion »)
    "06": "de ",  # Mayotte
    "11": "d'",  # Île-de-France
    "24": "du ",  # Centre-Val de Loire
    "27": "de ",  # Bourgogne-Franche-Comté
    "28": "de ",  # Normandie
    "32": "des ",  # Hauts-de-France (h aspiré, plural: « des Hauts-de-France »)
    "44": "du ",  # Grand Est
    "52": "des ",  # Pays de la Loire
    "53": "de ",  # Bretagne
    "75": "de ",  # Nouvelle-Aquitaine
    "76": "d'",  # Occitanie
    "84": "d'",  # Auvergne-Rhône-Alpes
    "93": "de ",  # Provence-Alpes-Côte d'Azur
    "94": "de ",  # Corse
}
"""How French says "of <region>" for the 18 INSEE 2023 regions, keyed by region code."""


def de_region(region: Mapping[str, Any] | str) -> str:
    """``d'Auvergne-Rhône-Alpes``, ``du Grand Est``, ``des Hauts-de-France``...

    ``region`` is a case's region (``code``, ``name``) or a bare name. A code outside the
    table (or a bare name) gets ``d'`` before a vowel, ``de`` otherwise.
    """
    if isinstance(region, str):
        code, name = "", region
    else:
        code, name = str(region["code"]), str(region["name"])
    article = REGION_ARTICLES.get(code)
    if article is None:
        first = unicodedata.normalize("NFD", name[:1])[:1].lower()
        article = "d'" if first and first in "aeiouy" else "de "
    return article + name


COUNCILS = {
    "02": "Collectivité territoriale de Martinique",
    "03": "Collectivité territoriale de Guyane",
    "06": "Département de Mayotte",
    "94": "Collectivité de Corse",
}
"""Regions whose council is not a "conseil régional": the collectivity that stands for it."""


def _code_name(region: Mapping[str, Any] | str) -> tuple[str, str]:
    if isinstance(region, str):
        return "", region
    return str(region["code"]), str(region["name"])


def council(region: Mapping[str, Any] | str) -> str:
    """The body giving a region's opinion: ``conseil régional d'Auvergne-Rhône-Alpes``,
    ``Collectivité de Corse``, ``Département de Mayotte``..."""
    code, _ = _code_name(region)
    return COUNCILS.get(code) or f"conseil régional {de_region(region)}"


def to_councils(regions: Iterable[Mapping[str, Any] | str]) -> str:
    """ "to the council(s)": ``au conseil régional de Bretagne``, ``aux conseils régionaux
    d'Auvergne-Rhône-Alpes et de Bretagne``, ``au conseil régional de Provence-Alpes-Côte
    d'Azur et à la Collectivité de Corse``."""
    regions = list(regions)
    plain = [de_region(r) for r in regions if _code_name(r)[0] not in COUNCILS]
    parts = []
    if len(plain) == 1:
        parts.append(f"au conseil régional {plain[0]}")
    elif plain:
        parts.append(f"aux conseils régionaux {fr_list(plain)}")
    for r in regions:
        name = COUNCILS.get(_code_name(r)[0])
        if name:
            parts.append(("au " if name.startswith("Département") else "à la ") + name)
    return fr_list(parts)


def fr_regions(regions: Iterable[Mapping[str, Any] | str]) -> str:
    """``la région Bretagne``, ``les régions Auvergne-Rhône-Alpes et Bretagne``."""
    names = [_code_name(r)[1] for r in regions]
    if not names:
        return ""
    return f"{'les régions' if len(names) > 1 else 'la région'} {fr_list(names)}"


STATE_SERVICES = "services de l'État (SGAR, DREETS)"


def body_label(region: Mapping[str, Any], body: str) -> str:
    """Who gives (or owes) an opinion, in French: the council, or the State services."""
    if body == "regional_council":
        return council(region)
    return f"{STATE_SERVICES} {de_region(region)}"


def fr_percent(share: float | int) -> str:
    """``34 %`` (a share 0.34), with the non-breaking space French puts before ``%``."""
    value = round(float(share) * 100, 1)
    return f"{value:g}\u00a0%".replace(".", ",")


def fr_programme(name: str) -> str:
    """The campaign's name under the programme's, said once: ``Territoires d'industrie
    2023-2027`` as it is, ``Autre`` as ``Territoires d'industrie — Autre``."""
    if PROGRAMME.lower() in name.lower():
        return name
    return f"{PROGRAMME} — {name}"


PROGRAMME = "Territoires d'industrie"
GENERIC_LABEL = "échéance planifiée"
"""How a mail names a timer whose file gives no ``label_fr``."""


def _announced(context: Any, name: str) -> bool:
    params = context.get("params") or {}
    return name in (params.get("announced") or [])


@pass_context
def planned(context: Any, name: str) -> str:
    """A date parameter (or timer context variable) ``name`` as candidates may be told it:
    ``le 31 octobre 2023`` if the campaign lists it in ``announced``, else only its period,
    in the FAQ's words: ``fin octobre 2023`` (from the 21st), ``en novembre 2023``."""
    params = context.get("params") or {}
    value = params[name] if name in params else context.get(name)
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return str(value)  # free text in the campaign file ("début 2024"): as written
    if not isinstance(value, date):
        return ""
    if _announced(context, name):
        return f"le {fr_date(value)}"
    month = f"{MONTHS[value.month - 1]} {value.year}"
    return f"fin {month}" if value.day >= 21 else f"en {month}"


@pass_context
def is_announced(context: Any, name: str) -> bool:
    """``{% if "assembly_on" is announced %}``: the campaign lists it in ``announced``."""
    return _announced(context, name)


def fr_list(items: Iterable[Any]) -> str:
    """``A``, ``A et B``, ``A, B et C``. Plain strings give a plain string (escaped, if at
    all, where it is output); if an item is markup, the others are escaped into markup."""
    values = list(items)
    if any(hasattr(v, "__html__") for v in values):
        escaped = [escape(v) for v in values]
        if len(escaped) < 2:
            return Markup("").join(escaped)
        return Markup(", ").join(escaped[:-1]) + Markup(" et ") + escaped[-1]
    texts = [str(v) for v in values]
    return ", ".join(texts[:-1]) + " et " + texts[-1] if len(texts) > 1 else "".join(texts)


def fr_duration(delta: timedelta) -> str:
    """``3 jours 4 h 05 min``: how late a timer ran, in words an official reads."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    text = f"{hours} h {mins:02d} min"
    return f"{days} jour{'s' if days > 1 else ''} {text}" if days else text
