"""``timers:`` and ``notifications:`` of workflow and campaign files -> frozen specs.

Errors name the file and the path inside it, like the rest of the loader. Cross-file
checks (a campaign timer naming a notification of the workflow) happen when the
scheduler is wired (``scheduling.install``), where both files are known.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from datetime import date, datetime, time, timedelta
from typing import Any

from ti_workflow.clock import UTC_ZONE
from ti_workflow.domain.timers import (
    LATE_POLICIES,
    RECIPIENTS,
    SCOPES,
    CampaignAction,
    CampaignTimerSpec,
    CaseTimerSpec,
    Delay,
    NotificationSpec,
    parse_parameter_delay,
)
from ti_workflow.errors import InvalidDefinition

ErrorFn = Callable[[str, str], None]
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
PARAMETER_PREFIX = "parameters."
PLACEHOLDER = datetime(2000, 1, 1, tzinfo=UTC_ZONE)
"""The due instant of a timer whose own is wrong (never stored: its file is refused)."""
TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
NOTIFICATION_KEYS = ("name", "when", "to", "scope", "variables")
CASE_TIMER_KEYS = ("name", "after", "delay", "days", "while_in", "notify", "fire", "late")
CAMPAIGN_TIMER_KEYS = (
    "name",
    "at",
    "time",
    "before",
    "after",
    "workflow",
    "actions",
    "late",
    "context",
    "every",
)


def parse_delay(value: Any, path: str, error: ErrorFn, business: bool = False) -> Delay | None:
    try:
        return parse_parameter_delay(value, business)
    except ValueError as exc:
        error(path, str(exc))
        return None


def _names(value: Any, path: str, error: ErrorFn, what: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not NAME_RE.match(item):
            where = f"{path}[{i}]" if isinstance(value, list) else path
            error(where, f"a {what} name (lower_case) is required, got {item!r}")
        else:
            out.append(item)
    return tuple(out)


def _keys(raw: dict[str, Any], path: str, allowed: Collection[str], error: ErrorFn) -> None:
    for key in raw:
        if key not in allowed:
            error(f"{path}.{key}", f"unknown key (allowed: {', '.join(allowed)})")


def _late(raw: dict[str, Any], path: str, error: ErrorFn) -> str:
    late = raw.get("late", "fire")
    if late not in LATE_POLICIES:
        error(f"{path}.late", f"unknown late policy {late!r} (allowed: {', '.join(LATE_POLICIES)})")
    return str(late)


def parse_notifications(
    raw: Any, error: ErrorFn, triggers: Collection[str]
) -> tuple[NotificationSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        error("notifications", "must be a list of {name:, to:, when:}")
        return ()
    out: list[NotificationSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        path = f"notifications[{i}]"
        if not isinstance(item, dict):
            error(path, "each notification must be a mapping (name:, to:, when:)")
            continue
        _keys(item, path, NOTIFICATION_KEYS, error)
        names = _names(item.get("name"), f"{path}.name", error, "notification")
        name = names[0] if names else "?"
        if name in seen:
            error(f"{path}.name", f"duplicate notification {name!r}")
        seen.add(name)
        to = _names(item.get("to", []), f"{path}.to", error, "recipient")
        for j, r in enumerate(to):
            if r not in RECIPIENTS:
                error(
                    f"{path}.to[{j}]", f"unknown recipient {r!r} (known: {', '.join(RECIPIENTS)})"
                )
        if not to:
            error(f"{path}.to", "at least one recipient role is needed")
        when = item.get("when")
        if when is not None and when not in triggers:
            error(f"{path}.when", f"unknown trigger {when!r} (known: {', '.join(triggers)})")
        scope = item.get("scope", "case")
        if scope not in SCOPES:
            error(f"{path}.scope", f"unknown scope {scope!r} (allowed: {', '.join(SCOPES)})")
        variables = _names(item.get("variables", []), f"{path}.variables", error, "variable")
        out.append(NotificationSpec(name, to, when, str(scope), variables))
    return tuple(out)


def parse_case_timers(
    raw: Any,
    error: ErrorFn,
    triggers: Collection[str],
    states: Collection[str],
    notifications: Collection[str],
) -> tuple[CaseTimerSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        error("timers", "must be a list of {name:, after:, delay:, ...}")
        return ()
    out: list[CaseTimerSpec] = []
    for i, item in enumerate(raw):
        path = f"timers[{i}]"
        if not isinstance(item, dict):
            error(path, "each timer must be a mapping (name:, after:, delay:, notify: or fire:)")
            continue
        _keys(item, path, CASE_TIMER_KEYS, error)
        names = _names(item.get("name"), f"{path}.name", error, "timer")
        after = item.get("after")
        if after not in triggers:
            error(f"{path}.after", f"an event trigger is required (known: {', '.join(triggers)})")
        days = item.get("days", "calendar")
        if days not in ("calendar", "business"):
            error(f"{path}.days", f"'calendar' or 'business' (French working days), got {days!r}")
        raw_delay = item.get("delay")
        parameter = None
        if isinstance(raw_delay, str) and raw_delay.startswith(PARAMETER_PREFIX):
            parameter = raw_delay.removeprefix(PARAMETER_PREFIX)  # checked with the campaigns
            if not NAME_RE.match(parameter):
                error(f"{path}.delay", f"parameters.<a parameter name> expected, got {raw_delay!r}")
            delay: Delay | None = Delay(raw_delay, business=days == "business")
        else:
            delay = parse_delay(raw_delay, f"{path}.delay", error, days == "business")
        while_in = _names(item.get("while_in", []), f"{path}.while_in", error, "state")
        for j, s in enumerate(while_in):
            if s not in states:
                error(f"{path}.while_in[{j}]", f"unknown state {s!r} (known: {', '.join(states)})")
        if not while_in:
            error(f"{path}.while_in", "the states in which the timer still acts are required")
        notify, fire = item.get("notify"), item.get("fire")
        if (notify is None) == (fire is None):
            error(path, "exactly one of notify: (a notification) or fire: (a trigger) is needed")
        if notify is not None and notify not in notifications:
            error(f"{path}.notify", f"unknown notification {notify!r}")
        if fire is not None and fire not in triggers:
            error(f"{path}.fire", f"unknown trigger {fire!r} (known: {', '.join(triggers)})")
        late = _late(item, path, error)
        if names and delay and after in triggers:
            out.append(
                CaseTimerSpec(names[0], str(after), delay, while_in, notify, fire, late, parameter)
            )
    return tuple(out)


def _anchor(value: Any, campaign: dict[str, Any]) -> date | datetime | None:
    """A campaign date: a literal date, ``window.opens_on|closes_on|closed`` or a parameter."""
    if isinstance(value, date | datetime):
        return value
    if not isinstance(value, str):
        return None
    window = campaign.get("window") or {}
    params = campaign.get("parameters") or {}
    if value == "window.closed":
        return None  # resolved by the caller: the first instant after the window
    if value.startswith("window."):
        found = window.get(value.removeprefix("window."))
    elif value.startswith("parameters."):
        found = params.get(value.removeprefix("parameters."))
    else:
        try:
            found = date.fromisoformat(value)
        except ValueError:
            return None
    return found if isinstance(found, date) else None


def parse_campaign_timers(
    raw: Any, error: ErrorFn, document: dict[str, Any], zone: Any, closes_at: datetime | None
) -> tuple[CampaignTimerSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        error("timers", "must be a list of {name:, at:, actions:}")
        return ()
    out: list[CampaignTimerSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        path = f"timers[{i}]"
        if not isinstance(item, dict):
            error(path, "each timer must be a mapping (name:, at:, actions:)")
            continue
        _keys(item, path, CAMPAIGN_TIMER_KEYS, error)
        names = _names(item.get("name"), f"{path}.name", error, "timer")
        at = item.get("at")
        base: datetime | None = None
        if at == "window.closed":
            base = closes_at + timedelta(microseconds=1) if closes_at else None
            if "time" in item:
                error(f"{path}.time", "window.closed is an instant: no time: with it")
        else:
            anchor = _anchor(at, document)
            if anchor is None:
                error(
                    f"{path}.at",
                    "a date (2023-11-14), window.opens_on, window.closes_on, window.closed "
                    f"or parameters.<a date parameter> is required, got {at!r}",
                )
            else:
                clock = str(item.get("time", "00:00"))
                m = TIME_RE.match(clock)
                if not m:
                    error(f"{path}.time", f"a local time HH:MM is required, got {clock!r}")
                elif isinstance(anchor, datetime):
                    base = anchor if anchor.tzinfo else anchor.replace(tzinfo=zone)
                else:
                    local = time(int(m.group(1)), int(m.group(2)))
                    base = datetime.combine(anchor, local, zone)
        offsets: list[tuple[str, Delay | None, bool]] = []
        for key, backwards in (("before", True), ("after", False)):
            if key in item:
                values = item[key] if isinstance(item[key], list) else [item[key]]
                for j, v in enumerate(values):
                    delay = parse_delay(v, f"{path}.{key}[{j}]", error)
                    sign = "-" if backwards else "+"
                    label = (  # J-14 for whole days, -PT3M (the offset as written) otherwise
                        f"{sign}{delay.text}"
                        if delay is not None and delay.seconds
                        else f"J{sign}{delay.days if delay else 0}"
                    )
                    offsets.append((label, delay, backwards))
        workflow = item.get("workflow", "")
        actions = _actions(item.get("actions"), f"{path}.actions", error)
        on_cases = any(a.kind != "job" for a in actions)
        if on_cases and (not isinstance(workflow, str) or not NAME_RE.match(workflow)):
            error(f"{path}.workflow", "the workflow whose cases it acts on is required")
        late = _late(item, path, error)
        context = item.get("context") or {}
        if not isinstance(context, dict):
            error(f"{path}.context", "must be a mapping of template variable to value")
            context = {}
        every = None
        if "every" in item:
            every = parse_delay(item["every"], f"{path}.every", error)
            if every is not None and every.days == 0 and every.seconds < 3600:
                error(f"{path}.every", "repeat at most once an hour (PT1H or more)")
        if not names:
            continue
        if base is None:  # an error is already recorded; the timer is still returned with a
            base = PLACEHOLDER  # placeholder instant, so its names get the cross-file checks

        due_list = (
            [(names[0], base)]
            if not offsets
            else [
                (f"{names[0]}.{label}", d.before(base, zone) if back else d.after(base, zone))
                for label, d, back in offsets
                if d is not None
            ]
        )
        for name, due in due_list:
            if name in seen:
                error(f"{path}.name", f"duplicate timer {name!r}")
            seen.add(name)
            out.append(
                CampaignTimerSpec(
                    name,
                    due.astimezone(UTC_ZONE),
                    str(workflow),
                    actions,
                    late,
                    dict(context),
                    every,
                    None if at == "window.closed" else str(item.get("time", "00:00")),
                )
            )
    return tuple(out)


def _actions(raw: Any, path: str, error: ErrorFn) -> tuple[CampaignAction, ...]:
    if not isinstance(raw, list) or not raw:
        error(path, "a list of actions is required: {fire: T, in: S}, {notify: N, in: S}, {job: J}")
        return ()
    out = []
    for i, item in enumerate(raw):
        p = f"{path}[{i}]"
        if not isinstance(item, dict):
            error(p, "each action is a mapping: {fire: T, in: S}, {notify: N, in: S} or {job: J}")
            continue
        kinds = [k for k in ("fire", "notify", "job") if k in item]
        _keys(item, p, ("fire", "notify", "job", "in"), error)
        if len(kinds) != 1:
            error(p, "exactly one of fire:, notify: or job: is needed")
            continue
        kind = kinds[0]
        name = _names(item[kind], f"{p}.{kind}", error, kind)
        states = _names(item.get("in", []), f"{p}.in", error, "state")
        if kind != "job" and not states:
            error(f"{p}.in", f"{kind}: acts on the cases in these states; at least one is needed")
        if kind == "job" and states:
            error(f"{p}.in", "a job acts on the campaign, not on cases: no in:")
        if name:
            out.append(CampaignAction(kind, name[0], states))
    return tuple(out)


_SPECS: dict[str, tuple[tuple[CaseTimerSpec, ...], tuple[NotificationSpec, ...]]] = {}


def workflow_specs(
    definition: Any,
) -> tuple[tuple[CaseTimerSpec, ...], tuple[NotificationSpec, ...]]:
    """The typed timers and notifications of a (validated) definition, cached per version."""
    found = _SPECS.get(definition.version)
    if found is None:
        problems: list[str] = []

        def error(path: str, message: str) -> None:
            problems.append(f"{definition.source}: {path}: {message}")

        triggers = definition.triggers
        notes = parse_notifications(list(definition.notifications) or None, error, triggers)
        timers = parse_case_timers(
            list(definition.timers) or None,
            error,
            triggers,
            definition.state_names,
            [n.name for n in notes],
        )
        if problems:
            raise InvalidDefinition(problems)
        found = _SPECS[definition.version] = (timers, notes)
    return found
