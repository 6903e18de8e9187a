"""Mail that follows the FAQ: the DREETS copied with the State services (FAQ 1.3, line 91),
the bodies named as French law names them, the reasons of a refused amendment (FAQ 2.3).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import COMMITTEE, SYSTEM, candidacy, paris
from french import fr, plain
from sched_support import Sink, dispatcher, open_with, settings_for, smtp_sink
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.engine import Engine
from ti_workflow.mail.errors import InvalidDirectory
from ti_workflow.mail.french import council, fr_percent, fr_regions, to_councils
from ti_workflow.mail.outbox import list_messages
from ti_workflow.scheduling.install import scheduling_of
from ti_workflow.scheduling.sweep import sweep
from ti_workflow.settings import Settings
from ti_workflow.storage.database import read
from ti_workflow.storage.repository import StoredCase

ARA_COUNCIL = "territoires-industrie@auvergnerhonealpes.example.fr"
ARA_STATE = "sgar-ti@auvergne-rhone-alpes.example.gouv.fr"
ARA_DREETS = "dreets-ara-ti@dreets.example.gouv.fr"
LAMASTRE, BRITTANY = "200016905", "200027027"  # CC du Pays de Lamastre (84), CC (53)


@pytest.fixture
def sink() -> Iterator[Sink]:
    with smtp_sink() as s:
        yield s


@pytest.fixture
def world(sqlite_url: str, sink: Sink) -> Iterator[tuple[Engine, Settings, SimulatedClock]]:
    clock = SimulatedClock(paris("2023-07-03T10:00"))
    settings = settings_for(sqlite_url, sink.port)
    engine = open_with(settings, clock)
    yield engine, settings, clock
    engine.db.dispose()


def test_the_dreets_is_copied_on_opinion_requests_and_reminders_to_the_state_services(
    world: tuple[Engine, Settings, SimulatedClock], sink: Sink
) -> None:
    """FAQ 1.3, line 91: the SGAR gives its opinion "en lien avec les [DREETS]"."""
    engine, settings, clock = world
    data = candidacy(contact_email="arve@example.org")
    data["perimeter"]["members"] = [LAMASTRE, BRITTANY]  # Auvergne-Rhône-Alpes and Bretagne
    case = engine.create_case(
        "candidacy", "ti-2023-2027", data, Actor("candidate", email="arve@example.org")
    )
    engine.fire(case.id, "submit", Actor("candidate", email="arve@example.org"))
    engine.fire(case.id, "start_regional_review", SYSTEM)
    dispatcher(engine, settings).send_due()
    [request] = sink.of("opinion_requested")
    assert request.message["Cc"] is not None
    cc = sorted(a.strip() for a in str(request.message["Cc"]).split(","))
    assert cc == sorted([ARA_DREETS, "dreets-53@dreets.example.gouv.fr"])
    to = str(request.message["To"])
    assert ARA_STATE in to and ARA_COUNCIL in to and "dreets" not in to
    assert sorted(request.rcpt_tos) == sorted(
        [
            ARA_COUNCIL,
            ARA_STATE,
            ARA_DREETS,
            "territoires-industrie-53@region.example.fr",
            "sgar-53@prefecture.example.gouv.fr",
            "dreets-53@dreets.example.gouv.fr",
        ]
    )
    text = " ".join(plain(request.part("plain")).split())
    assert "qui concerne les régions Bretagne et Auvergne-Rhône-Alpes" in text
    assert "aux conseils régionaux de Bretagne et d'Auvergne-Rhône-Alpes" in text
    assert "SGAR en lien avec la DREETS (FAQ 1.3)" in text
    with read(engine.db) as conn:
        [row] = list_messages(conn, case_id=case.id, reader=COMMITTEE)[-1:]
    assert f"dreets:84 <{ARA_DREETS}> (cc)" in row["to"]

    # Bretagne's State services answer; Auvergne-Rhône-Alpes' council and Bretagne's council
    # are still silent at the reminder: no State services missing there, no DREETS copied.
    opinion = {"opinion": "favourable", "reasons": "Cohérent"}
    engine.fire(case.id, "give_opinion", Actor("state_services", region="84"), opinion)
    engine.fire(case.id, "give_opinion", Actor("state_services", region="53"), opinion)
    clock.set(paris("2023-10-08T09:00"))
    sweep(engine)
    dispatcher(engine, settings).send_due()
    [reminder] = sink.of("opinion_reminder")
    assert reminder.message["Cc"] is None
    assert sorted(reminder.rcpt_tos) == sorted(
        [ARA_COUNCIL, "territoires-industrie-53@region.example.fr"]
    )


def test_a_reminder_to_a_silent_sgar_copies_its_dreets(
    world: tuple[Engine, Settings, SimulatedClock], sink: Sink
) -> None:
    engine, settings, clock = world
    who = Actor("candidate", email="arve@example.org")
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(contact_email=who.email), who)
    engine.fire(case.id, "submit", who)
    engine.fire(case.id, "start_regional_review", SYSTEM)
    opinion = {"opinion": "favourable", "reasons": "Cohérent"}
    engine.fire(case.id, "give_opinion", Actor("regional_council", region="84"), opinion)
    clock.set(paris("2023-10-08T09:00"))
    sweep(engine)
    dispatcher(engine, settings).send_due()
    [reminder] = sink.of("opinion_reminder")
    assert str(reminder.message["To"]) == ARA_STATE
    assert str(reminder.message["Cc"]) == ARA_DREETS
    assert "- services de l'État (SGAR, DREETS) d'Auvergne-Rhône-Alpes" in plain(
        reminder.part("plain")
    )


def test_a_directory_without_a_dreets_for_a_region_stops_the_engine(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Every region a case can concern needs its DREETS address (or a default pattern)."""
    partial = tmp_path / "directory.yaml"
    partial.write_text(
        "national_committee: [c@example.org]\n"
        "regions:\n"
        "  default: {regional_council: 'cr-{region}@example.org',"
        " state_services: 'sgar-{region}@example.org'}\n"
        "  '84': {dreets: [dreets84@example.org]}\n"
    )
    with pytest.raises(InvalidDirectory) as exc:
        open_engine(
            Settings(db_url=sqlite_url, directory_file=partial),
            SimulatedClock(paris("2023-07-03T10:00")),
        )
    text = str(exc.value)
    assert "no dreets address for 01 (Guadeloupe)" in text and "84 (" not in text
    assert "no regions.default.dreets pattern" in text
    partial.write_text(partial.read_text().replace("dreets: [dreets84", "dreets: [not an address"))
    with pytest.raises(InvalidDirectory, match=r"regions\.84\.dreets\[0\]: not a valid e-mail"):
        open_engine(
            Settings(db_url=sqlite_url, directory_file=partial),
            SimulatedClock(paris("2023-07-03T10:00")),
        )


