"""Templates and the address directory are checked before anything is sent."""

from __future__ import annotations

import csv
import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, UndefinedError
from markupsafe import Markup

import ti_workflow
from conftest import ARA_1, AUDITOR, CANDIDATE, COMMITTEE, candidacy, paris
from french import fr, plain
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.definitions.timers import workflow_specs
from ti_workflow.domain.campaign import Campaign
from ti_workflow.mail.directory import parse_directory
from ti_workflow.mail.errors import InvalidDirectory, InvalidTemplate
from ti_workflow.mail.french import REGION_ARTICLES, de_region, fr_list
from ti_workflow.mail.outbox import list_messages, outbox
from ti_workflow.mail.render import Renderer
from ti_workflow.scheduling.install import _causes, _sample, scheduling_of
from ti_workflow.settings import Settings
from ti_workflow.storage.database import read

CLOCK = SimulatedClock(paris("2023-07-03T10:00"))


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    target = tmp_path / "notifications"
    shutil.copytree(Settings().notifications_dir, target)
    return target


def test_every_declared_notification_has_three_parts_that_render(sqlite_url: str) -> None:
    engine = open_engine(Settings(db_url=sqlite_url), CLOCK)  # raises if any is wrong
    declared = {
        spec.name
        for version in engine.catalog.current.values()
        for spec in workflow_specs(engine.catalog.definition(version))[1]
    }
    engine.db.dispose()
    folder = Settings().notifications_dir
    for part in ("subject.txt", "txt", "html"):
        names = {p.name.removesuffix(f".{part}") for p in folder.glob(f"*.{part}")}
        names = {n for n in names if not n.startswith("_")}  # partials: _layout, _signature
        assert {n for n in names if "." not in n} == declared, part
    assert len(declared) == 27  # 16 candidacy, 9 shared by the amendments, 2 project manager


def test_a_template_using_a_variable_its_notification_does_not_give_fails_at_load(
    sqlite_url: str, templates: Path
) -> None:
    path = templates / "labelled.txt"
    path.write_text(path.read_text() + "\nVotre note : {{ score }}\n")
    (templates / "window_closed.html").unlink()
    with pytest.raises(InvalidTemplate) as exc:
        open_engine(Settings(db_url=sqlite_url, notifications_dir=templates), CLOCK)
    text = str(exc.value)
    assert f"{path}: uses score, which notification 'labelled' does not provide" in text
    assert f"{templates / 'window_closed.html'}: missing" in text


def test_a_typo_in_an_attribute_fails_at_load_not_at_send(sqlite_url: str, templates: Path) -> None:
    path = templates / "submission_acknowledged.subject.txt"
    path.write_text("Accusé de réception : {{ case.titel }}\n")
    with pytest.raises(InvalidTemplate, match="has no attribute 'titel'"):
        open_engine(Settings(db_url=sqlite_url, notifications_dir=templates), CLOCK)


@pytest.mark.parametrize(
    ("notification", "line", "cause"),
    [  # what a timer-sent mail has no event for, and an event-sent one no timer for
        ("submission_acknowledged.subject.txt", "Reçu avant {{ timer.due_at }}", "an event"),
        ("closing_reminder.txt", "Dernier dépôt : {{ event.at }}", "a timer"),
        ("labelled.txt", "{{ event.actor }}", "a timer"),  # sent at the announcement
    ],
)
def test_a_variable_that_is_none_for_what_sends_it_fails_at_load(
    sqlite_url: str, templates: Path, notification: str, line: str, cause: str
) -> None:
    path = templates / notification
    path.write_text(path.read_text() + f"\n{line}\n")
    with pytest.raises(InvalidTemplate) as exc:
        open_engine(Settings(db_url=sqlite_url, notifications_dir=templates), CLOCK)
    assert f"{path}: does not render when sent by {cause}" in str(exc.value)
    assert "'None' has no attribute" in str(exc.value)


