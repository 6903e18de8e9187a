"""A campaign file change never cancels a timer silently (issue 12 item 2), on SQLite and
PostgreSQL: the pending rows follow the file, each cancellation and re-plan is reported, and
cancelling a timer that fires a trigger needs ``cancelled:`` (a date, a reason) or
``allow_cancel``; otherwise nothing changes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from conftest import EngineFactory
from ti_workflow.definitions.campaigns import parse_campaign
from ti_workflow.definitions.loader import parse_yaml_text
from ti_workflow.domain.campaign import Campaign
from ti_workflow.scheduling.timers import CancelRefused, sync_campaign_timers, timers

HEAD = "campaign: c-1\nwindow: {opens_on: 2026-01-01, closes_on: 2026-02-01}\ntimers:\n"
CLOSING = (
    "  - {name: closing, at: window.closed, workflow: candidacy,"
    " actions: [{fire: lapse, in: [draft]}]}\n"
)
REMINDER = (
    "  - {name: reminder, at: window.closes_on, before: [P7D], workflow: candidacy,"
    " actions: [{notify: closing_reminder, in: [draft]}]}\n"
)


def campaign(text: str) -> Campaign:
    return parse_campaign(parse_yaml_text(text), "c-1.yaml")


def statuses(db: object) -> dict[str, str]:
    with db.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(
            select(timers.c.name, timers.c.status).where(timers.c.campaign_id == "c-1")
        ).all()
    return {r.name: r.status for r in rows}


def test_pending_timers_follow_the_file_aloud(make_engine: EngineFactory, db_url: str) -> None:
    engine = make_engine(db_url)
    db, now = engine.db, engine.clock.now()
    with db.begin() as conn:
        created = sync_campaign_timers(conn, [campaign(HEAD + CLOSING + REMINDER)], now)
    assert created.created == 2
    assert statuses(db) == {"closing": "pending", "reminder.J-7": "pending"}

    # The closing sweep removed by a stray edit: refused, nothing written.
    for dry in (True, False):
        with pytest.raises(CancelRefused) as refused, db.begin() as conn:
            sync_campaign_timers(conn, [campaign(HEAD + REMINDER)], now, dry_run=dry)
        [message] = refused.value.errors
        assert message.startswith("c-1.yaml: timers: 'closing' (due 2026-02-01T23:00:00+00:00")
        assert "fires lapse) is no longer in the file" in message
    assert statuses(db) == {"closing": "pending", "reminder.J-7": "pending"}

    # A reminder moved and the closing announced as cancelled: both done and reported.
    moved = REMINDER.replace("before: [P7D]", "before: [P7D], time: '10:00'")
    announced = "cancelled: [{name: closing, on: 2026-01-15, reason: fenêtre prolongée}]\n"
    with db.begin() as conn:
        report = sync_campaign_timers(conn, [campaign(HEAD + moved + announced)], now)
    assert report.lines() == [
        "cancelled   c-1 closing (was due 2026-02-01T23:00:00+00:00): "
        "taken out on 2026-01-15: fenêtre prolongée",
        "re-planned  c-1 reminder.J-7: due 2026-01-24T23:00:00+00:00 -> 2026-01-25T09:00:00+00:00",
    ]
    assert statuses(db) == {"closing": "cancelled", "reminder.J-7": "pending"}

    # A reminder alone goes without permission, and is reported.
    with db.begin() as conn:
        report = sync_campaign_timers(conn, [campaign(HEAD + "  []\n")], now)
    assert [c["name"] for c in report.cancelled] == ["reminder.J-7"]
    assert statuses(db) == {"closing": "cancelled", "reminder.J-7": "cancelled"}


def test_allow_cancel_and_dropping_a_trigger(make_engine: EngineFactory, db_url: str) -> None:
    engine = make_engine(db_url)
    db, now = engine.db, engine.clock.now()
    with db.begin() as conn:
        sync_campaign_timers(conn, [campaign(HEAD + CLOSING)], now)
    notify_only = CLOSING.replace("fire: lapse", "notify: closing_reminder")
    with pytest.raises(CancelRefused) as refused, db.begin() as conn:
        sync_campaign_timers(conn, [campaign(HEAD + notify_only)], now)
    assert "(due 2026-02-01T23:00:00+00:00, fires lapse) no longer fires in the file" in str(
        refused.value
    )
    with db.begin() as conn:
        report = sync_campaign_timers(conn, [campaign(HEAD + "  []\n")], now, allow_cancel=True)
    assert [c["name"] for c in report.cancelled] == ["closing"]
    assert statuses(db) == {"closing": "cancelled"}