@pytest.mark.parametrize(
    "code, name, expected",
    [
        ("84", "Auvergne-Rhône-Alpes", "conseil régional d'Auvergne-Rhône-Alpes"),
        ("94", "Corse", "Collectivité de Corse"),
        ("02", "Martinique", "Collectivité territoriale de Martinique"),
        ("03", "Guyane", "Collectivité territoriale de Guyane"),
        ("06", "Mayotte", "Département de Mayotte"),
        ("04", "La Réunion", "conseil régional de La Réunion"),
    ],
)
def test_each_region_has_the_council_french_law_gives_it(
    code: str, name: str, expected: str
) -> None:
    assert council({"code": code, "name": name}) == expected


def test_to_councils_says_au_aux_and_a_la() -> None:
    ara = {"code": "84", "name": "Auvergne-Rhône-Alpes"}
    bzh = {"code": "53", "name": "Bretagne"}
    corse = {"code": "94", "name": "Corse"}
    mayotte = {"code": "06", "name": "Mayotte"}
    paca = {"code": "93", "name": "Provence-Alpes-Côte d'Azur"}
    assert to_councils([bzh]) == "au conseil régional de Bretagne"
    assert to_councils([ara, bzh]) == (
        "aux conseils régionaux d'Auvergne-Rhône-Alpes et de Bretagne"
    )
    assert to_councils([paca, corse]) == (
        "au conseil régional de Provence-Alpes-Côte d'Azur et à la Collectivité de Corse"
    )
    assert to_councils([mayotte]) == "au Département de Mayotte"
    assert fr_regions([ara]) == "la région Auvergne-Rhône-Alpes"
    assert fr_regions([ara, bzh, corse]) == "les régions Auvergne-Rhône-Alpes, Bretagne et Corse"
    assert fr_percent(0.34) == fr("34 %") and fr_percent(0.125) == fr("12,5 %")


