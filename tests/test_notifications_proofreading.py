"""French proofreading of every notification, as every cause sends it.

Every notification declared by any workflow (templates added later are covered without
touching this file) is rendered for each cause that sends it (its ``when:`` event, a
timer; the same causes the load-time check uses), with several sample cases (one region;
several, among them Corse and Mayotte; opinions given, missing, unfavourable), for the
real campaign and for a bare one. Each subject, text and HTML part is then read like a
proofreader would: no code identifier, no English outside the one English line, French
typography (non-breaking space before ``:`` ``;`` ``?`` ``!`` and ``%``, inside « »,
after ``n°``), and no date the FAQ does not give told to a candidate as a fact.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from conftest import paris
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.definitions.timers import workflow_specs
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.events import Event
from ti_workflow.domain.timers import NotificationSpec
from ti_workflow.engine import Engine
from ti_workflow.mail.french import fr_date
from ti_workflow.mail.outbox import Composer
from ti_workflow.mail.render import Rendered
from ti_workflow.scheduling.install import _causes, scheduling_of
from ti_workflow.settings import Settings
from ti_workflow.storage.repository import StoredCase

NOW = datetime(2023, 11, 20, 9, 30, tzinfo=UTC)
SPACES = "\u00a0\u202f"
CODE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")  # snake_case: ecological_transition
BODY_CODE = re.compile(r"\b\d{2,3}/[a-z_]+")  # 84/regional_council
REGION_CODE = re.compile(r"\(\d{2,3}\)")  # Bretagne (53)
REPR = re.compile(r"\{'|\['|\bNone\b|\bTrue\b|\bFalse\b|datetime\(|<[a-z_]+>")
ENGLISH = re.compile(
    r"\b(the|your|you|is|was|has|been|please|reply|case|filing|opinion|amendment|"
    r"candidacy|territory|selected|labelled|approved|refused|submitted|with|from|this|"
    r"due|by)\b",
    re.IGNORECASE,
)
BAD_BEFORE = re.compile(rf"(?<=[^{SPACES}])[:;?!]|(?<=[^{SPACES}])%| [:;?!%]")
BAD_GUILLEMETS = re.compile(rf"«(?![{SPACES}])|(?<![{SPACES}])»")
BAD_NUMERO = re.compile(rf"\bn°(?![{SPACES} ]\d)|\bNo\.? ?\d|\bn[o°]\d")
ENGLISH_TEXT_LINE = re.compile(r"^\(EN\) .*$", re.MULTILINE)
ENGLISH_HTML = re.compile(r'<p lang="en">.*?</p>', re.DOTALL)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('proof') / 'ti.db'}"
    from ti_workflow.bootstrap import initialise

    settings = Settings(db_url=url)
    initialise(settings)
    found = open_engine(settings, SimulatedClock(NOW))
    yield found
    found.db.dispose()


def _specs(engine: Engine) -> dict[str, NotificationSpec]:
    specs: dict[str, NotificationSpec] = {}
    for version in engine.catalog.current.values():
        for spec in workflow_specs(engine.catalog.definition(version))[1]:
            specs.setdefault(spec.name, spec)
    return specs


def _case(regions: tuple[str, ...], facts: dict[str, Any], state: str) -> StoredCase:
    return StoredCase(
        id=12,
        workflow="candidacy",
        definition_version="",
        campaign_id="ti-2023-2027",
        state=state,
        title="Vallée de l'Arve et Faucigny",
        owner_email="contact@example.org",
        data={"contact_email": "contact@example.org"},
        facts=facts,
        regions=regions,
        version=3,
        last_seq=3,
        head_hash="",
        created_at=NOW,
        updated_at=NOW,
    )


def _opinion(opinion: str, reasons: str) -> dict[str, str]:
    return {"opinion": opinion, "reasons": reasons, "at": NOW.isoformat(), "actor": "x"}


CASES = {
    "one region, nothing given": _case(("84",), {}, "regional_review"),
    "several regions, one unfavourable opinion": _case(
        ("84", "94", "06"),
        {
            "opinions": {
                "84": {"regional_council": _opinion("favourable", "Cohérent")},
                "94": {"state_services": _opinion("unfavourable", "Périmètre incohérent")},
            },
            "decision": {"decision": "not_selected", "reason": "Plan trop vague", "at": "x"},
        },
        "not_selected",
    ),
    "every opinion given": _case(
        ("53",),
        {
            "opinions": {
                "53": {
                    "regional_council": _opinion("favourable", "Oui"),
                    "state_services": _opinion("favourable", ""),
                }
            }
        },
        "labelled",
    ),
}


def _campaigns(engine: Engine) -> list[Campaign]:
    real = engine.catalog.campaign("ti-2023-2027")
    bare = Campaign("ti-2028", "Campagne 2028", "Europe/Paris", date(2028, 1, 3), date(2028, 3, 31))
    return [real, bare]


def _renders(engine: Engine) -> Iterator[tuple[str, NotificationSpec, Campaign, Rendered]]:
    composer: Composer = scheduling_of(engine).composer
    specs = _specs(engine)
    causes = _causes(engine, specs.values())
    event = Event(
        12, 3, "submit", "draft", "submitted", "candidate", "candidate", NOW, {}, {}, "", ""
    )
    timer = {
        "name": "regional_review_deadline",
        "label": "échéance",
        "due_at": NOW,
        "late_by": "2 h",
    }
    for campaign in _campaigns(engine):
        for label, case in CASES.items():
            for spec in specs.values():
                for cause in sorted(causes.get(spec.name, frozenset({"event", "timer"}))):
                    given = (
                        replace(event, trigger=spec.when or "submit") if cause == "event" else None
                    )
                    extra: dict[str, Any] = {
                        "count": 1,
                        "cases": [{"id": 12, "title": case.title, "state": case.state}],
                    }
                    extra["cases"][0]["state_label"] = "Labellisée"
                    if "assembly_on" in spec.variables:
                        extra.update(assembly_on="2023-12-14", assembly_place="Paris")
                    for variable in spec.variables:
                        extra.setdefault(variable, "valeur")
                    context = composer.case_context(
                        case, campaign, given, None if cause == "event" else timer, extra
                    )
                    if cause == "event" and spec.when in ("return_for_completion", "reject"):
                        context["reason"] = "Lettre d'intention manquante"
                    where = f"{spec.name} ({cause}, {label}, campaign {campaign.id})"
                    yield where, spec, campaign, composer.renderer.render(spec.name, context)


def _text_of(page: str) -> str:
    """What a reader of an HTML part sees: no tags, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _french_parts(rendered: Rendered) -> dict[str, str]:
    """Subject, text and HTML text, each without its English line (checked apart)."""
    return {
        "subject": rendered.subject,
        "text": ENGLISH_TEXT_LINE.sub("", rendered.text),
        "html": _text_of(ENGLISH_HTML.sub("", rendered.html)),
    }


