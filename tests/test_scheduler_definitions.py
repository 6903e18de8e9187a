"""Timers and notifications as declared in files: validation (file + path), calendar and
business days, and the DST fold of 27 October 2024."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import paris
from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import PARIS, SimulatedClock
from ti_workflow.definitions.campaigns import parse_campaign
from ti_workflow.definitions.loader import parse_definition, parse_yaml_text, read_yaml
from ti_workflow.definitions.timers import workflow_specs
from ti_workflow.domain.timers import Delay, add_business_days
from ti_workflow.errors import InvalidDefinition
from ti_workflow.scheduling.jobs import JOBS, JobContext, register_job
from ti_workflow.scheduling.sweep import sweep
from ti_workflow.scheduling.timers import list_timers
from ti_workflow.settings import Settings
from ti_workflow.storage.database import read

CAMPAIGN = """
campaign: test
timezone: Europe/Paris
window: {opens_on: 2023-06-23, closes_on: 2023-09-22}
parameters: {announcement_on: 2023-11-14}
"""


def _campaign(timers: str) -> Any:
    return parse_campaign(parse_yaml_text(CAMPAIGN + timers), "campaigns/test.yaml")


def test_campaign_timer_errors_name_the_file_and_path() -> None:
    with pytest.raises(InvalidDefinition) as exc:
        _campaign(
            "timers:\n"
            "  - {name: a, at: parameters.nope, workflow: candidacy, actions: [{fire: lapse}]}\n"
            "  - {name: b, at: window.closes_on, time: '25:00', workflow: candidacy,\n"
            "     actions: [{notify: x, in: [draft]}], late: later}\n"
            "  - {name: c, at: 2023-07-01, before: [P1X], actions: [{job: j, in: [draft]}]}\n"
        )
    errors = exc.value.errors
    assert "campaigns/test.yaml: timers[0].at: a date (2023-11-14), window.opens_on" in errors[0]
    assert any(
        "timers[0].actions[0].in: fire: acts on the cases in these states" in e for e in errors
    )
    assert any("timers[1].time: a local time HH:MM is required, got '25:00'" in e for e in errors)
    assert any(
        "timers[1].late: unknown late policy 'later' (allowed: fire, skip, escalate)" in e
        for e in errors
    )
    assert any("timers[2].before[0]: an ISO 8601 duration such as P14D" in e for e in errors)
    assert any(
        "timers[2].actions[0].in: a job acts on the campaign, not on cases" in e for e in errors
    )


def test_the_shipped_campaign_timetable() -> None:
    campaign = parse_campaign(
        read_yaml(Settings().campaign_files()[0]), "workflows/campaigns/ti-2023-2027.yaml"
    )
    due = {t.name: t.due.astimezone(PARIS).isoformat() for t in campaign.timers}
    assert due == {
        "window_opened": "2023-06-23T09:00:00+02:00",
        "closing_reminder.J-14": "2023-09-08T09:00:00+02:00",
        "closing_reminder.J-7": "2023-09-15T09:00:00+02:00",
        "closing_reminder.J-1": "2023-09-21T09:00:00+02:00",
        "window_closing": "2023-09-23T00:00:00+02:00",  # right after 22/09 23:59:59.999999
        "opinion_reminder.J-5": "2023-10-08T09:00:00+02:00",
        "regional_review_deadline": "2023-10-13T23:59:00+02:00",
        "decision_announcement": "2023-11-14T10:00:00+01:00",
        "general_assembly_invitation.J+1": "2023-11-15T10:00:00+01:00",
    }
    closing = next(t for t in campaign.timers if t.name == "window_closing")
    assert closing.due - campaign.closes_at == timedelta(microseconds=1)


def test_workflow_timer_and_notification_errors() -> None:
    document = read_yaml(Settings().workflows_dir / "candidacy.yaml")
    document["timers"] = [
        {
            "name": "t",
            "after": "submitted",
            "delay": "14 days",
            "while_in": ["drafts"],
            "notify": "nope",
            "late": "fire",
        }
    ]
    document["notifications"].append({"name": "x", "to": ["mayor"], "when": "approve"})
    last = len(document["notifications"]) - 1
    with pytest.raises(InvalidDefinition) as exc:
        parse_definition(document, "workflows/candidacy.yaml")
    text = "\n".join(exc.value.errors)
    for expected in (
        "workflows/candidacy.yaml: timers[0].after: an event trigger is required",
        "timers[0].delay: an ISO 8601 duration such as P14D, P2W or PT48H is required, "
        "got '14 days'",
        "timers[0].while_in[0]: unknown state 'drafts'",
        "timers[0].notify: unknown notification 'nope'",
        f"notifications[{last}].to[0]: unknown recipient 'mayor'",
        f"notifications[{last}].when: unknown trigger 'approve'",
    ):
        assert expected in text


def test_calendar_and_french_business_days() -> None:
    # 14 calendar days on the Paris wall clock across the end of summer time.
    start = datetime(2023, 10, 20, 10, 0, tzinfo=PARIS)
    assert Delay("P14D", days=14).after(start, PARIS) == datetime(2023, 11, 3, 10, 0, tzinfo=PARIS)
    # 10 working days from Friday 27 October 2023: 1 and 11 November are public holidays.
    assert add_business_days(date(2023, 10, 27), 10) == date(2023, 11, 13)
    business = Delay("P10D", days=10, business=True)
    assert business.after(datetime(2023, 10, 27, 9, tzinfo=PARIS), PARIS) == datetime(
        2023, 11, 13, 9, tzinfo=PARIS
    )
    assert Delay("PT48H", seconds=48 * 3600).after(
        datetime(2024, 10, 26, 12, tzinfo=PARIS), PARIS
    ) == datetime(2024, 10, 28, 11, tzinfo=PARIS)  # 48 real hours, one of them repeated


@pytest.fixture
def dst_world(tmp_path: Path) -> Settings:
    workflows = tmp_path / "workflows"
    shutil.copytree(Settings().workflows_dir, workflows)
    (workflows / "campaigns" / "dst.yaml").write_text(
        "campaign: dst-2024\ntimezone: Europe/Paris\n"
        "window: {opens_on: 2024-09-01, closes_on: 2024-12-31}\n"
        "timers:\n"
        "  - {name: nightly, at: 2024-10-26, time: '02:30', every: P1D,\n"
        "     actions: [{job: count_runs}]}\n"
        "  - {name: at_the_fold, at: 2024-10-27, time: '02:30', actions: [{job: count_runs}]}\n"
    )
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'dst.db'}", workflows_dir=workflows)
    initialise(settings, SimulatedClock(paris("2024-10-01T00:00")))
    return settings


def test_a_timer_at_0230_paris_on_27_october_2024_fires_once(dst_world: Settings) -> None:
    runs: list[tuple[str, datetime]] = []

    @register_job("count_runs")
    def count(ctx: JobContext) -> dict[str, Any]:
        runs.append((ctx.timer_name, ctx.due_at))
        return {"n": len(runs)}

    try:
        clock = SimulatedClock(datetime(2024, 10, 25, 22, 0, tzinfo=UTC))
        engine = open_engine(dst_world, clock)
        while clock.now() < datetime(2024, 10, 28, 6, 0, tzinfo=UTC):
            sweep(engine)  # every 30 minutes through both 02:30 of the night of the fold
            clock.advance(timedelta(minutes=30))
        engine.db.dispose()
    finally:
        JOBS.pop("count_runs", None)
    assert sorted(runs, key=lambda r: (r[1], r[0])) == [
        ("nightly", datetime(2024, 10, 26, 0, 30, tzinfo=UTC)),  # 02:30 CEST
        ("at_the_fold", datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),  # first 02:30 (CEST) only
        ("nightly", datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),
        ("nightly", datetime(2024, 10, 28, 1, 30, tzinfo=UTC)),  # 02:30 CET
    ]


def test_a_timer_removed_from_the_campaign_file_is_cancelled_not_fired(
    dst_world: Settings,
) -> None:
    runs: list[str] = []

    @register_job("count_runs")
    def count(ctx: JobContext) -> dict[str, Any]:
        runs.append(ctx.timer_name)
        return {}

    @register_job("count_other")
    def other(ctx: JobContext) -> dict[str, Any]:
        runs.append(f"{ctx.timer_name}:other")
        return {}

    try:
        clock = SimulatedClock(datetime(2024, 10, 26, 12, 0, tzinfo=UTC))
        engine = open_engine(dst_world, clock)
        sweep(engine)  # nightly ran at 02:30 on the 26th; its next occurrence is pending
        engine.db.dispose()
        assert runs == ["nightly"]
        campaign = dst_world.workflows_dir / "campaigns" / "dst.yaml"
        text = campaign.read_text()
        fold = "{name: at_the_fold, at: 2024-10-27, time: '02:30', actions: [{job: count_runs}]}"
        later = "{name: later, at: 2024-10-27, time: '05:00', actions: [{job: count_other}]}"
        assert fold in text
        text = text.replace(fold, later)  # at_the_fold removed, a new timer added
        text = text.replace("count_runs", "count_other")  # nightly now runs another job
        campaign.write_text(text)
        clock.set(datetime(2024, 10, 27, 12, 0, tzinfo=UTC))
        engine = open_engine(dst_world, clock)
        report = sweep(engine)
        with read(engine.db) as conn:
            cancelled = list_timers(conn, statuses=["cancelled"])
        engine.db.dispose()
    finally:
        JOBS.pop("count_runs", None)
        JOBS.pop("count_other", None)
    assert runs == ["nightly", "nightly:other", "later:other"]
    assert [t["name"] for t in report.timers] == ["nightly", "later"]
    assert [(t["name"], t["outcome"]) for t in cancelled] == [
        ("at_the_fold", {"reason": "removed from the file of campaign dst-2024"})
    ]


def test_a_daily_0230_timer_keeps_0230_after_the_night_it_did_not_exist(
    tmp_path: Path,
) -> None:
    """Last Sunday of March 2025: 02:30 Paris does not exist; the timer runs at 03:30
    (01:30 UTC) that night and is back at 02:30 summer time (00:30 UTC) the next."""
    workflows = tmp_path / "workflows"
    shutil.copytree(Settings().workflows_dir, workflows)
    (workflows / "campaigns" / "spring.yaml").write_text(
        "campaign: spring-2025\ntimezone: Europe/Paris\n"
        "window: {opens_on: 2025-01-01, closes_on: 2025-12-31}\n"
        "timers:\n"
        "  - {name: nightly, at: 2025-03-28, time: '02:30', every: P1D,\n"
        "     actions: [{job: count_spring}]}\n"
    )
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'spring.db'}", workflows_dir=workflows)
    runs: list[datetime] = []

    @register_job("count_spring")
    def count(ctx: JobContext) -> dict[str, Any]:
        runs.append(ctx.due_at)
        return {}

    try:
        clock = SimulatedClock(datetime(2025, 3, 27, 22, 0, tzinfo=UTC))
        initialise(settings, clock)
        engine = open_engine(settings, clock)
        while clock.now() < datetime(2025, 4, 1, 6, 0, tzinfo=UTC):
            sweep(engine)
            clock.advance(timedelta(minutes=30))
        engine.db.dispose()
    finally:
        JOBS.pop("count_spring", None)
    assert [r.astimezone(UTC) for r in runs] == [
        datetime(2025, 3, 28, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2025, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2025, 3, 30, 1, 30, tzinfo=UTC),  # 03:30 CEST: 02:30 did not exist
        datetime(2025, 3, 31, 0, 30, tzinfo=UTC),  # 02:30 CEST again
        datetime(2025, 4, 1, 0, 30, tzinfo=UTC),
    ]


def test_sub_day_offsets_are_named_as_written() -> None:
    campaign = _campaign(
        "timers:\n"
        "  - {name: last_call, at: window.closes_on, time: '23:00', workflow: candidacy,\n"
        "     before: [P1D, PT3M, PT1M], actions: [{notify: closing_reminder, in: [draft]}]}\n"
    )
    assert [(t.name, t.due.astimezone(PARIS).strftime("%d/%m %H:%M")) for t in campaign.timers] == [
        ("last_call.J-1", "21/09 23:00"),
        ("last_call.-PT3M", "22/09 22:57"),
        ("last_call.-PT1M", "22/09 22:59"),
    ]


def test_a_case_timer_delay_may_be_a_campaign_parameter() -> None:
    """The binôme follow-up delays (FAQ 4.1) are campaign parameters: a campaign that sets
    one gives a duration; one that does not starts no such timer."""
    from ti_workflow.scheduling.install import campaign_timer_errors

    definition = parse_definition(
        read_yaml(Settings().workflows_dir / "candidacy.yaml"), "workflows/candidacy.yaml"
    )
    shipped = parse_campaign(
        read_yaml(Settings().campaign_files()[0]), "workflows/campaigns/ti-2023-2027.yaml"
    )
    assert campaign_timer_errors({"candidacy": definition}, [shipped]) == []
    [reminder] = [t for t in workflow_specs(definition)[0] if t.name == "binome_reminder"]
    assert reminder.delay_for(shipped.parameters) == Delay("P90D", days=90)
    assert reminder.delay_for({}) is None
    document = read_yaml(Settings().campaign_files()[0])
    document["parameters"] = {**document["parameters"], "binome_reminder_after": "90 jours"}
    wrong = parse_campaign(document, "campaigns/wrong.yaml")
    [error] = campaign_timer_errors({"candidacy": definition}, [wrong])
    assert error.startswith("campaigns/wrong.yaml: parameters.binome_reminder_after")
    assert "got '90 jours'" in error


def test_a_final_state_keeps_only_self_loops() -> None:
    document = read_yaml(Settings().workflows_dir / "candidacy.yaml")
    document["transitions"].append(
        {"trigger": "relabel", "source": "labelled", "dest": "national_review", "roles": ["system"]}
    )
    with pytest.raises(InvalidDefinition) as exc:
        parse_definition(document, "workflows/candidacy.yaml")
    assert any("states.labelled: a final state cannot have outgoing" in e for e in exc.value.errors)
