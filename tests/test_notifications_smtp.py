"""The dispatcher against a real SMTP server (aiosmtpd on 127.0.0.1): down, 451, 550,
partial refusals, a process dying mid-batch. Nothing is lost, nothing is sent twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from conftest import COMMITTEE, SYSTEM, candidacy, paris
from french import fr
from sched_support import dispatcher, free_port, open_with, settings_for, smtp_sink
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.mail import outbox
from ti_workflow.mail.dispatch import claim
from ti_workflow.mail.sink import RecordingHandler, start_sink
from ti_workflow.scheduling.runner import run
from ti_workflow.settings import Settings
from ti_workflow.storage.database import read

ARA_COUNCIL = "territoires-industrie@auvergnerhonealpes.example.fr"
ARA_STATE = "sgar-ti@auvergne-rhone-alpes.example.gouv.fr"
ARA_DREETS = "dreets-ara-ti@dreets.example.gouv.fr"
NATIONAL = "comite-pilotage@territoires-industrie.example.gouv.fr"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def setup(sqlite_url: str, port: int) -> Iterator[tuple[Engine, SimulatedClock, Settings]]:
    clock = SimulatedClock(paris("2023-07-03T10:00:00"))
    settings = settings_for(sqlite_url, port)
    engine = open_with(settings, clock)
    yield engine, clock, settings
    engine.db.dispose()


def _submit(engine: Engine, n: int) -> list[int]:
    ids = []
    for i in range(n):
        who = Actor("candidate", email=f"t{i}@example.org")
        data = candidacy(territory_name=f"Territoire {i}", contact_email=who.email)
        case = engine.create_case("candidacy", "ti-2023-2027", data, who)
        engine.fire(case.id, "submit", who)
        ids.append(case.id)
    return ids


def _messages(engine: Engine) -> list[dict[str, object]]:
    with read(engine.db) as conn:
        return outbox.list_messages(conn)


def test_down_then_451_then_550_nothing_lost_transient_retried_permanent_reported(
    setup: tuple[Engine, SimulatedClock, Settings], port: int
) -> None:
    engine, clock, settings = setup
    _submit(engine, 3)
    queued_ids = {m["message_id"] for m in _messages(engine)}
    assert len(queued_ids) == 3

    down = dispatcher(engine, settings).send_due()  # nobody listens on the port
    assert (down.sent, down.retrying) == (0, 3)
    assert all(m["status"] == "pending" and m["attempts"] == 1 for m in _messages(engine))
    assert "cannot connect to SMTP" in str(_messages(engine)[0]["last_error"])
    assert dispatcher(engine, settings).send_due().claimed == 0  # backing off

    with smtp_sink(port) as sink:
        sink.handler.reply = "451 4.3.0 Try again later"
        clock.advance(timedelta(seconds=31))
        busy = dispatcher(engine, settings).send_due()
        assert (busy.sent, busy.retrying) == (0, 3)
        assert {m["last_error"] for m in _messages(engine)} == {"451 4.3.0 Try again later"}

        sink.handler.reply = "550 5.7.1 Relaying denied"
        clock.advance(timedelta(seconds=61))
        refused = dispatcher(engine, settings).send_due()
        assert (refused.sent, refused.failed, refused.retrying) == (0, 3, 0)
        failed = _messages(engine)
        assert {m["status"] for m in failed} == {"failed"}
        assert failed[0]["rejected"] == {"t0@example.org": "550 5.7.1 Relaying denied"}
        assert sink.received == []

        # The operator fixes the relay and retries: each message arrives once, same Message-ID.
        sink.handler.reply = None
        with engine.db.begin() as conn:
            assert len(outbox.retry(conn, [], True, clock.now())) == 3
        sent = dispatcher(engine, settings).send_due()
        assert sent.sent == 3
        assert {m.message["Message-ID"] for m in sink.received} == queued_ids
        assert sorted(m.rcpt_tos[0] for m in sink.received) == [
            "t0@example.org",
            "t1@example.org",
            "t2@example.org",
        ]
        assert dispatcher(engine, settings).send_due().claimed == 0
        assert len(sink.received) == 3


def test_partial_refusals_retry_only_the_refused_transient_recipient(
    setup: tuple[Engine, SimulatedClock, Settings], port: int
) -> None:
    engine, clock, settings = setup
    [case_id] = _submit(engine, 1)
    engine.fire(case_id, "start_regional_review", SYSTEM)
    with smtp_sink(port) as sink:
        sink.handler.refuse = {ARA_COUNCIL: "450 4.2.1 Mailbox busy"}
        first = dispatcher(engine, settings).send_due()
        assert (first.sent, first.retrying) == (2, 1)  # receipt, window closed; opinion waits
        [request] = [m for m in _messages(engine) if m["notification"] == "opinion_requested"]
        assert request["status"] == "pending" and "450 4.2.1 Mailbox busy" in str(
            request["last_error"]
        )
        sink.handler.refuse = {}
        clock.advance(timedelta(minutes=1))
        assert dispatcher(engine, settings).send_due().sent == 1
        copies = [m.rcpt_tos for m in sink.of("opinion_requested")]
        # each body received it exactly once; the DREETS is copied with the SGAR (FAQ 1.3)
        assert copies == [[ARA_STATE, ARA_DREETS], [ARA_COUNCIL]]

        engine.fire(case_id, "close_regional_review", COMMITTEE)
        sink.handler.refuse = {
            "comite-pilotage@territoires-industrie.example.gouv.fr": "550 5.1.1 No such user"
        }
        report = dispatcher(engine, settings).send_due()
        assert report.failed == 1
        [escalation] = [m for m in _messages(engine) if m["notification"] == "escalation"]
        assert escalation["status"] == "failed"
        assert escalation["rejected"] == {
            "comite-pilotage@territoires-industrie.example.gouv.fr": "550 5.1.1 No such user"
        }


def test_a_process_dying_mid_batch_loses_nothing(
    setup: tuple[Engine, SimulatedClock, Settings], port: int
) -> None:
    engine, clock, settings = setup
    _submit(engine, 4)
    died = claim(engine.db, clock.now(), 10)  # a dispatcher claimed them, then was killed
    assert len(died) == 4
    with smtp_sink(port) as sink:
        assert dispatcher(engine, settings).send_due().claimed == 0  # still leased
        clock.advance(timedelta(minutes=6))
        assert dispatcher(engine, settings).send_due().sent == 4
        assert len(sink.received) == 4
        assert {m["status"] for m in _messages(engine)} == {"sent"}


def test_case_history_of_mail_is_visible_to_who_may_see_the_case(
    setup: tuple[Engine, SimulatedClock, Settings],
) -> None:
    engine, _clock, _settings = setup
    [case_id] = _submit(engine, 1)
    with read(engine.db) as conn:
        [row] = outbox.list_messages(conn, case_id=case_id)
    assert row["to"] == ["candidate <t0@example.org>"] and row["event_seq"] == 2
    assert row["subject"] == fr("Accusé de réception de votre candidature « Territoire 0 »")


TITLES = [  # long French titles whose subjects fold; the first lost its space before «»
    "Vallée de l'Arve",
    "Haute-Vallée de l'Arve et du Mont-Blanc, territoire d'industrie élargi",
    "Œuvre « commune » des vallées & des plateaux",
    "Pays de Montbéliard Agglomération – Nord Franche-Comté industriel",
    "A" * 90,
]


def test_subjects_arrive_exactly_as_stored(
    setup: tuple[Engine, SimulatedClock, Settings], port: int
) -> None:
    engine, _clock, settings = setup
    for i, title in enumerate(TITLES):
        who = Actor("candidate", email=f"s{i}@example.org")
        data = candidacy(territory_name=title, contact_email=who.email)
        case = engine.create_case("candidacy", "ti-2023-2027", data, who)
        engine.fire(case.id, "submit", who)
    stored = {m["id"]: m["subject"] for m in _messages(engine)}
    assert len(stored) == len(TITLES)
    with smtp_sink(port) as sink:
        assert dispatcher(engine, settings).send_due().sent == len(TITLES)
    assert sorted(m.subject for m in sink.received) == sorted(stored.values())
    assert all(title in m.subject for m, title in zip(sink.received, TITLES, strict=True))


def test_a_row_no_server_could_take_fails_alone_with_the_reason(
    setup: tuple[Engine, SimulatedClock, Settings], port: int
) -> None:
    engine, _clock, settings = setup
    first, second = _submit(engine, 2)
    with engine.db.begin() as conn:  # written behind the engine's back: a header injection
        conn.execute(
            outbox.outbox.update()
            .where(outbox.outbox.c.case_id == first)
            .values(
                recipients=[{"role": "candidate", "address": "a@example.org\r\nBcc: x@y.z"}],
                remaining=["a@example.org\r\nBcc: x@y.z"],
            )
        )
    with smtp_sink(port) as sink:
        report = dispatcher(engine, settings).send_due()
    assert (report.sent, report.failed) == (1, 1), report
    assert [m.message["X-TI-Case"] for m in sink.received] == [str(second)]
    failed = next(m for m in _messages(engine) if m["case_id"] == first)
    assert failed["status"] == "failed" and "cannot build the message" in failed["last_error"]


class SlowHandler(RecordingHandler):
    """Takes the message, then answers long after the client's timeout."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(4)
        return "250 OK"


