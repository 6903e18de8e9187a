"""Jinja2 rendering of ``notifications/``: three files per notification, checked at load.

``<name>.subject.txt``, ``<name>.txt`` (plain text) and ``<name>.html`` (autoescaped,
may extend ``_layout.html``). ``StrictUndefined`` everywhere. At load every template is
parsed, its free variables compared with what its notification provides, and it is
rendered once with a sample context: a typo fails before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
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
    select_autoescape,
)

from ti_workflow.domain.timers import NotificationSpec
from ti_workflow.mail.errors import InvalidTemplate
from ti_workflow.mail.french import (
    council,
    de_region,
    fr_date,
    fr_list,
    fr_percent,
    fr_programme,
    fr_regions,
    is_announced,
    planned,
    to_councils,
)

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