def test_a_render_failure_at_send_time_is_a_template_error_not_a_crash(templates: Path) -> None:
    renderer = Renderer(templates)
    with pytest.raises(InvalidTemplate, match=r"labelled\.\*: does not render: 'case' is undef"):
        renderer.render("labelled", {})


def test_html_is_escaped_text_is_not(sqlite_url: str) -> None:
    engine = open_engine(Settings(db_url=sqlite_url), CLOCK)
    case = engine.create_case(
        "candidacy", "ti-2023-2027", candidacy(territory_name="<b>Arve</b> & Co"), CANDIDATE
    )
    engine.fire(case.id, "submit", CANDIDATE)

    with read(engine.db) as conn:
        row = conn.execute(outbox.select()).one()
        [listed] = list_messages(conn)
    engine.db.dispose()
    assert "&lt;b&gt;Arve&lt;/b&gt; &amp; Co" in row.body_html and "<b>Arve" not in row.body_html
    assert fr("« <b>Arve</b> & Co »") in row.body_text
    assert listed["subject"] == fr("Accusé de réception de votre candidature « <b>Arve</b> & Co »")


def _committee_hurries(sqlite_url: str, notification: str, *triggers: str) -> Any:
    """A filed candidacy the national committee moves on by hand in July 2023 (before the
    closing and the regional due date); the one message of ``notification`` it caused."""
    engine = open_engine(Settings(db_url=sqlite_url), CLOCK)
    case = engine.create_case("candidacy", "ti-2023-2027", candidacy(), CANDIDATE)
    engine.fire(case.id, "submit", CANDIDATE)
    for trigger in triggers:
        engine.fire(case.id, trigger, COMMITTEE)
    with read(engine.db) as conn:
        row = conn.execute(outbox.select().where(outbox.c.notification == notification)).one()
    engine.db.dispose()
    return row


def test_a_review_opened_before_the_closing_does_not_say_filing_is_closed(
    sqlite_url: str,
) -> None:
    """FAQ 1.3: the national committee may send a filed candidacy to regional review
    before 22 September; the candidate is not told that filing is closed."""
    row = _committee_hurries(sqlite_url, "window_closed", "start_regional_review")
    assert row.subject == fr(
        "Votre candidature « Vallée de l'Arve » est transmise pour avis d'opportunité"
    )
    assert "Sans attendre la clôture du dépôt (22 septembre 2023)" in row.body_text
    assert "clos" not in row.body_text.split("(22 septembre 2023)")[1]
    assert "Sans attendre la clôture du dépôt (22 septembre 2023)" in row.body_html


@pytest.mark.parametrize(
    "address, problem",
    [
        ("x@example.org\r\nBcc: all@example.org", "line break or NUL"),
        ("x@example.org\nBcc: all@example.org", "line break or NUL"),
        ("not-an-address", "not a valid e-mail address"),
        ("<x@example.org>", "not a valid e-mail address"),
    ],
)
def test_directory_refuses_addresses_that_could_inject_headers(address: str, problem: str) -> None:
    with pytest.raises(InvalidDirectory) as exc:
        parse_directory(
            {
                "national_committee": ["ok@example.org"],
                "regions": {"84": {"state_services": [address]}},
            },
            "directory.yaml",
        )
    assert f"directory.yaml: regions.84.state_services[0]: {problem}" in str(exc.value)


@pytest.mark.parametrize(
    "pattern",
    [
        "sgar-{regoin}@p.example.fr",
        "sgar-{region@p.example.fr",
        # issue 12 item 3: no attribute or index access through str.format
        "sgar-{region[0]}@p.example.fr",
        "sgar-{region.__class__}@p.example.fr",
        "sgar-{region!r}@p.example.fr",
        "sgar-{region:>3}@p.example.fr",
        "sgar-{}@p.example.fr",
    ],
)
def test_a_typo_in_a_default_pattern_is_a_directory_error(pattern: str) -> None:
    with pytest.raises(InvalidDirectory) as exc:
        parse_directory(
            {
                "national_committee": ["ok@example.org"],
                "regions": {"default": {"state_services": pattern}},
            },
            "directory.yaml",
        )
    assert (
        f"directory.yaml: regions.default.state_services[0]: {pattern!r} is not a pattern: "
        f"write the region code as {{region}}, and nothing else in braces"
    ) in str(exc.value)