def _problems(text: str) -> list[str]:
    found = []
    for name, pattern in (
        ("code identifier", CODE),
        ("body code", BODY_CODE),
        ("region code", REGION_CODE),
        ("Python value", REPR),
        ("English word", ENGLISH),
        ("space before : ; ? ! %", BAD_BEFORE),
        ("space inside « »", BAD_GUILLEMETS),
        ("n° and its number", BAD_NUMERO),
    ):
        for match in pattern.finditer(text):
            start = max(match.start() - 30, 0)
            found.append(f"{name}: …{text[start : match.end() + 30]!r}…")
    return found


def test_every_notification_reads_as_proofread_french(engine: Engine) -> None:
    """Wording of issue 11: no code names (priorities, ``84/regional_council``, timer
    names, Python values), French typography, one English line."""
    errors = []
    count = 0
    for where, _spec, _campaign, rendered in _renders(engine):
        count += 1
        for part, text in _french_parts(rendered).items():
            errors += [f"{where} {part}: {p}" for p in _problems(text)]
        if "\n\n--\nDélégation aux Territoires d'industrie (ANCT, DGE)\n" not in rendered.text:
            errors.append(f"{where} text: the signature is not set apart by a blank line")
        english_lines = ENGLISH_TEXT_LINE.findall(rendered.text)
        if len(english_lines) != 1:
            errors.append(f"{where} text: {len(english_lines)} English lines, not 1")
        if len(ENGLISH_HTML.findall(rendered.html)) != 1:
            errors.append(f'{where} html: not exactly one <p lang="en">')
        english_html = [_text_of(p) for p in ENGLISH_HTML.findall(rendered.html)]
        for line in english_lines + english_html:
            for pattern in (CODE, BODY_CODE, REPR):
                if pattern.search(line):
                    errors.append(f"{where}: code in the English line: {line!r}")
    assert count >= 19 * len(CASES) * 2
    assert not errors, "\n".join(errors[:40])