def _amendment(facts: dict[str, Any]) -> StoredCase:
    now = datetime(2024, 3, 4, 10, tzinfo=UTC)
    return StoredCase(
        id=7,
        workflow="perimeter_amendment",
        definition_version="",
        campaign_id="ti-2023-2027",
        state="refused",
        title="Ardèche Drôme Nord : modification de périmètre",
        owner_email="ti@territoire.example.org",
        data={},
        facts=facts,
        regions=("84", "94"),
        version=4,
        last_seq=4,
        head_hash="",
        created_at=now,
        updated_at=now,
    )


def test_a_refused_amendment_says_why(sqlite_url: str) -> None:
    """FAQ 2.3 (line 140): favourable opinions of the council and the State services are
    needed; the territory is told which opinion was unfavourable and its reasons, or the
    reasons the Délégation gave for refusing."""
    engine = open_engine(Settings(db_url=sqlite_url), SimulatedClock(paris("2024-03-04T10:00")))
    composer = scheduling_of(engine).composer
    campaign = engine.catalog.campaign("ti-2023-2027")
    at = "2024-03-04T10:00:00+00:00"
    opinions = {
        "84": {
            "regional_council": {"opinion": "favourable", "reasons": "Oui", "at": at},
            "state_services": {
                "opinion": "unfavourable",
                "reasons": "L'EPCI ajouté n'a pas de logique industrielle commune",
                "at": at,
            },
        },
        "94": {"regional_council": {"opinion": "unfavourable", "reasons": "", "at": at}},
    }
    by_opinion = composer.renderer.render(
        "amendment_refused",
        composer.case_context(_amendment({"opinions": opinions}), campaign, None, None, {}),
    )
    text = " ".join(plain(by_opinion.text).split())
    assert (
        "Avis défavorables : - services de l'État (SGAR, DREETS) d'Auvergne-Rhône-Alpes : "
        "L'EPCI ajouté n'a pas de logique industrielle commune" in text
    )
    assert "- Collectivité de Corse : aucun motif indiqué" in text
    assert "conseil régional d'Auvergne-Rhône-Alpes" not in text  # favourable: not listed
    assert "Motifs du refus" not in text
    assert "L&#39;EPCI ajouté" in by_opinion.html

    context = composer.case_context(_amendment({}), campaign, None, None, {})
    context["reason"] = "Modification au-delà de la marge prévue par la FAQ 2.3"
    by_delegation = composer.renderer.render("amendment_refused", context)
    text = " ".join(plain(by_delegation.text).split())
    assert "Motifs du refus : Modification au-delà de la marge prévue par la FAQ 2.3" in text
    assert "Avis défavorable" not in text
    engine.db.dispose()


def test_the_escalation_names_the_missing_bodies_in_french(
    world: tuple[Engine, Settings, SimulatedClock], sink: Sink
) -> None:
    """FAQ 1.3, line 91: the committee selects on the regional opinions; it is told which
    were missing, by name, with no region or body code."""
    engine, settings, _clock = world
    who = Actor("candidate", email="arve@example.org")
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(contact_email=who.email), who)
    engine.fire(case.id, "submit", who)
    engine.fire(case.id, "start_regional_review", SYSTEM)
    opinion = {"opinion": "favourable", "reasons": "Cohérent"}
    engine.fire(case.id, "give_opinion", Actor("regional_council", region="84"), opinion)
    engine.fire(case.id, "close_regional_review", COMMITTEE)
    dispatcher(engine, settings).send_due()
    [escalation] = sink.of("escalation")
    text = plain(escalation.part("plain")).replace("\r\n", "\n")
    assert (
        "avis manquants :\n  - services de l'État (SGAR, DREETS) d'Auvergne-Rhône-Alpes\n" in text
    )
    assert "(84)" not in text and "state_services" not in text
    assert "conseil régional" not in text.split("avis manquants")[1].split("\n\n")[0]


def test_every_campaign_timer_has_a_french_label_its_offsets_share() -> None:
    """An escalation names a timer by its ``label_fr``, never by ``closing_reminder.J-7``."""
    from ti_workflow.definitions.campaigns import load_campaign

    campaign = load_campaign(Settings().campaigns_dir / "ti-2023-2027.yaml")
    labels = {t.name: t.label_fr for t in campaign.timers}
    assert all(labels.values()), labels
    assert (
        labels["closing_reminder.J-7"]
        == labels["closing_reminder.J-1"]
        == ("rappel de la clôture du dépôt aux brouillons")
    )
