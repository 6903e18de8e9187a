"""Every decision reaches its territory exactly once (issue 11, item 7).

FAQ 1.3 (lines 91-93): the national selection takes place "fin octobre", the new map is
announced "en novembre 2023" and "une notification sera adressée [...] pour informer les
territoires des suites données à leur candidature". A decision taken before the
announcement is told at the announcement (``decision_announcement``, 14 November 2023
10:00 Paris, a campaign parameter); one taken after it is told when it is taken. The rule
is declared in ``workflows/candidacy.yaml`` (``held_until: decision_announcement``) and
applied by the notification hook with the engine's clock. Walked with a simulated clock,
real timers and a real SMTP server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from conftest import COMMITTEE, candidacy, paris
from french import plain
from sched_support import Driver, Sink, open_with, settings_for, smtp_sink
from ti_workflow.clock import SimulatedClock
from ti_workflow.definitions.campaigns import parse_campaign
from ti_workflow.definitions.loader import load_definition, parse_yaml_text
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.errors import InvalidDefinition
from ti_workflow.mail.outbox import list_messages
from ti_workflow.scheduling.install import campaign_timer_errors
from ti_workflow.settings import Settings
from ti_workflow.storage.database import read

ANNOUNCEMENT = paris("2023-11-14T10:00")
DECISIONS = ("labelled", "not_selected")


@pytest.fixture
def sink() -> Iterator[Sink]:
    with smtp_sink() as s:
        yield s


@pytest.fixture
def world(sqlite_url: str, sink: Sink) -> Iterator[tuple[Engine, Driver]]:
    clock = SimulatedClock(paris("2023-07-01T09:00:00"))
    settings = settings_for(sqlite_url, sink.port)
    engine = open_with(settings, clock)
    yield engine, Driver(engine, clock, settings, [])
    engine.db.dispose()


PERIMETERS = [  # pairs of CC of Auvergne-Rhône-Alpes (84), no groupement in two territories
    ["200000172", "200033116"],
    ["200016905", "200018166"],
    ["200023299", "200023372"],
    ["200029999", "200030658"],
]


def _filed(engine: Engine, names: list[str]) -> dict[str, int]:
    """Candidacies of Auvergne-Rhône-Alpes filed in July 2023."""
    ids = {}
    for name, members in zip(names, PERIMETERS, strict=False):
        who = Actor("candidate", email=f"{name.lower()}@example.org")
        data = candidacy(territory_name=f"Territoire {name}", contact_email=who.email)
        data["perimeter"]["members"] = members
        ids[name] = engine.create_case("candidacy", "ti-2023-2027", data, who).id
        engine.fire(ids[name], "submit", who)
    return ids


def _decision_mails(engine: Engine) -> dict[int, list[tuple[str, datetime]]]:
    with read(engine.db) as conn:
        rows = list_messages(conn, limit=10_000)
    found: dict[int, list[tuple[str, datetime]]] = {}
    for row in rows:
        if row["notification"] in DECISIONS:
            at = datetime.fromisoformat(str(row["created_at"]))
            found.setdefault(int(str(row["case_id"])), []).append((str(row["notification"]), at))
    return found


LABEL_REASON = "Projet structurant pour la filière"


def _favourable(engine: Engine, case_id: int) -> None:
    for body in ("regional_council", "state_services"):
        payload = {"opinion": "favourable", "reasons": "Cohérent"}
        engine.fire(case_id, "give_opinion", Actor(body, region="84"), payload)


def test_decisions_before_during_and_after_the_announcement_are_each_told_once(
    world: tuple[Engine, Driver], sink: Sink
) -> None:
    engine, driver = world
    ids = _filed(engine, ["Avant", "Refus", "Attente", "Apres"])
    avant, refus, attente, apres = ids.values()
    seen_before_announcement: list[Counter[str]] = []
    actions = [
        (paris("2023-10-02T10:00"), lambda: _favourable(engine, avant)),
        # Refus, Attente, Apres: no opinion; the regional review closes on its due date.
        (paris("2023-10-31T15:00"), lambda: engine.fire(avant, "label", COMMITTEE)),
        (
            paris("2023-10-31T15:05"),
            lambda: engine.fire(refus, "reject", COMMITTEE, {"reason": "Plan trop général"}),
        ),
        (
            paris("2023-11-14T09:59"),
            lambda: seen_before_announcement.append(sink.by_notification()),
        ),
        (
            paris("2023-11-16T14:00"),
            lambda: engine.fire(apres, "reject", COMMITTEE, {"reason": "Périmètre incohérent"}),
        ),
        (
            paris("2023-11-20T11:00"),
            # FAQ 1.3 line 91: labelled without any regional opinion, so with a reason.
            lambda: engine.fire(attente, "label", COMMITTEE, {"reason": LABEL_REASON}),
        ),
    ]
    driver.run_until(paris("2023-12-31T23:00"), actions)

    # Confidential until the announcement (FAQ 1.3, line 93: "annoncée en novembre 2023").
    [before] = seen_before_announcement
    assert before["labelled"] == before["not_selected"] == 0
    mails = _decision_mails(engine)
    assert mails == {
        avant: [("labelled", ANNOUNCEMENT)],
        refus: [("not_selected", ANNOUNCEMENT)],
        apres: [("not_selected", paris("2023-11-16T14:00"))],  # at decision time
        attente: [("labelled", paris("2023-11-20T11:00"))],  # in review at the announcement
    }
    received = Counter(m.rcpt_tos[0] for n in DECISIONS for m in sink.of(n))
    assert received == Counter(
        {
            "avant@example.org": 1,
            "refus@example.org": 1,
            "apres@example.org": 1,
            "attente@example.org": 1,
        }
    )
    # Item 4 (FAQ 1.3, line 91: "sur la base d'un avis d'opportunité"): the decision mail
    # names the opinions that were missing when the regional review closed.
    [late_label] = [m for m in sink.of("labelled") if m.rcpt_tos == ["attente@example.org"]]
    body = " ".join(plain(late_label.part("plain")).split())
    assert "Avis d'opportunité régionaux non rendus à l'échéance (FAQ 1.3) :" in body
    assert "- conseil régional d'Auvergne-Rhône-Alpes" in body
    assert "- services de l'État (SGAR, DREETS) d'Auvergne-Rhône-Alpes" in body
    assert "le territoire « Territoire Attente » ( dossier" not in body
    assert "le territoire « Territoire Attente » (dossier n° " in body
    [on_time] = [m for m in sink.of("labelled") if m.rcpt_tos == ["avant@example.org"]]
    assert "non rendus" not in on_time.part("plain")  # both opinions were given
    [refused_late] = [m for m in sink.of("not_selected") if m.rcpt_tos == ["apres@example.org"]]
    assert "Périmètre incohérent" in refused_late.part("plain")
    assert "conseil régional d&#39;Auvergne-Rhône-Alpes" in refused_late.part("html")


def test_a_decision_between_the_due_instant_and_a_late_sweep_is_told_once(
    world: tuple[Engine, Driver], sink: Sink
) -> None:
    """The scheduler is down at 10:00 on 14 November: a case labelled at 10:30 is told at
    once; the announcement timer, run late at 11:00 (``late: fire``), tells the cases
    decided earlier and not that one again."""
    engine, driver = world
    ids = _filed(engine, ["Tot", "Juste"])
    tot, juste = ids.values()
    driver.run_until(paris("2023-11-01T00:00"))
    engine.fire(tot, "label", COMMITTEE, {"reason": LABEL_REASON})  # no opinion: FAQ 1.3
    driver.clock.set(paris("2023-11-14T10:30"))  # no sweep since 1 November
    engine.fire(juste, "label", COMMITTEE, {"reason": LABEL_REASON})
    assert _decision_mails(engine) == {juste: [("labelled", paris("2023-11-14T10:30"))]}
    driver.clock.set(paris("2023-11-14T11:00"))
    driver.tick()
    driver.tick()
    assert _decision_mails(engine) == {
        juste: [("labelled", paris("2023-11-14T10:30"))],
        tot: [("labelled", paris("2023-11-14T11:00"))],
    }
    assert sorted(m.rcpt_tos[0] for m in sink.of("labelled")) == [
        "juste@example.org",
        "tot@example.org",
    ]


def test_a_decision_at_the_announcement_instant_is_told_at_once(
    world: tuple[Engine, Driver], sink: Sink
) -> None:
    engine, driver = world
    [case_id] = _filed(engine, ["Pile"]).values()
    driver.run_until(paris("2023-11-14T09:00"))
    driver.clock.set(ANNOUNCEMENT)
    engine.fire(case_id, "reject", COMMITTEE, {"reason": "Hors champ"})
    driver.run_until(paris("2023-11-30T00:00"))
    assert _decision_mails(engine) == {case_id: [("not_selected", ANNOUNCEMENT)]}
    assert len(sink.of("not_selected")) == 1


def test_a_held_notification_its_timer_does_not_send_is_refused_at_load() -> None:
    """Without the timer's notify action, decisions before the announcement would never be
    told: that is a definition error, not a silence."""
    settings = Settings()
    definition = load_definition(settings.workflows_dir / "candidacy.yaml")
    text = (settings.workflows_dir / "campaigns" / "ti-2023-2027.yaml").read_text()
    text = text.replace("      - {notify: labelled, in: [labelled]}\n", "")
    campaign = parse_campaign(parse_yaml_text(text), "ti-2023-2027.yaml")
    errors = campaign_timer_errors({"candidacy": definition}, [campaign])
    assert errors == [
        "ti-2023-2027.yaml: timers[decision_announcement]: "
        f"{definition.source} holds notification 'labelled' until this timer, which does not "
        "send it (add {notify: labelled, in: [...]} to its actions)"
    ]


def test_held_until_needs_the_event_it_holds_back(tmp_path: Path) -> None:
    source = (Settings().workflows_dir / "candidacy.yaml").read_text()
    broken = source.replace(
        "{name: labelled, when: label, held_until:", "{name: labelled, held_until:"
    )
    assert broken != source
    path = tmp_path / "candidacy.yaml"
    path.write_text(broken)
    with pytest.raises(InvalidDefinition, match=r"held_until: needs when:"):
        load_definition(path)