def test_a_default_pattern_puts_the_region_code_in_place_of_region() -> None:
    directory = parse_directory(
        {
            "national_committee": ["ok@example.org"],
            "regions": {"default": {"state_services": ["sgar-{region}@p.example.fr", "f@x.fr"]}},
        },
        "directory.yaml",
    )
    assert directory.regional("84", "state_services") == ("sgar-84@p.example.fr", "f@x.fr")


def test_a_directory_that_leaves_a_region_without_a_body_stops_the_engine(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A case concerning region 27 would be sent to review with nobody of 27 asked."""
    partial = tmp_path / "directory.yaml"
    partial.write_text(
        "national_committee: [c@example.org]\n"
        "regions:\n"
        "  default: {regional_council: 'cr-{region}@example.org'}\n"
        "  '84': {state_services: [sgar84@example.org]}\n"
        "  '99': {state_services: [nobody@example.org]}\n"
    )
    with pytest.raises(InvalidDirectory) as exc:
        open_engine(Settings(db_url=sqlite_url, directory_file=partial), CLOCK)
    text = str(exc.value)
    assert f"{partial}: regions.99: not a region of the reference data" in text
    assert "no state_services address for 01 (Guadeloupe)" in text
    assert "27 (Bourgogne-Franche-Comté)" in text and "84 (" not in text.split("dreets")[0]
    assert "no regions.default.state_services pattern" in text


def test_a_bad_directory_file_stops_the_engine_with_its_path(
    sqlite_url: str, tmp_path: Path
) -> None:
    bad = tmp_path / "directory.yaml"
    bad.write_text("national_committee: []\nregions: {default: {mayor: [a@b.fr]}}\n")
    with pytest.raises(InvalidDirectory) as exc:
        open_engine(Settings(db_url=sqlite_url, directory_file=bad), CLOCK)
    assert f"{bad}: national_committee: at least one address is required" in str(exc.value)
    assert "regions.default.mayor: unknown body" in str(exc.value)


def test_a_missing_notifications_folder_is_a_clear_error(sqlite_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(InvalidTemplate, match="no such directory"):
        open_engine(
            Settings(
                db_url=sqlite_url,
                notifications_dir=missing,
                directory_file=Settings().directory_path,
            ),
            CLOCK,
        )


def test_an_edited_template_is_checked_again_in_the_same_process(
    sqlite_url: str, templates: Path
) -> None:
    settings = Settings(db_url=sqlite_url, notifications_dir=templates)
    open_engine(settings, CLOCK).db.dispose()
    broken = templates / "labelled.subject.txt"
    broken.write_text("{{ case.nom }}\n")
    with pytest.raises(InvalidTemplate, match="has no attribute 'nom'"):
        open_engine(settings, CLOCK)


def test_the_fast_environment_renders_every_notification_as_stock_jinja_does(
    sqlite_url: str,
) -> None:
    """A sweep renders with :class:`FastEnvironment` (cheaper renders): every message must
    read exactly as Jinja's own environment writes it, and undefined names still fail."""
    clock = SimulatedClock(paris("2023-07-03T10:00"))
    engine = open_engine(Settings(db_url=sqlite_url), clock)
    data = candidacy(territory_name="Vallée <d'Arve> & co")
    data["perimeter"]["members"] = [ARA_1, "200027027"]  # two regions
    case = engine.create_case("candidacy", "ti-2023-2027", data, CANDIDATE)
    submit = engine.fire(case.id, "submit", CANDIDATE).events[-1]
    composer = scheduling_of(engine).composer
    campaign = engine.catalog.campaign("ti-2023-2027")
    timer = {"name": "t", "label": "échéance", "due_at": clock.now(), "late_by": "1 h 05 min"}
    context = composer.case_context(
        engine.get(case.id, AUDITOR), campaign, submit, timer, {"count": 1, "cases": []}
    )
    stock = Renderer(Settings().notifications_dir, Environment)
    fast = Renderer(Settings().notifications_dir)
    specs = workflow_specs(engine.catalog.current_definition("candidacy"))[1]
    assert len(specs) == 16
    for spec in specs:
        given = {**context, **{v: f"<{v}>" for v in spec.variables}}
        assert fast.render(spec.name, given) == stock.render(spec.name, given), spec.name
    odd = {"d": {"items": 1, "a": 2, "none": None}}
    source = "{{ d.items }} {{ d.a }} {{ d['items'] }} {{ d.none }} {{ d.zz is defined }}"
    assert fast.env.from_string(source).render(odd) == stock.env.from_string(source).render(odd)
    for env in (fast.env, stock.env):
        with pytest.raises(UndefinedError, match="'dict object' has no attribute 'zz'"):
            env.from_string("{{ d.zz }}").render(odd)
    engine.db.dispose()


REGIONS_CSV = Path(ti_workflow.__file__).parent / "data" / "regions_2023.csv"
DE_REGION = {  # how a French official writes "of <region>"
    "01": "de Guadeloupe",
    "02": "de Martinique",
    "03": "de Guyane",
    "04": "de La Réunion",
    "06": "de Mayotte",
    "11": "d'Île-de-France",
    "24": "du Centre-Val de Loire",
    "27": "de Bourgogne-Franche-Comté",
    "28": "de Normandie",
    "32": "des Hauts-de-France",
    "44": "du Grand Est",
    "52": "des Pays de la Loire",
    "53": "de Bretagne",
    "75": "de Nouvelle-Aquitaine",
    "76": "d'Occitanie",
    "84": "d'Auvergne-Rhône-Alpes",
    "93": "de Provence-Alpes-Côte d'Azur",
    "94": "de Corse",
}


def _regions() -> dict[str, str]:
    with REGIONS_CSV.open(encoding="utf-8") as f:
        return {r["code"]: r["nom"] for r in csv.DictReader(f) if r["zone"] != "com"}


def test_the_region_table_covers_exactly_the_18_insee_regions() -> None:
    assert set(REGION_ARTICLES) == set(_regions()) == set(DE_REGION)
    assert len(REGION_ARTICLES) == 18


@pytest.mark.parametrize("code", sorted(DE_REGION))
def test_de_region_gives_the_french_form_of_every_region(code: str) -> None:
    region = {"code": code, "name": _regions()[code]}
    assert de_region(region) == DE_REGION[code]


@pytest.mark.parametrize(
    ("name", "expected"),
    [  # a code outside the table, or a bare name: elided before a vowel only
        ("Île de Clipperton", "d'Île de Clipperton"),
        ("Occitanie", "d'Occitanie"),
        ("Saint-Martin", "de Saint-Martin"),
        ("Polynésie française", "de Polynésie française"),
    ],
)
def test_de_region_outside_the_table_elides_before_a_vowel(name: str, expected: str) -> None:
    assert de_region(name) == expected
    assert de_region({"code": "999", "name": name}) == expected


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], ""),
        (["Bretagne"], "Bretagne"),
        (
            ["Bourgogne-Franche-Comté", "Auvergne-Rhône-Alpes"],
            "Bourgogne-Franche-Comté et Auvergne-Rhône-Alpes",
        ),
        (["A", "B", "C"], "A, B et C"),
        (["A", "B", "C", "D"], "A, B, C et D"),
    ],
)
def test_fr_list_joins_with_et(items: list[str], expected: str) -> None:
    assert fr_list(items) == expected
    assert fr_list(iter(items)) == expected


