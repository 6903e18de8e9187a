"""workflows/campaigns/*.yaml -> :class:`Campaign` (dates in the campaign's time zone)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ti_workflow.definitions.loader import read_yaml, yaml_problem
from ti_workflow.definitions.timers import NAME_RE, parse_campaign_timers
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.text import id_problem, text_problem
from ti_workflow.domain.timers import CampaignTimerSpec, CancelledTimer
from ti_workflow.errors import InvalidDefinition

ANNOUNCED = "announced"
"""Parameter listing the dates (parameters or timer ``context:`` names) announced publicly:
mails may tell candidates those as dates; the others only as a period (``fin octobre``)."""
TOP_KEYS = ("campaign", "name", "timezone", "window", "parameters", "timers", "cancelled")
CANCELLED_KEYS = ("name", "on", "reason")


def parse_campaign(document: Any, file: str) -> Campaign:
    errors: list[str] = []

    def error(path: str, message: str) -> None:
        errors.append(f"{file}: {path}: {message}")

    if not isinstance(document, dict):
        raise InvalidDefinition([f"{file}: the file must hold a mapping (campaign:, window:...)"])
    for key in document:
        if key not in TOP_KEYS:
            error(str(key), f"unknown key (allowed: {', '.join(TOP_KEYS)})")
    cid = document.get("campaign")
    problem = id_problem(cid, "campaign")
    if problem:
        error("campaign", problem)
        cid = "?"
    zone = document.get("timezone", "Europe/Paris")
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        error("timezone", f"unknown time zone {zone!r}")
    window = document.get("window") or {}
    if not isinstance(window, dict):
        error("window", "must be a mapping with opens_on: and closes_on:")
        window = {}
    dates = {}
    for key in ("opens_on", "closes_on"):
        value = window.get(key)
        if not isinstance(value, date):
            error(f"window.{key}", f"a date such as 2023-06-23 is required, got {value!r}")
        else:
            dates[key] = value
    if len(dates) == 2 and dates["closes_on"] < dates["opens_on"]:
        error("window.closes_on", "the window closes before it opens")
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict):
        error("parameters", "must be a mapping")
        parameters = {}
    announced = parameters.get(ANNOUNCED, [])
    if not isinstance(announced, list):
        error(f"parameters.{ANNOUNCED}", "a list of parameter or timer context names")
        announced = []
    given = set(parameters) | {
        str(k)
        for t in (document.get("timers") or [])
        if isinstance(t, dict) and isinstance(t.get("context"), dict)
        for k in t["context"]
    }
    for i, name in enumerate(announced):
        if name not in given or name == ANNOUNCED:
            error(
                f"parameters.{ANNOUNCED}[{i}]",
                f"{name!r} is no parameter nor timer context variable of this campaign",
            )
    closes_at = None
    if len(dates) == 2 and not errors:
        closes_at = Campaign("", "", str(zone), dates["opens_on"], dates["closes_on"]).closes_at
    timers: tuple[CampaignTimerSpec, ...] = ()
    if not any(e.startswith(f"{file}: timezone") for e in errors):
        timers = parse_campaign_timers(
            document.get("timers"), error, document, ZoneInfo(str(zone)), closes_at
        )
    cancelled = _cancelled(document.get("cancelled"), error, {t.name for t in timers})
    if errors:
        refused = InvalidDefinition(errors)
        refused.partial = Campaign(  # the timers that did parse, for the cross-file checks
            str(cid), str(cid), "UTC", date.min, date.min, source=file, timers=timers
        )
        raise refused
    return Campaign(
        id=str(cid),
        name=str(document.get("name", cid)),
        timezone=str(zone),
        opens_on=dates["opens_on"],
        closes_on=dates["closes_on"],
        parameters=dict(parameters),
        source=file,
        timers=timers,
        cancelled=cancelled,
    )


def _cancelled(
    raw: Any, error: Callable[[str, str], None], timers: set[str]
) -> tuple[CancelledTimer, ...]:
    """``cancelled: [{name: reminder, on: 2023-10-01, reason: ...}]``: the timers taken out
    on purpose. A pending timer that fires a trigger is cancelled only if listed here (or
    with ``--allow-cancel``): a stray edit must not remove a legal deadline silently."""
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for i, item in enumerate(items):
        path = f"cancelled[{i}]"
        if not isinstance(item, dict):
            error(path, "a mapping {name: TIMER, on: 2023-10-01, reason: WHY} is required")
            continue
        for key in item:
            if key not in CANCELLED_KEYS:
                error(f"{path}.{key}", f"unknown key (allowed: {', '.join(CANCELLED_KEYS)})")
        name, on, reason = item.get("name"), item.get("on"), item.get("reason")
        ok = True
        if not isinstance(name, str) or not NAME_RE.match(name.split(".")[0]):
            error(f"{path}.name", f"the name of the timer taken out is required, got {name!r}")
            ok = False
        elif any(t == name or t.startswith(f"{name}.") for t in timers):
            error(f"{path}.name", f"timer {name!r} is still in timers: (remove one or the other)")
            ok = False
        if not isinstance(on, date) or isinstance(on, datetime):
            error(f"{path}.on", f"the date of the decision such as 2023-10-01, got {on!r}")
            ok = False
        problem = text_problem(reason) if isinstance(reason, str) and reason.strip() else "empty"
        if problem:
            error(f"{path}.reason", f"why the timer is taken out, in one line ({problem})")
            ok = False
        if ok and isinstance(on, date):
            out.append(CancelledTimer(str(name), on, str(reason).strip()))
    return tuple(out)


def load_campaigns(paths: Iterable[Path]) -> tuple[list[Campaign], list[Campaign], list[str]]:
    """Every campaign file: ``(campaigns, partial ones, errors)``. Two files with the same
    ``campaign:`` id are both refused, naming each other: the last one read would replace
    the first, and the next tick would cancel the first file's timers."""
    campaigns: list[Campaign] = []
    partial: list[Campaign] = []
    errors: list[str] = []
    for path in paths:
        try:
            campaigns.append(load_campaign(path))
        except InvalidDefinition as exc:
            errors.extend(exc.errors)
            partial += [exc.partial] if exc.partial is not None else []
    first: dict[str, str] = {}
    for c in [*campaigns, *partial]:
        if c.id == "?":
            continue
        if c.id in first:
            errors.append(
                f"{c.source}: campaign: the id {c.id!r} is already the campaign of "
                f"{first[c.id]} (a copy or a backup? one file per campaign)"
            )
        first.setdefault(c.id, c.source)
    return campaigns, partial, errors


def load_campaign(path: Path) -> Campaign:
    try:
        document = read_yaml(path)
    except OSError as exc:
        raise InvalidDefinition([f"{path}: cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise InvalidDefinition([f"{path}: {yaml_problem(exc)}"]) from None
    return parse_campaign(document, str(path))
