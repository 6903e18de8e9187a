"""Time is a dependency: the engine asks a clock, it never calls ``now()`` itself.

Every instant handed out is timezone-aware UTC. Programme deadlines are declared
in Europe/Paris (see :data:`PARIS`) and converted deliberately.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
UTC_ZONE = UTC


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that only moves when told to: for the demo, tests and simulations."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = as_utc(instant)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def as_utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant.isoformat()} has no time zone")
    return instant.astimezone(UTC)


def paris(instant: datetime) -> datetime:
    return instant.astimezone(PARIS)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant; a value without offset is read as Europe/Paris time."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=PARIS)
    return value.astimezone(UTC)