def test_a_server_that_times_out_holds_up_one_message_not_the_batch(
    setup: tuple[Engine, SimulatedClock, Settings], port: int
) -> None:
    engine, _clock, settings = setup
    _submit(engine, 6)
    controller = start_sink("127.0.0.1", port, SlowHandler())
    try:
        begin = time.monotonic()
        report = dispatcher(engine, replace(settings, smtp_timeout=1)).send_due()
        took = time.monotonic() - begin
    finally:
        controller.stop()
    assert (report.claimed, report.sent, report.retrying) == (6, 0, 6)
    assert took < 3, f"{took:.1f} s: each message waited out the timeout"
    rows = _messages(engine)
    assert {r["status"] for r in rows} == {"pending"}  # nothing lost, all retried later
    assert sum("timed out on the previous message" in (r["last_error"] or "") for r in rows) == 5


def test_timers_keep_their_time_while_the_smtp_server_hangs(
    setup: tuple[Engine, SimulatedClock, Settings], port: int
) -> None:
    """`scheduler run`: mail has its own thread; a hung server never delays a deadline."""
    engine, _clock, settings = setup
    _submit(engine, 3)
    sweeps: list[dict[str, Any]] = []
    engine_slow = open_with(
        replace(settings, smtp_timeout=3), SimulatedClock(paris("2023-07-03T10:00"))
    )
    controller = start_sink("127.0.0.1", port, SlowHandler())
    try:
        run(engine_slow, interval=1, exit_after=3.5, on_wake=lambda w: sweeps.append(w))
    finally:
        controller.stop()
        engine_slow.db.dispose()
    timer_wakes = [w for w in sweeps if "sweep" in w]
    assert len(timer_wakes) >= 3, sweeps  # the safety interval kept sweeping every second
