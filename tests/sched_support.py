"""Helpers of the scheduler and notification tests: a real SMTP sink, engines wired to it,
and a driver that moves a simulated clock from due instant to due instant like
``scheduler run`` does."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.engine import Engine
from ti_workflow.mail.dispatch import Dispatcher, DispatchReport
from ti_workflow.mail.sink import Received, RecordingHandler, start_sink
from ti_workflow.scheduling.sweep import SweepReport, sweep
from ti_workflow.scheduling.timers import next_due
from ti_workflow.settings import Settings
from ti_workflow.storage.database import read


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sink:
    handler: RecordingHandler
    port: int

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def by_notification(self) -> Counter[str]:
        return Counter(str(m.message["X-TI-Notification"]) for m in self.received)

    def of(self, notification: str) -> list[Received]:
        return [m for m in self.received if m.message["X-TI-Notification"] == notification]


@contextmanager
def smtp_sink(port: int | None = None) -> Iterator[Sink]:
    handler = RecordingHandler()
    port = port or free_port()
    controller = start_sink("127.0.0.1", port, handler)
    try:
        yield Sink(handler, port)
    finally:
        controller.stop()


def settings_for(url: str, port: int, **more: Any) -> Settings:
    return Settings(db_url=url, smtp_host="127.0.0.1", smtp_port=port, smtp_timeout=5, **more)


def open_with(settings: Settings, clock: SimulatedClock) -> Engine:
    return open_engine(settings, clock)


def dispatcher(engine: Engine, settings: Settings) -> Dispatcher:
    return Dispatcher(engine.db, settings, engine.clock)


@dataclass
class Driver:
    """Moves the clock to each due instant (or scheduled user action), sweeps, sends."""

    engine: Engine
    clock: SimulatedClock
    settings: Settings
    log: list[SweepReport]

    def tick(self) -> tuple[SweepReport, DispatchReport]:
        report = sweep(self.engine)
        self.log.append(report)
        return report, dispatcher(self.engine, self.settings).send_due()

    def run_until(
        self, end: datetime, actions: list[tuple[datetime, Callable[[], Any]]] | None = None
    ) -> None:
        """Like ``scheduler run`` with a clock that jumps: wake at every due instant and at
        every user action (run before the sweep of that instant), up to ``end``."""
        todo = sorted(actions or [], key=lambda a: a[0])
        self.tick()  # `scheduler run` wakes at once on start
        for _ in range(10_000):
            with read(self.engine.db) as conn:
                due = next_due(conn)
            candidates = [t for t in (due, todo[0][0] if todo else None) if t is not None]
            candidates = [t for t in candidates if t <= end]
            if not candidates:
                self.clock.set(max(end, self.clock.now()))
                self.tick()
                return
            at = max(min(candidates), self.clock.now())
            self.clock.set(at)
            while todo and todo[0][0] <= at:
                todo.pop(0)[1]()
            self.tick()
        raise AssertionError("the scheduler never caught up")
