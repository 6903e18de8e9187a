"""workflows/campaigns/*.yaml -> :class:`Campaign` (dates in the campaign's time zone)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ti_workflow.definitions.loader import read_yaml, yaml_problem
from ti_workflow.definitions.timers import parse_campaign_timers
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.text import id_problem
from ti_workflow.domain.timers import CampaignTimerSpec
from ti_workflow.errors import InvalidDefinition

TOP_KEYS = ("campaign", "name", "timezone", "window", "parameters", "timers")


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
    closes_at = None
    if len(dates) == 2 and not errors:
        closes_at = Campaign("", "", str(zone), dates["opens_on"], dates["closes_on"]).closes_at
    timers: tuple[CampaignTimerSpec, ...] = ()
    if not any(e.startswith(f"{file}: timezone") for e in errors):
        timers = parse_campaign_timers(
            document.get("timers"), error, document, ZoneInfo(str(zone)), closes_at
        )
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
    )


def load_campaign(path: Path) -> Campaign:
    try:
        document = read_yaml(path)
    except OSError as exc:
        raise InvalidDefinition([f"{path}: cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise InvalidDefinition([f"{path}: {yaml_problem(exc)}"]) from None
    return parse_campaign(document, str(path))
