"""Tampering of every kind is detected by ``audit verify`` and located (case id, event seq).

Each kind is done the way someone with write access to the database would do it (plain
SQL on the tables), on SQLite and PostgreSQL through the Python API, then once more
through the real ``ti-workflow audit verify`` process (exit 1 naming the fault, exit 0
on the intact log).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text, update

from audit_scenario import Campaign, rewrite_chain, run_campaign
from conftest import EngineFactory, paris
from ti_workflow.audit.checkpoints import take_checkpoint, verify_checkpoint
from ti_workflow.audit.store import cases_t, events_t
from ti_workflow.audit.verify import verify
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.engine import Engine
from ti_workflow.settings import Settings

Tamper = Callable[[Engine, Campaign], tuple[int, int | None, str]]
"""Alters the log; returns the (case id, seq, finding code) verify must report."""


def edit_payload(engine: Engine, run: Campaign) -> tuple[int, int | None, str]:
    case_id = run.ids["rejected"]  # seq 4: regional council's unfavourable opinion
    with engine.db.begin() as conn:
        conn.execute(
            update(events_t)
            .where(events_t.c.case_id == case_id, events_t.c.seq == 4)
            .values(payload={"opinion": "favourable", "reasons": "avis favorable"})
        )
    return case_id, 4, "hash_mismatch"


def delete_event(engine: Engine, run: Campaign) -> tuple[int, int | None, str]:
    case_id = run.ids["labelled"]
    with engine.db.begin() as conn:
        conn.execute(delete(events_t).where(events_t.c.case_id == case_id, events_t.c.seq == 3))
    return case_id, 4, "chain_broken"


def delete_last_event(engine: Engine, run: Campaign) -> tuple[int, int | None, str]:
    case_id = run.ids["rejected"]
    with engine.db.begin() as conn:
        last = conn.execute(
            text("select max(seq) from events where case_id = :c"), {"c": case_id}
        ).scalar_one()
        conn.execute(delete(events_t).where(events_t.c.case_id == case_id, events_t.c.seq == last))
    return case_id, last, "event_missing"


def swap_events(engine: Engine, run: Campaign) -> tuple[int, int | None, str]:
    case_id = run.ids["interregional"]  # seq 5 and 6: two opinions
    where = events_t.c.case_id == case_id
    with engine.db.begin() as conn:
        conn.execute(update(events_t).where(where, events_t.c.seq == 5).values(seq=-5))
        conn.execute(update(events_t).where(where, events_t.c.seq == 6).values(seq=5))
        conn.execute(update(events_t).where(where, events_t.c.seq == -5).values(seq=6))
    return case_id, 5, "chain_broken"


def edit_state(engine: Engine, run: Campaign) -> tuple[int, int | None, str]:
    case_id = run.ids["rejected"]
    with engine.db.begin() as conn:
        conn.execute(update(cases_t).where(cases_t.c.id == case_id).values(state="labelled"))
    return case_id, None, "case_differs_from_replay"


def late_submission(engine: Engine, run: Campaign) -> tuple[int, int | None, str]:
    """Backdating is caught by the chain; a consistent rewrite of the submit instant to after
    the close (FAQ 1.2) is caught by re-evaluating the window guard at the recorded instant."""
    case_id = run.ids["rejected"]
    rewrite_chain(engine, case_id, 2, at=paris("2023-09-23T00:00:01"))
    return case_id, 2, "guard_failed"


KINDS: dict[str, Tamper] = {
    "payload_edited": edit_payload,
    "event_deleted": delete_event,
    "last_event_deleted": delete_last_event,
    "events_swapped": swap_events,
    "state_edited": edit_state,
    "submitted_after_window": late_submission,
}

CHAIN_KINDS = ("payload_edited", "event_deleted", "last_event_deleted", "events_swapped")


@pytest.mark.parametrize("kind", list(KINDS))
def test_tampering_is_detected_and_located(
    kind: str, db_url: str, make_engine: EngineFactory, clock: SimulatedClock
) -> None:
    engine = make_engine(db_url)
    run = run_campaign(engine, clock)
    assert verify(engine).ok
    case_id, seq, code = KINDS[kind](engine, run)
    report = verify(engine)
    assert not report.ok
    located = {(f.case_id, f.seq, f.code) for f in report.findings}
    assert (case_id, seq, code) in located, report.findings
    assert {f.case_id for f in report.findings} == {case_id}, "only the tampered case is named"
    if kind in CHAIN_KINDS:  # what the quick pass (chains and heads only) must also catch
        quick = {(f.case_id, f.seq, f.code) for f in verify(engine, quick=True).findings}
        assert (case_id, seq, code) in quick
    assert verify(engine, case_id=run.ids["withdrawn"]).ok


def test_a_consistently_recomputed_chain_is_caught_only_by_a_checkpoint(
    db_url: str, make_engine: EngineFactory, clock: SimulatedClock
) -> None:
    engine = make_engine(db_url)
    run = run_campaign(engine, clock)
    checkpoint = take_checkpoint(engine).as_dict()
    case_id = run.ids["withdrawn"]  # backdate the withdrawal by a week, rehash everything
    rewrite_chain(engine, case_id, 3, at=paris("2023-09-03T16:00:00"))
    assert verify(engine).ok, "the forged chain is self-consistent"
    findings = verify_checkpoint(engine, checkpoint)
    assert [(f.case_id, f.seq, f.code) for f in findings] == [(case_id, 3, "checkpoint_mismatch")]
    assert verify_checkpoint(engine, {"root": checkpoint["root"]})[0].case_id == case_id
    # Appending after a checkpoint is normal: a fresh checkpoint over the same log holds.
    assert verify_checkpoint(engine, take_checkpoint(engine).as_dict()) == []


# --- the same through the real command line -------------------------------------------


@pytest.fixture(scope="module")
def campaign_db(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tamper") / "campaign.db"
    shutil.copy(sqlite_template, path)
    clock = SimulatedClock(paris("2023-06-26T10:00:00"))
    engine = open_engine(Settings(db_url=f"sqlite:///{path}"), clock)
    run_campaign(engine, clock)
    engine.db.dispose()
    return path


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ti_workflow.cli", "--db", f"sqlite:///{db}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_verify_passes_on_the_intact_log(campaign_db: Path) -> None:
    result = cli(campaign_db, "audit", "verify")
    assert result.returncode == 0, result.stderr
    assert "OK: 28 events in 5 cases verified" in result.stdout


@pytest.mark.parametrize("kind", [*KINDS, "chain_recomputed"])
def test_cli_verify_names_the_case_and_event(kind: str, campaign_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.db"
    shutil.copy(campaign_db, db)
    clock = SimulatedClock(paris("2023-12-01T00:00:00"))
    engine = open_engine(Settings(db_url=f"sqlite:///{db}"), clock)
    run = Campaign(
        engine, ids={"labelled": 1, "rejected": 2, "draft": 3, "withdrawn": 4, "interregional": 5}
    )
    extra: list[str] = []
    if kind == "chain_recomputed":
        cp = tmp_path / "checkpoint.json"
        cp.write_text(json.dumps(take_checkpoint(engine).as_dict()))
        rewrite_chain(engine, 4, 3, at=paris("2023-09-03T16:00:00"))
        case_id, seq, code = 4, 3, "checkpoint_mismatch"
        extra = ["--checkpoint", str(cp)]
    else:
        case_id, seq, code = KINDS[kind](engine, run)
    engine.db.dispose()
    result = cli(db, "--json", "audit", "verify", *extra)
    assert result.returncode == 1
    where = f"case {case_id}" + (f", event #{seq}" if seq is not None else "")
    assert f"{where}: [{code}]" in result.stderr, result.stderr
    body = json.loads(result.stdout)
    assert body["error"] == "audit_failed"
    assert {
        "case_id": str(case_id),
        "seq": None if seq is None else str(seq),
        "code": code,
    }.items() <= next(r for r in body["rules"] if r["code"] == code).items()


def test_outbox_messages_must_belong_to_an_event_or_a_timer(
    db_url: str, make_engine: EngineFactory, clock: SimulatedClock
) -> None:
    engine = make_engine(db_url)
    run = run_campaign(engine, clock)
    from ti_workflow.mail.tables import OutboxRow
    from ti_workflow.scheduling.tables import TimerRow

    outbox = OutboxRow.__table__  # type: ignore[attr-defined]
    timers = TimerRow.__table__  # type: ignore[attr-defined]
    labelled = run.ids["labelled"]

    def message(key: str, **cause: object) -> dict[str, object]:
        return {
            "message_id": f"<{key}@example.org>",
            "dedupe_key": key,
            "notification": "labelled",
            "recipients": [],
            "remaining": [],
            "rejected": {},
            "subject": "Forged",
            "body_text": "x",
            "body_html": "x",
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": clock.now(),
            "created_at": clock.now(),
            **cause,
        }

    with engine.db.begin() as conn:
        linked = conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.case_id == labelled)
        ).scalar_one()
        assert linked > 0, "the campaign queued messages for its events"
        timer = conn.execute(
            timers.insert().returning(timers.c.id),
            {
                "key": "announce-test",
                "campaign_id": "ti-2023-2027",
                "case_id": labelled,
                "name": "decision_announcement",
                "due_at": clock.now(),
                "action": {},
                "late_policy": "fire",
                "status": "done",
                "outcome": {},
                "created_at": clock.now(),
            },
        ).scalar_one()
        # Legitimate: a message a timer sent (announcements, reminders, escalations).
        conn.execute(outbox.insert(), message("by-timer", case_id=labelled, timer_id=timer))
        conn.execute(outbox.insert(), message("campaign-wide", timer_id=timer))
        # Forged: no event #99, no timer #424242, no cause at all.
        conn.execute(outbox.insert(), message("no-event", case_id=labelled, event_seq=99))
        conn.execute(outbox.insert(), message("no-timer", case_id=labelled, timer_id=424242))
        conn.execute(outbox.insert(), message("no-cause"))
    report = verify(engine)
    assert sorted(
        ((f.case_id or 0, f.seq, f.code, f.message.split(" ", 3)[3]) for f in report.findings),
        key=str,
    ) == sorted(
        [
            (0, None, "orphan_message", "names no event and no timer"),
            (labelled, 99, "orphan_message", "names event #99, which does not exist"),
            (labelled, None, "orphan_message", "names timer #424242, which does not exist"),
        ],
        key=str,
    )
    assert "campaign: [orphan_message]" in [str(f)[:26] for f in report.findings]


def test_cli_verify_in_two_processes_names_the_case_and_event(
    campaign_db: Path, tmp_path: Path
) -> None:
    db = tmp_path / "copy.db"
    shutil.copy(campaign_db, db)
    engine = open_engine(Settings(db_url=f"sqlite:///{db}"), SimulatedClock(paris("2023-12-01")))
    run = Campaign(
        engine, ids={"labelled": 1, "rejected": 2, "draft": 3, "withdrawn": 4, "interregional": 5}
    )
    case_id, seq, code = swap_events(engine, run)  # case 5: the second range of two
    engine.db.dispose()
    result = cli(db, "audit", "verify", "--workers", "2")
    assert result.returncode == 1
    assert f"case {case_id}, event #{seq}: [{code}]" in result.stderr, result.stderr
    assert "case 1" not in result.stderr and "case 4" not in result.stderr
