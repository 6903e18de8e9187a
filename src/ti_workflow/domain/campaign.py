"""A campaign: its filing window and its dated parameters, declared in Europe/Paris."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from ti_workflow.clock import UTC_ZONE
from ti_workflow.domain.timers import CampaignTimerSpec, CancelledTimer


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    timezone: str
    opens_on: date
    closes_on: date
    parameters: dict[str, Any] = field(default_factory=dict, compare=False)
    source: str = ""
    timers: tuple[CampaignTimerSpec, ...] = field(default=(), compare=False)
    """Timers due at campaign dates (window opening and closing, reminders...)."""
    cancelled: tuple[CancelledTimer, ...] = field(default=(), compare=False)
    """Timers taken out of the file on purpose, with the date and the reason."""

    def cancellation(self, timer_name: str) -> CancelledTimer | None:
        return next((c for c in self.cancelled if c.covers(timer_name)), None)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property  # a frozen dataclass: computed once (every submission checks it)
    def opens_at(self) -> datetime:
        """The first instant of the opening day, local time, as UTC."""
        return datetime.combine(self.opens_on, time(0, 0), self.zone).astimezone(UTC_ZONE)

    @cached_property
    def closes_at(self) -> datetime:
        """The last instant of the closing day (23:59:59.999999 local time), as UTC."""
        end = datetime.combine(self.closes_on, time(23, 59, 59, 999_999), self.zone)
        return end.astimezone(UTC_ZONE)

    def window_contains(self, instant: datetime) -> bool:
        return self.opens_at <= instant <= self.closes_at

    def first_instant_after_close(self) -> datetime:
        return self.closes_at + timedelta(microseconds=1)
