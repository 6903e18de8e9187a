"""Each amendment step mails the people concerned (FAQ 2.3), through the outbox and a real
SMTP server on 127.0.0.1; an approved and a refused amendment, each message once."""

from __future__ import annotations

from conftest import paris
from french import fr, plain
from sched_support import dispatcher, free_port, settings_for, smtp_sink
from territories_helpers import (
    ANNEMASSE,
    ARDECHE,
    TARENTAISE,
    TERRITORY_OWNER,
    amendment,
    decide,
    file_amendment,
    import_shipped,
    opinion,
)
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock


def test_amendment_steps_are_mailed_once_to_the_right_people(sqlite_url: str) -> None:
    port = free_port()
    settings = settings_for(sqlite_url, port)
    engine = open_engine(settings, SimulatedClock(paris("2024-03-04T10:00:00")))
    try:
        import_shipped(engine)
        approved = file_amendment(
            engine, amendment(ARDECHE, add=[TARENTAISE], effective_on="2024-06-01")
        )
        opinion(engine, approved, "regional_council", "84", "favourable")
        assert opinion(engine, approved, "state_services", "84", "favourable") == "national_review"
        assert decide(engine, approved) == "approved"
        refused = file_amendment(
            engine, amendment(ARDECHE, add=[ANNEMASSE], effective_on="2024-09-01")
        )
        opinion(engine, refused, "state_services", "84", "unfavourable")
        with smtp_sink(port) as sink:
            report = dispatcher(engine, settings).send_due()
            assert (report.retrying, report.failed) == (0, 0)
            by_kind = sink.by_notification()
            assert by_kind == {
                "amendment_submitted": 2,
                "amendment_opinion_requested": 2,
                "amendment_to_decide": 1,
                "amendment_approved": 1,
                "amendment_refused": 1,
            }
            submitted = sink.of("amendment_submitted")[0]
            assert TERRITORY_OWNER.email in str(submitted.message["To"])
            assert "FAQ 2.3" in submitted.message.get_body(("plain",)).get_content()
            approved_mail = sink.of("amendment_approved")[0]
            recipients = str(approved_mail.message["To"])
            assert TERRITORY_OWNER.email in recipients and recipients.count("@") >= 3
            assert fr(f"n° {approved}") in approved_mail.message.get_body(("plain",)).get_content()
            # FAQ 2.3 (line 140): the refusal says which opinion was unfavourable, and why
            [refused_mail] = sink.of("amendment_refused")
            body = " ".join(plain(refused_mail.part("plain")).split())
            assert "Avis défavorable : - services de l'État (SGAR, DREETS) d'Auvergne" in body
            assert "d'Auvergne-Rhône-Alpes : vu" in body
            # a second dispatch sends nothing again
            dispatcher(engine, settings).send_due()
            assert len(sink.received) == 7
    finally:
        engine.db.dispose()
