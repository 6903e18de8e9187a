"""Jinja2 rendering of ``notifications/``: three files per notification, checked at load.

``<name>.subject.txt``, ``<name>.txt`` (plain text) and ``<name>.html`` (autoescaped,
may extend ``_layout.html``). ``StrictUndefined`` everywhere. At load every template is
parsed, its free variables compared with what its notification provides, and it is
rendered once with a sample context: a typo fails before anything is sent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    meta,
    pass_context,
    select_autoescape,
)
from markupsafe import Markup, escape

from ti_workflow.clock import PARIS
from ti_workflow.domain.timers import NotificationSpec
from ti_workflow.mail.errors import InvalidTemplate

PARTS = ("subject.txt", "txt", "html")
CASE_VARIABLES = frozenset(
    {
        "case",
        "campaign",
        "event",
        "timer",
        "reason",
        "decision",
        "missing_opinions",
        "opinions",
        "params",
    }
)
CAMPAIGN_VARIABLES = frozenset({"campaign", "timer", "params", "count", "cases"})
CAUSES = frozenset({"event", "timer"})
"""What may send a notification: an event (``when:``) or a timer (no ``event`` then)."""
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


def provided(spec: NotificationSpec) -> frozenset[str]:
    base = CASE_VARIABLES if spec.scope == "case" else CAMPAIGN_VARIABLES
    return base | frozenset(spec.variables)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


_DICT_ATTRIBUTES = frozenset(dir(dict))


class FastEnvironment(Environment):
    """Jinja's environment, minus two costs of every render (a sweep renders tens of
    thousands of messages); the output is the same.

    Template globals are one plain dict rather than a ``ChainMap``, which Jinja copies into
    each render's context (globals are never changed after load, as Jinja advises).
    ``case.title`` on a dict reads the item at once instead of first failing an attribute
    lookup, unless the name is a dict attribute (``items``...), which keeps precedence.
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


class Renderer:
    def __init__(self, directory: Path, environment: type[Environment] = FastEnvironment) -> None:
        self.directory = directory
        self.env = environment(
            loader=FileSystemLoader(str(directory)),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            keep_trailing_newline=False,
            auto_reload=False,  # checked at load; a restart picks up edited templates
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["fr_date"] = fr_date
        self.env.filters["de_region"] = de_region
        self.env.filters["fr_list"] = fr_list
        self.env.filters["council"] = council
        self.env.filters["to_councils"] = to_councils
        self.env.filters["fr_regions"] = fr_regions
        self.env.filters["fr_percent"] = fr_percent
        self.env.filters["fr_programme"] = fr_programme
        self.env.filters["planned"] = planned
        self.env.tests["announced"] = is_announced
        self._parts: dict[str, tuple[Template, Template, Template]] = {}

    def check(
        self,
        specs: Iterable[NotificationSpec],
        samples: Iterable[Mapping[str, Any]],
        causes: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        """Every part of every notification exists, uses only given names, and renders with
        each sample (one per campaign: its parameters differ) as each of its causes gives it.

        ``causes`` says what sends each notification: ``event`` (its ``when:`` trigger; no
        ``timer``), ``timer`` (a timer, or an escalation; no ``event``). Unlisted: both.
        """
        specs = list(specs)
        errors: list[str] = []
        for spec in specs:
            allowed = provided(spec)
            for part in PARTS:
                path = self.directory / f"{spec.name}.{part}"
                try:
                    source = path.read_text(encoding="utf-8")
                except OSError:
                    errors.append(f"{path}: missing (notification {spec.name!r} needs it)")
                    continue
                try:
                    free = meta.find_undeclared_variables(self.env.parse(source))
                except TemplateError as exc:
                    errors.append(f"{path}: {exc}")
                    continue
                unknown = sorted(free - allowed)
                if unknown:
                    errors.append(
                        f"{path}: uses {', '.join(unknown)}, which notification {spec.name!r} "
                        f"does not provide (it provides: {', '.join(sorted(allowed))})"
                    )
        if not errors:
            for sample in samples:
                errors += self._render_all(specs, sample, causes or {})
        if errors:
            raise InvalidTemplate(sorted(set(errors)))

    def _render_all(
        self,
        specs: list[NotificationSpec],
        sample: Mapping[str, Any],
        causes: Mapping[str, frozenset[str]],
    ) -> list[str]:
        errors = []
        for spec in specs:
            allowed = provided(spec)
            for cause in sorted(causes.get(spec.name, CAUSES)):
                context = {k: v for k, v in sample.items() if k in allowed}
                context.update({v: f"<{v}>" for v in spec.variables})
                context["timer" if cause == "event" else "event"] = None  # what it lacks
                for part in PARTS:
                    try:
                        self.env.get_template(f"{spec.name}.{part}").render(context)
                    except (TemplateError, TypeError, ValueError) as exc:
                        errors.append(
                            f"{self.directory / f'{spec.name}.{part}'}: does not render when "
                            f"sent by {'an event' if cause == 'event' else 'a timer'} (sample "
                            f"{spec.scope} of campaign {sample['campaign']['id']}): {exc}"
                        )
        return errors

    def render(self, notification: str, context: Mapping[str, Any]) -> Rendered:
        parts = self._parts.get(notification)
        if parts is None:
            try:
                found = [self.env.get_template(f"{notification}.{part}") for part in PARTS]
            except TemplateNotFound as exc:
                raise InvalidTemplate([f"{self.directory / str(exc)}: missing"]) from None
            parts = self._parts[notification] = (found[0], found[1], found[2])
        try:
            subject, text, html = (template.render(context) for template in parts)
        except (TemplateError, TypeError, ValueError) as exc:  # what the load check missed
            raise InvalidTemplate(
                [f"{self.directory / notification}.*: does not render: {exc}"]
            ) from None
        return Rendered(_one_line(subject), text.strip() + "\n", html)


def _one_line(text: str) -> str:
    """A subject on one line: runs of ordinary white space become one space; the
    non-breaking spaces of French typography stay (``str.split`` would drop them)."""
    return re.sub(r"[ \t\r\n\f\v]+", " ", text).strip()