def test_the_programme_is_named_once_and_mail_is_signed_by_the_delegation(
    engine: Engine,
) -> None:
    """Forwarding and returns are acts of the Délégation aux Territoires d'industrie."""
    for where, _spec, _campaign, rendered in _renders(engine):
        assert "Territoires d'industrie — Territoires d'industrie" not in rendered.html, where
        assert "Territoires d'industrie (Territoires d'industrie" not in rendered.text, where
        signature = "Délégation aux Territoires d'industrie (ANCT, DGE)"
        assert signature in rendered.text and signature in rendered.html, where
        assert "comité national" not in rendered.text, where


def test_no_date_the_faq_does_not_give_is_told_to_a_candidate(engine: Engine) -> None:
    """FAQ 1.3, lines 87-95: "fin octobre", "en novembre 2023"; the regional due date, the
    selection and announcement days, the general assembly's day and place are campaign
    parameters. Unless ``parameters.announced`` names one, a candidate never reads it."""
    campaign = engine.catalog.campaign("ti-2023-2027")
    assert campaign.parameters["announced"] == []
    secret = [
        fr_date(v)
        for k, v in campaign.parameters.items()
        if isinstance(v, date) and k not in campaign.parameters["announced"]
    ]
    assert "31 octobre 2023" in secret and "14 novembre 2023" in secret
    secret += ["14 décembre 2023", "à Paris"]  # the general assembly (timer context)
    told = []
    for where, spec, _campaign, rendered in _renders(engine):
        if "candidate" not in spec.to:
            continue
        for part in (rendered.subject, rendered.text, rendered.html):
            told += [f"{where}: {s}" for s in secret if s in part.replace("\u00a0", " ")]
    assert not told, told


def test_an_announced_date_is_told_as_a_date(engine: Engine) -> None:
    """The campaign file may declare the days announced: then the mail gives them."""
    composer = scheduling_of(engine).composer
    campaign = engine.catalog.campaign("ti-2023-2027")
    announced = replace(
        campaign,
        parameters={
            **campaign.parameters,
            "announced": ["national_selection_on", "announcement_on", "assembly_on"],
        },
    )
    case = _case(("84",), {}, "regional_review")
    closed = composer.renderer.render(
        "window_closed", composer.case_context(case, announced, None, {"name": "t"}, {})
    )
    text = " ".join(closed.text.split())
    assert "sélection nationale le 31 octobre 2023" in text
    assert "carte des Territoires d'industrie le 14 novembre 2023" in text
    context = composer.case_context(
        case,
        announced,
        None,
        {"name": "t"},
        {"assembly_on": "2023-12-14", "assembly_place": "Lyon"},
    )
    invitation = composer.renderer.render("general_assembly_invitation", context)
    assert "le 14 décembre 2023 à Lyon" in " ".join(invitation.text.split())
    unannounced = composer.renderer.render(
        "general_assembly_invitation",
        {**context, "params": campaign.parameters},
    )
    assert "prévue en décembre 2023" in unannounced.text and "Lyon" not in unannounced.text


def test_the_proofreader_catches_what_the_issue_lists() -> None:
    """The checks themselves: each fault of issue 11's wording section is caught."""
    faults = {
        "priorité ecological_transition": "code identifier",
        "avis de 84/regional_council": "body code",
        "Auvergne-Rhône-Alpes (84)": "region code",
        "motif : ['a', 'b']": "Python value",
        "Your candidacy was filed": "English word",
        "Rappel : le dépôt": "space before",
        "Rappel: le dépôt": "space before",
        "34% des membres": "space before",
        "« Arve »": "space inside",
        "dossier n°12": "n° and its number",
    }
    for text, problem in faults.items():
        assert any(problem in p for p in _problems(text)), text
    good = "Rappel\u00a0: «\u00a0Arve\u00a0», dossier n°\u00a012, 34\u00a0%\u202f; fin octobre 2023"
    assert _problems(good) == []


@pytest.mark.parametrize("day", ["2023-10-31T15:00", "2023-11-20T09:00"])
def test_a_subject_keeps_its_non_breaking_spaces(engine: Engine, day: str) -> None:
    composer = scheduling_of(engine).composer
    case = _case(("84",), {}, "draft")
    timer = {"name": "t", "label": "échéance", "due_at": paris(day), "late_by": None}
    campaign = engine.catalog.campaign("ti-2023-2027")
    rendered = composer.renderer.render(
        "closing_reminder", composer.case_context(case, campaign, None, timer, {})
    )
    assert rendered.subject == (
        "Rappel\u00a0: le dépôt des candidatures sera clos le 22 septembre 2023"
    )