def test_the_filters_in_a_template_escape_html_once() -> None:
    env = Renderer(Settings().notifications_dir).env
    regions = [
        {"code": "27", "name": "Bourgogne-Franche-Comté"},
        {"code": "93", "name": "Provence-Alpes-Côte d'Azur"},
        {"code": "84", "name": "Auvergne-Rhône-Alpes"},
    ]
    source = "{{ regions | map('de_region') | fr_list }}"
    assert env.autoescape("x.txt") is False and env.autoescape("x.html") is True
    assert fr_list(de_region(r) for r in regions) == (
        "de Bourgogne-Franche-Comté, de Provence-Alpes-Côte d'Azur et d'Auvergne-Rhône-Alpes"
    )
    html = env.from_string(source).render(regions=regions)  # a string template is escaped
    assert html == (
        "de Bourgogne-Franche-Comté, de Provence-Alpes-Côte d&#39;Azur "
        "et d&#39;Auvergne-Rhône-Alpes"
    )
    assert fr_list([Markup("<b>A</b>"), "B & C"]) == Markup("<b>A</b> et B &amp; C")


def test_every_template_renders_for_a_campaign_without_parameters_or_timers(
    sqlite_url: str,
) -> None:
    """A campaign file without the optional parameters (the opinion due date, the period of
    the label...) and without timers still gets natural French, with no date made up."""
    engine = open_engine(Settings(db_url=sqlite_url), CLOCK)
    composer = scheduling_of(engine).composer
    specs = [
        spec
        for version in engine.catalog.current.values()
        for spec in workflow_specs(engine.catalog.definition(version))[1]
    ]
    bare = Campaign(
        "ti-2028",
        "Territoires d'industrie 2028",
        "Europe/Paris",
        date(2028, 1, 3),
        date(2028, 3, 31),
    )
    sample = _sample(composer, bare)
    unique = {s.name: s for s in specs}
    composer.renderer.check(unique.values(), [sample], _causes(engine, unique.values()))
    labelled = composer.renderer.render("labelled", sample)
    assert fr("au titre de la campagne « Territoires d'industrie 2028 » (FAQ 1.3)") in labelled.text
    requested = composer.renderer.render("opinion_requested", sample)
    assert "avec la DREETS (FAQ 1.3). L'avis est attendu.\n" in plain(requested.text)
    opened = composer.renderer.render("window_opened", sample)
    assert "au plus tard le 31 mars 2028 à 23 h 59, heure de Paris" in opened.text
    assert "au programme Territoires d'industrie 2028 est ouvert" in plain(opened.text)
    assert "Territoires d'industrie — Territoires" not in opened.html
    with_date = {**sample, "params": {"regional_opinion_due_on": date(2028, 5, 12)}}
    reminder = composer.renderer.render("opinion_reminder", with_date)
    assert "attendu au plus tard le 12 mai 2028 (FAQ 1.3)" in reminder.text
    assert reminder.subject.startswith(fr("Rappel : avis d'opportunité attendu au plus tard le 12"))
    engine.db.dispose()


def test_no_template_hard_codes_a_year_or_says_avant_le() -> None:
    for path in sorted(Settings().notifications_dir.glob("*.*")):
        if path.suffix in (".txt", ".html"):
            source = path.read_text(encoding="utf-8")
            assert not re.search(r"\b20\d\d\b", source), path
            assert "avant le" not in source, path


def test_a_review_closed_by_hand_is_not_said_to_have_reached_its_due_date(
    sqlite_url: str,
) -> None:
    """FAQ 1.3: the committee may close the regional review before its due date."""
    row = _committee_hurries(
        sqlite_url, "escalation", "start_regional_review", "close_regional_review"
    )
    assert row.subject == fr("Avis régional clos avant l'échéance : « Vallée de l'Arve »")
    assert "a été clos avant son échéance" in row.body_text
    assert "est passée" not in row.body_text and "est passée" not in row.body_html
