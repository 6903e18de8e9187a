"""Timers and notifications as declared in workflow and campaign files (frozen, pure).

A *case timer* starts when an event happens on a case (``P14D`` after
``return_for_completion``) and acts on that case if it is still in one of its
states. A *campaign timer* is due at a campaign date (Europe/Paris) and acts on
every case of the campaign that is in a given state, or runs a named job.
Calendar days are counted on the Paris wall clock (a day is not always 24 h);
business days skip Saturdays, Sundays and French public holidays (``holidays``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from ti_workflow.clock import UTC_ZONE

LATE_POLICIES = ("fire", "skip", "escalate")
"""What a timer does when the scheduler runs it after its due instant (plus the grace):
``fire`` acts anyway, ``skip`` records it as skipped, ``escalate`` tells the national
committee instead of acting."""

RECIPIENTS = ("candidate", "regional_bodies", "regional_bodies_missing", "national_committee")
SCOPES = ("case", "campaign")


@dataclass(frozen=True)
class Delay:
    """An ISO 8601 duration: days (calendar or business) plus a fixed number of seconds."""

    text: str
    days: int = 0
    seconds: int = 0
    business: bool = False

    def after(self, start: datetime, zone: ZoneInfo) -> datetime:
        """The instant this delay after ``start``: days on the local calendar, time in UTC."""
        local = start.astimezone(zone)
        if self.business:
            day = add_business_days(local.date(), self.days)
        else:
            day = local.date() + timedelta(days=self.days)
        moved = datetime.combine(day, local.timetz().replace(tzinfo=None), zone)
        return moved.astimezone(UTC_ZONE) + timedelta(seconds=self.seconds)

    def before(self, end: datetime, zone: ZoneInfo) -> datetime:
        local = end.astimezone(zone)
        day = local.date() - timedelta(days=self.days)
        moved = datetime.combine(day, local.timetz().replace(tzinfo=None), zone)
        return moved.astimezone(UTC_ZONE) - timedelta(seconds=self.seconds)


@lru_cache(maxsize=16)
def _french_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("FR", years=year))


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _french_holidays(day.year)


def add_business_days(day: date, count: int) -> date:
    """``count`` French business days after ``day`` (Mon-Fri, not a public holiday)."""
    while count > 0:
        day += timedelta(days=1)
        if is_business_day(day):
            count -= 1
    return day


@dataclass(frozen=True)
class NotificationSpec:
    name: str
    to: tuple[str, ...]
    when: str | None = None
    """A trigger: the notification is sent for every event of that trigger."""
    scope: str = "case"
    variables: tuple[str, ...] = ()
    """Extra template variables the timers that send it must provide (``context:``)."""
    held_until: str | None = None
    """A campaign timer: an event (``when:``) before its due instant sends nothing (that
    timer sends it then); at or after it, the event sends it at once. Either way one
    message per case (FAQ 1.3: decisions are told at the announcement, or when taken
    after it)."""


@dataclass(frozen=True)
class CaseTimerSpec:
    name: str
    after: str
    delay: Delay
    while_in: tuple[str, ...]
    notify: str | None
    fire: str | None
    late: str
    delay_parameter: str | None = None
    """``delay: parameters.<name>``: the delay is that campaign parameter (an ISO 8601
    duration), read when the timer starts; ``delay`` is then a placeholder."""
    optional: bool = False
    """A campaign without the parameter starts no such timer (else the step that would start
    it is refused: a deadline is never silently missing)."""

    def delay_for(self, parameters: Mapping[str, Any]) -> Delay | None:
        """The delay in this campaign; None: the campaign does not set it (no timer)."""
        if self.delay_parameter is None:
            return self.delay
        if self.delay_parameter not in parameters:
            return None
        return parse_parameter_delay(parameters[self.delay_parameter], self.delay.business)


DELAY_RE = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def parse_parameter_delay(value: Any, business: bool = False) -> Delay:
    """A campaign parameter holding a duration (``P90D``); ValueError if it is not one."""
    text = str(value) if value is not None else ""
    m = DELAY_RE.match(text)
    if not m or text in ("P", "PT"):
        raise ValueError(
            f"an ISO 8601 duration such as P14D, P2W or PT48H is required, got {value!r}"
        )
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    secs = hours * 3600 + minutes * 60 + seconds
    if business and secs:
        raise ValueError(f"business days count whole days only (P10D), got {text!r}")
    return Delay(text, days=weeks * 7 + days, seconds=secs, business=business)


@dataclass(frozen=True)
class CampaignAction:
    kind: str  # fire | notify | job
    name: str
    states: tuple[str, ...] = ()


@dataclass(frozen=True)
class CampaignTimerSpec:
    name: str
    due: datetime
    workflow: str
    actions: tuple[CampaignAction, ...]
    late: str
    context: dict[str, Any] = field(default_factory=dict, compare=False)
    every: Delay | None = None
    """Repeat: once fired, the next occurrence is due this long after the previous one."""
    time: str | None = None
    """The local time of day (``HH:MM``) it was declared at: a daily repeat keeps it, even
    after a night where it did not exist (spring DST) and ran an hour later."""
    label_fr: str | None = field(default=None, compare=False)
    """What it does, in French, for the mails that name it (an escalation)."""


@dataclass(frozen=True)
class CancelledTimer:
    """A timer taken out of a campaign file on purpose (``cancelled:``), with when and why:
    what allows the scheduler to cancel its pending row when it fires a trigger."""

    name: str
    on: date
    reason: str

    def covers(self, timer_name: str) -> bool:
        """``name`` or one of its offsets (``reminder`` covers ``reminder.J-14``)."""
        return timer_name == self.name or timer_name.startswith(f"{self.name}.")
