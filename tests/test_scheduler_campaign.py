"""The 2023 campaign walked with a simulated clock, a real SMTP server and real timers.

The timetable (FAQ 1.2, 1.3; the other dates are campaign parameters of
``workflows/campaigns/ti-2023-2027.yaml``): filing opens 23 June 2023, closes
22 September 2023 23:59:59.999999 Paris; reminders at J-14, J-7, J-1; regional
opinions due 13 October (reminder 5 days before); national selection end of October;
map announced 14 November; general assembly invitation the next day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime

import pytest

from conftest import COMMITTEE, candidacy, paris
from french import fr, plain
from sched_support import Driver, Sink, dispatcher, open_with, settings_for, smtp_sink
from ti_workflow.audit.verify import verify
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.errors import GuardRefused
from ti_workflow.scheduling.sweep import sweep
from ti_workflow.scheduling.timers import STATUSES, list_timers
from ti_workflow.storage.database import read

BRETAGNE = ["200027027", "200038990"]  # CC Arc Sud Bretagne, CC de Saint-Méen Montauban (53)
A = Actor("candidate", email="arve@example.org")
B = Actor("candidate", email="brouillon@example.org")
C = Actor("candidate", email="complement@example.org")
D = Actor("candidate", email="bretagne@example.org")
NATIONAL = "comite-pilotage@territoires-industrie.example.gouv.fr"
ARA_COUNCIL = "territoires-industrie@auvergnerhonealpes.example.fr"
ARA_STATE = "sgar-ti@auvergne-rhone-alpes.example.gouv.fr"
BZH_COUNCIL = "territoires-industrie-53@region.example.fr"
BZH_STATE = "sgar-53@prefecture.example.gouv.fr"
ARA_DREETS = "dreets-ara-ti@dreets.example.gouv.fr"
BZH_DREETS = "dreets-53@dreets.example.gouv.fr"  # FAQ 1.3: the SGAR "en lien avec" the DREETS


@pytest.fixture
def sink() -> Iterator[Sink]:
    with smtp_sink() as s:
        yield s


@pytest.fixture
def world(sqlite_url: str, sink: Sink) -> Iterator[tuple[Engine, Driver]]:
    clock = SimulatedClock(paris("2023-06-01T09:00:00"))
    settings = settings_for(sqlite_url, sink.port)
    engine = open_with(settings, clock)
    yield engine, Driver(engine, clock, settings, [])
    engine.db.dispose()


def _create(engine: Engine) -> dict[str, int]:
    ids = {}
    for name, actor, members in (
        ("Vallée de l'Arve", A, None),
        ("Brouillon oublié", B, None),
        ("Territoire à compléter", C, None),
        ("Bretagne Sud", D, BRETAGNE),
    ):
        data = candidacy(territory_name=name, contact_email=actor.email)
        if members:
            data["perimeter"]["members"] = members
        ids[name] = engine.create_case("candidacy", "ti-2023-2027", data, actor).id
    return ids


def _opinion(engine: Engine, case_id: int, body: str, region: str) -> None:
    engine.fire(
        case_id,
        "give_opinion",
        Actor(body, region=region),
        {"opinion": "favourable", "reasons": "Cohérent avec la stratégie régionale"},
    )


def _received(sink: Sink) -> Counter[tuple[str, str]]:
    return Counter(
        (str(m.message["X-TI-Notification"]), ",".join(sorted(m.rcpt_tos))) for m in sink.received
    )


def test_the_whole_2023_campaign_sends_every_expected_mail_once(
    world: tuple[Engine, Driver], sink: Sink
) -> None:
    engine, driver = world
    ids = _create(engine)
    a, b, c, d = (ids[k] for k in ids)
    decided_mail_count: list[int] = []
    actions = [
        (paris("2023-07-03T10:00"), lambda: engine.fire(a, "submit", A)),
        (paris("2023-07-05T10:00"), lambda: engine.fire(c, "submit", C)),
        (paris("2023-07-10T10:00"), lambda: engine.fire(d, "submit", D)),
        (
            paris("2023-08-01T10:00"),
            lambda: engine.fire(
                c, "return_for_completion", COMMITTEE, {"reason": "Lettre d'intention manquante"}
            ),
        ),
        (paris("2023-08-20T10:00"), lambda: engine.fire(c, "submit", C)),
        (paris("2023-10-02T10:00"), lambda: _opinion(engine, a, "regional_council", "84")),
        (paris("2023-10-02T11:00"), lambda: _opinion(engine, a, "state_services", "84")),
        (paris("2023-10-03T10:00"), lambda: _opinion(engine, c, "regional_council", "84")),
        (paris("2023-10-03T11:00"), lambda: _opinion(engine, c, "state_services", "84")),
        (paris("2023-10-04T10:00"), lambda: _opinion(engine, d, "regional_council", "53")),
        (paris("2023-10-31T15:00"), lambda: engine.fire(a, "label", COMMITTEE)),
        (paris("2023-10-31T15:05"), lambda: engine.fire(d, "label", COMMITTEE)),
        (
            paris("2023-10-31T15:10"),
            lambda: engine.fire(
                c, "reject", COMMITTEE, {"reason": "Plan d'action sans action industrielle"}
            ),
        ),
        (paris("2023-11-01T09:00"), lambda: decided_mail_count.append(len(sink.received))),
    ]
    driver.run_until(paris("2023-11-30T23:00"), actions)

    got = _received(sink)
    expected = Counter(
        {
            ("window_opened", "arve@example.org"): 1,  # 23 June: every registered draft
            ("window_opened", "brouillon@example.org"): 1,
            ("window_opened", "complement@example.org"): 1,
            ("window_opened", "bretagne@example.org"): 1,
            ("submission_acknowledged", "arve@example.org"): 1,
            ("submission_acknowledged", "complement@example.org"): 2,  # filed twice
            ("submission_acknowledged", "bretagne@example.org"): 1,
            ("returned_for_completion", "complement@example.org"): 1,
            ("completion_reminder", "complement@example.org"): 1,  # 15 August (P14D)
            ("closing_reminder", "brouillon@example.org"): 3,  # J-14, J-7, J-1
            ("candidacy_lapsed", "brouillon@example.org"): 1,
            ("window_closed", "arve@example.org"): 1,
            ("window_closed", "complement@example.org"): 1,
            ("window_closed", "bretagne@example.org"): 1,
            ("opinion_requested", f"{ARA_DREETS},{ARA_STATE},{ARA_COUNCIL}"): 2,  # A and C
            ("opinion_requested", f"{BZH_DREETS},{BZH_STATE},{BZH_COUNCIL}"): 1,
            ("opinion_reminder", f"{BZH_DREETS},{BZH_STATE}"): 1,  # only the missing body
            ("escalation", NATIONAL): 1,  # D at the due date
            ("labelled", "arve@example.org"): 1,
            ("labelled", "bretagne@example.org"): 1,
            ("not_selected", "complement@example.org"): 1,
            ("general_assembly_invitation", "arve@example.org"): 1,
            ("general_assembly_invitation", "bretagne@example.org"): 1,
        }
    )
    assert got == expected, f"missing: {expected - got}, unexpected: {got - expected}"

    # Decisions stay confidential until the map is announced (FAQ 1.3).
    assert decided_mail_count == [sum(expected.values()) - 5]
    [rejected] = sink.of("not_selected")
    assert "Plan d'action sans action industrielle" in rejected.part("plain")
    assert rejected.subject == fr("Suite donnée à votre candidature « Territoire à compléter »")
    assert "Plan d&#39;action sans action industrielle" in rejected.part("html")
    closed = sink.of("window_closed")[0]
    assert closed.subject.startswith(fr("Dépôt clos : votre candidature « "))
    assert "a été clos le 22 septembre 2023" in closed.part("plain")
    # FAQ 1.3 says "fin octobre" and "en novembre 2023": the dates of the campaign file are
    # not announced (parameters.announced), so candidates get the FAQ's periods.
    assert "sélection nationale fin octobre 2023" in plain(closed.part("plain"))
    assert "carte des Territoires d'industrie en novembre 2023" in " ".join(
        plain(closed.part("plain")).split()
    )
    assert "31 octobre" not in closed.part("html") and "14 novembre" not in closed.part("html")
    [lapsed] = sink.of("candidacy_lapsed")
    assert "22 septembre 2023" in lapsed.part("plain") and "caduque" in lapsed.part("plain")
    [reminder] = sink.of("opinion_reminder")
    assert "Bretagne" in reminder.part("plain") and "services de l'État" in reminder.part("plain")
    assert "conseil régional" not in reminder.part("plain").split("Avis manquants")[1]
    assert "attendu au plus tard le 13 octobre 2023 à 23 h 59" in reminder.part("plain")
    assert fr("au plus tard le 13 octobre 2023 à 23 h 59 (« ") in reminder.subject
    invitation = sink.of("general_assembly_invitation")[0]
    assert "prévue en décembre 2023" in invitation.part("plain")  # not announced: no day
    assert "14 décembre" not in invitation.part("plain") and "Paris" not in invitation.part("html")
    # French wording: "d'Auvergne-Rhône-Alpes", a deadline is "au plus tard le", the period of
    # the label comes from the campaign.
    acknowledged = {
        m.rcpt_tos[0]: {t: " ".join(m.part(t).split()) for t in ("plain", "html")}
        for m in sink.of("submission_acknowledged")
    }
    arve, bretagne = acknowledged["arve@example.org"], acknowledged["bretagne@example.org"]
    assert "au conseil régional d'Auvergne-Rhône-Alpes, ainsi qu'aux" in arve["plain"]
    assert "au conseil régional d&#39;Auvergne-Rhône-Alpes, ainsi qu'aux" in arve["html"]
    assert "au conseil régional de Bretagne, ainsi qu'aux services de l'État" in bretagne["plain"]
    [requested, *_] = sink.of("opinion_requested")
    assert "au plus tard le 13 octobre 2023 à 23 h 59." in requested.part("plain")
    for labelled in sink.of("labelled"):
        assert "labellisé Territoire d'industrie pour la période 2023-2027" in labelled.part(
            "plain"
        )
    assert not [m.subject for m in sink.received if "avant le" in m.part("plain")]
    assert len({m.message["Message-ID"] for m in sink.received}) == len(sink.received)

    states = {k: engine.get(v, COMMITTEE).state for k, v in ids.items()}
    assert states == {
        "Vallée de l'Arve": "labelled",
        "Brouillon oublié": "lapsed",
        "Territoire à compléter": "not_selected",
        "Bretagne Sud": "labelled",
    }
    lapse = [e for e in engine.history(b, COMMITTEE) if e.trigger == "lapse"]
    assert [(e.actor, e.at) for e in lapse] == [("system", paris("2023-09-23T00:00:00"))]

    # The log of a campaign whose timers mailed reminders, announcements and an
    # escalation verifies: a message a timer sent names that timer, not an event.
    report = verify(engine)
    assert report.ok, [str(f) for f in report.findings]

    # Nothing left to do, and a further sweep does nothing and sends nothing.
    before = len(sink.received)
    assert sweep(engine).timers == []
    assert dispatcher(engine, driver.settings).send_due().claimed == 0
    assert len(sink.received) == before


def test_scheduler_down_from_20_to_25_september(world: tuple[Engine, Driver], sink: Sink) -> None:
    engine, driver = world
    ids = _create(engine)
    a, b, c, d = (ids[k] for k in ids)
    late_draft = engine.create_case(
        "candidacy",
        "ti-2023-2027",
        candidacy(territory_name="Retardataire", contact_email="tard@example.org"),
        Actor("candidate", email="tard@example.org"),
    ).id
    driver.run_until(
        paris("2023-09-20T08:00"),
        [(paris("2023-07-03T10:00"), lambda: engine.fire(a, "submit", A))],
    )
    assert sink.by_notification()["closing_reminder"] == 2 * 4  # J-14, J-7 to 4 drafts

    # The scheduler is down. Users still act; the submit guard still knows the law (FAQ 1.2).
    driver.clock.set(paris("2023-09-22T23:59:59.999999"))
    engine.fire(c, "submit", C)
    driver.clock.set(paris("2023-09-24T09:00"))
    with pytest.raises(GuardRefused) as refused:
        engine.fire(late_draft, "submit", Actor("candidate", email="tard@example.org"))
    assert [r.code for r in refused.value.rules] == ["window_closed"]

    # Restart on 25 September: catch up at once, late policies applied.
    driver.clock.set(paris("2023-09-25T10:00"))
    report, mail = driver.tick()
    # 3 lapsed, 2 x (window closed, opinion requested), and the receipt queued while down
    assert (mail.sent, mail.retrying, mail.failed) == (8, 0, 0)
    assert {t["name"]: t["status"] for t in report.timers} == {
        "closing_reminder.J-1": "skipped",  # late: skip
        "window_closing": "done",  # late: fire anyway
    }
    closing = next(t for t in report.timers if t["name"] == "window_closing")
    assert closing["outcome"]["actions"] == [
        {"kind": "fire", "name": "lapse", "fired": 3, "skipped": 0},
        {"kind": "fire", "name": "start_regional_review", "fired": 2, "skipped": 0},
    ]
    states = {k: engine.get(v, COMMITTEE).state for k, v in ids.items()}
    assert states["Brouillon oublié"] == "lapsed" and states["Bretagne Sud"] == "lapsed"
    assert states["Territoire à compléter"] == "regional_review"
    assert engine.get(late_draft, COMMITTEE).state == "lapsed"

    # A second restart (or a second process) changes nothing and sends nothing.
    sent = len(sink.received)
    again, mail_again = driver.tick()
    assert again.timers == [] and mail_again.claimed == 0 and len(sink.received) == sent
    counts = sink.by_notification()
    assert counts["closing_reminder"] == 8 and counts["candidacy_lapsed"] == 3
    assert counts["window_closed"] == 2
    lapses = [e for e in engine.history(b, COMMITTEE) if e.trigger == "lapse"]
    assert len(lapses) == 1 and lapses[0].at == paris("2023-09-25T10:00")
    with read(engine.db) as conn:
        closed = [
            t
            for t in list_timers(conn, statuses=STATUSES, limit=100)
            if t["name"] == "window_closing"
        ]
    assert [(t["status"], t["attempts"]) for t in closed] == [("done", 1)]
    assert d  # the Breton draft was never submitted: lapsed above


def test_completion_timer_is_cancelled_when_the_case_is_filed_again(
    world: tuple[Engine, Driver], sink: Sink
) -> None:
    engine, driver = world
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(contact_email=A.email), A)
    driver.clock.set(paris("2023-07-03T10:00"))
    engine.fire(case.id, "submit", A)
    engine.fire(case.id, "return_for_completion", COMMITTEE, {"reason": "Précisez le plan"})
    with read(engine.db) as conn:
        [timer] = list_timers(conn, case_id=case.id)
    assert datetime.fromisoformat(timer["due_at"]) == paris("2023-07-17T10:00")  # P14D later
    assert timer["status"] == "pending" and timer["action"]["notify"] == "completion_reminder"
    driver.clock.set(paris("2023-07-10T10:00"))
    engine.fire(case.id, "submit", A)
    with read(engine.db) as conn:
        [cancelled] = list_timers(conn, case_id=case.id, statuses=["cancelled"])
    assert cancelled["outcome"] == {"reason": "case is now submitted"}
    driver.run_until(paris("2023-07-20T10:00"))
    assert sink.by_notification()["completion_reminder"] == 0
