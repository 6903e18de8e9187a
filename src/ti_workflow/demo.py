"""``make demo``: the 2023 campaign on real territories, in simulated time.

Territories come from the shipped list of November 2023 (their real member
groupements); the governance, letters and action plans are illustrative.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import PARIS, SimulatedClock, paris
from ti_workflow.domain.actors import Actor, parse_actor
from ti_workflow.domain.reference import Referential
from ti_workflow.engine import Engine
from ti_workflow.errors import GuardRefused
from ti_workflow.scheduling.timers import list_timers
from ti_workflow.settings import Settings
from ti_workflow.storage.database import read
from ti_workflow.storage.reference_data import read_csv
from ti_workflow.territories.hooks import territory_id_for_case

SYSTEM = Actor("system")
COMMITTEE = Actor("national_committee")
AUDITOR = Actor("auditor")


@dataclass
class Territory:
    id_ti: str
    name: str
    members: list[str]
    interregional: bool
    natures: str


@dataclass
class Story:
    """What happens to one demo candidacy."""

    territory: Territory
    role: str
    case_id: int = 0
    email: str = ""
    notes: list[str] = field(default_factory=list)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


def territories() -> Iterator[Territory]:
    for row in read_csv("ti_2023_2027_liste20231114_territoires.csv"):
        yield Territory(
            id_ti=row["id_ti"],
            name=row["lib_ti"],
            members=row["sirens_groupements"].split(";"),
            interregional=row["interregional"] == "1",
            natures=row["natures"],
        )


def pick_stories() -> list[Story]:
    pool = list(territories())
    chosen: list[Story] = []

    def take(role: str, match: Any) -> None:
        used = {s.territory.id_ti for s in chosen}
        t = next(t for t in pool if t.id_ti not in used and match(t))
        chosen.append(Story(t, role))

    take("interregional", lambda t: t.interregional and len(t.members) >= 2)
    take("single_epci", lambda t: len(t.members) == 1 and "METRO" not in t.natures)
    take("metropole", lambda t: "METRO" in t.natures or "MET69" in t.natures)
    take("returned_then_labelled", lambda t: len(t.members) >= 3)
    take("not_selected", lambda t: len(t.members) == 2)
    take("withdrawn", lambda t: len(t.members) == 2)
    take("late", lambda t: len(t.members) == 2)
    take("opinion_missing", lambda t: len(t.members) >= 2)
    take("binome_per_intercommunality", lambda t: 2 <= len(t.members) <= 4)
    return chosen


def candidacy_file(story: Story, reference: Referential) -> dict[str, Any]:
    t = story.territory
    names = [g.name for s in t.members if (g := reference.groupement(s))]
    metropole = any(g.is_metropole for s in t.members if (g := reference.groupement(s)))
    governance: dict[str, Any] = {
        "members": [
            {
                "name": "Présidence de l'intercommunalité",
                "role": "elected",
                "organisation": names[0],
            },
            {
                "name": "Direction d'un site industriel",
                "role": "industrial",
                "organisation": "Industriel local",
            },
        ],
        "extended_governance_justification": None,
    }
    letters = [
        {"signatory": "Président(e)", "organisation": names[0], "date": "2023-07-10"},
        {
            "signatory": "Directeur de site",
            "organisation": "Industriel local",
            "date": "2023-07-12",
        },
    ]
    if story.role == "binome_per_intercommunality":
        # FAQ 4.1: at first, one binôme per intercommunality (each names the EPCI it represents)
        governance = {"mode": "per_intercommunality", "members": []}
        letters = []
        for i, siren in enumerate(t.members):
            elected = f"Présidence de {names[i]}"
            industrial = f"Direction industrielle, bassin {i + 1}"
            governance["members"] += [
                {"name": elected, "role": "elected", "organisation": names[i], "represents": siren},
                {
                    "name": industrial,
                    "role": "industrial",
                    "organisation": f"Industriel du bassin {i + 1}",
                    "represents": siren,
                },
            ]
            letters += [
                {"signatory": elected, "organisation": names[i], "date": "2023-07-10"},
                {"signatory": industrial, "organisation": "", "date": "2023-07-11"},
            ]
        letters.append(
            {"signatory": "Président", "organisation": "CCI de la région", "date": "2023-07-12"}
        )
    return {
        "territory_name": t.name,
        "contact_email": story.email,
        "perimeter": {
            "members": t.members,
            "single_member_justification": (
                "Bassin d'emploi industriel de taille critique à lui seul (FAQ 2.2)."
                if len(t.members) == 1
                else None
            ),
            "metropole_justification": (
                "Enjeux de transition industrielle et coopération avec les territoires voisins "
                "(FAQ 2.4)."
                if metropole
                else None
            ),
        },
        "governance": governance,
        "letters_of_intent": letters,
        "action_plan": [
            {
                "title": "Campus des compétences industrielles",
                "priority": "skills",
                "summary": "Former et recruter sur les métiers en tension.",
                "already_started": True,
            },
            {
                "title": "Requalification de friches industrielles",
                "priority": "land",
                "summary": "Remobiliser le foncier pour les implantations.",
                "already_started": False,
                "owner": "Établissement public foncier",
                "duration_months": 60,  # FAQ 3.1: beyond four years, phases are advised
                "phases": (
                    []
                    if story.role == "binome_per_intercommunality"
                    else ["Études et acquisitions", "Dépollution", "Commercialisation"]
                ),
            },
        ],
    }


def _opinions(engine: Engine, story: Story, skip_state_services: bool = False) -> None:
    case = engine.get(story.case_id, AUDITOR)
    for region in case.regions:
        engine.fire(
            story.case_id,
            "give_opinion",
            Actor("regional_council", region=region),
            {"opinion": "favourable", "reasons": "Cohérent avec le SRDEII."},
        )
        if skip_state_services:
            continue
        engine.fire(
            story.case_id,
            "give_opinion",
            Actor("state_services", region=region),
            {"opinion": "favourable", "reasons": "Avis favorable du SGAR et de la DREETS."},
        )


def run_campaign(engine: Engine, clock: SimulatedClock) -> list[Story]:
    stories = pick_stories()
    by_role = {s.role: s for s in stories}
    reference = engine.catalog.reference

    clock.set(at("2023-06-23T09:00:00"))  # the window opens (FAQ 1.2)
    for i, s in enumerate(stories):
        s.email = f"candidature-{s.territory.id_ti}@territoires.example.org"
        clock.set(at("2023-06-26T10:00:00").replace(day=26 + i % 4))
        s.case_id = engine.create_case(
            "candidacy",
            "ti-2023-2027",
            candidacy_file(s, reference),
            parse_actor(f"candidate:{s.email}"),
        ).id

    clock.set(at("2023-07-20T15:00:00"))
    w = by_role["withdrawn"]
    engine.fire(w.case_id, "withdraw", parse_actor(f"candidate:{w.email}"))

    for i, s in enumerate(x for x in stories if x.role not in ("withdrawn", "late")):
        clock.set(at("2023-09-04T11:00:00").replace(day=4 + i))
        fired = engine.fire(s.case_id, "submit", parse_actor(f"candidate:{s.email}"))
        s.notes += [f"warning at submission: {w['message_fr']}" for w in fired.warnings]

    r = by_role["returned_then_labelled"]
    clock.set(at("2023-09-15T10:00:00"))
    engine.fire(
        r.case_id,
        "return_for_completion",
        COMMITTEE,
        {"reason": "Merci de joindre la lettre d'intention de la chambre de commerce."},
    )
    clock.set(at("2023-09-20T16:30:00"))
    case = engine.get(r.case_id, AUDITOR)
    data = dict(case.data)
    data["letters_of_intent"] = [
        *data["letters_of_intent"],
        {"signatory": "Président", "organisation": "CCI territoriale", "date": "2023-09-19"},
    ]
    engine.update_data(r.case_id, data, parse_actor(f"candidate:{r.email}"))
    engine.fire(r.case_id, "submit", parse_actor(f"candidate:{r.email}"))

    late = by_role["late"]
    clock.set(at("2023-09-23T00:00:00"))  # one microsecond-wide margin is enough: closed
    try:
        engine.fire(late.case_id, "submit", parse_actor(f"candidate:{late.email}"))
    except GuardRefused as exc:
        late.notes.append(
            f"submission refused at {paris(clock.now()):%d/%m/%Y %H:%M:%S}: "
            + "; ".join(r.message_fr for r in exc.rules)
        )

    clock.set(at("2023-09-23T00:00:05"))  # the closing sweep (the scheduler's job)
    drafts, _ = engine.list_cases(SYSTEM, state="draft")
    for c in drafts:
        engine.fire(c.id, "lapse", SYSTEM)
    submitted, _ = engine.list_cases(SYSTEM, state="submitted")
    for c in submitted:
        engine.fire(c.id, "start_regional_review", SYSTEM)

    for i, s in enumerate(
        x for x in stories if x.role not in ("withdrawn", "late", "opinion_missing")
    ):
        clock.set(at("2023-10-02T14:00:00").replace(day=2 + i))
        _opinions(engine, s)
    m = by_role["opinion_missing"]
    clock.set(at("2023-10-06T10:00:00"))
    _opinions(engine, m, skip_state_services=True)
    clock.set(at("2023-10-14T00:00:00"))  # the regional due date has passed
    engine.fire(m.case_id, "close_regional_review", SYSTEM)

    clock.set(at("2023-10-31T15:00:00"))  # national selection, "fin octobre" (FAQ 1.3)
    for s in stories:
        if s.role == "not_selected":
            engine.fire(
                s.case_id,
                "reject",
                COMMITTEE,
                {"reason": "Plan d'action insuffisamment opérationnel à ce stade."},
            )
        elif s.role not in ("withdrawn", "late"):
            engine.fire(s.case_id, "label", COMMITTEE)
    return stories


def _free_groupements(engine: Engine, stories: list[Story], region: str, count: int) -> list[str]:
    """Groupements of ``region`` in no demo territory (no métropole: FAQ 2.4 aside)."""
    taken = {m for s in stories for m in s.territory.members}
    free = [
        g.siren
        for g in sorted(engine.catalog.reference.groupements.values(), key=lambda g: g.siren)
        if g.regions == (region,) and g.siren not in taken and not g.is_metropole
    ]
    return free[:count]


def _amend(engine: Engine, story: Story, data: dict[str, Any]) -> int:
    """The territory's contact files; the request goes for opinions; all are favourable."""
    filer = parse_actor(f"candidate:{story.email}")
    case_id = engine.create_case("perimeter_amendment", "ti-2023-2027", data, filer).id
    engine.fire(case_id, "submit", filer)
    engine.fire(case_id, "start_regional_review", COMMITTEE)
    clock = engine.clock
    if isinstance(clock, SimulatedClock):  # the opinions come a fortnight later
        clock.set(clock.now() + timedelta(days=14))
    for region in engine.get(case_id, AUDITOR).regions:
        for body in ("regional_council", "state_services"):
            engine.fire(
                case_id,
                "give_opinion",
                Actor(body, region=region),
                {"opinion": "favourable", "reasons": "Cohérent avec le bassin d'emploi."},
            )
    return case_id


def run_amendments(engine: Engine, clock: SimulatedClock, stories: list[Story]) -> list[Story]:
    """2024: two labelled territories ask to amend their perimeter (FAQ 2.3). Only their
    contact may file; the favourable opinions are necessary, not sufficient: the Délégation
    approves one and refuses the other as beyond "à la marge"."""
    by_role = {s.role: s for s in stories}
    out = []
    clock.set(at("2024-03-04T10:00:00"))
    # a labelled territory of three groupements or more with a free neighbour in its region:
    # one groupement added stays "à la marge" (under the campaign's share)
    grows, added = by_role["returned_then_labelled"], []
    for s in stories:
        case = engine.get(s.case_id, AUDITOR)
        if case.state == "labelled" and len(s.territory.members) >= 3 and s.role != "interregional":
            free = _free_groupements(engine, stories, case.regions[0], 1)
            if free:
                grows, added = s, free
                break
    tid = f"ti-c{grows.case_id:04d}"
    data = {
        "territory_id": tid,
        "contact_email": grows.email,
        "add": added,
        "new_name": f"{grows.territory.name} élargi",
        "effective_on": "2024-06-01",
        "justification": "Le bassin d'emploi industriel s'étend à l'intercommunalité voisine.",
    }
    approved = Story(grows.territory, "amendment_approved", email=grows.email)
    try:
        engine.create_case(
            "perimeter_amendment", "ti-2023-2027", data, parse_actor("candidate:x@example.org")
        )
    except GuardRefused as exc:
        approved.notes.append("filing by another account refused: " + exc.rules[0].message_fr)
    approved.case_id = _amend(engine, approved, data)
    clock.set(at("2024-04-02T11:00:00"))
    engine.fire(approved.case_id, "approve", COMMITTEE)
    out.append(approved)

    wide = by_role["interregional"]
    clock.set(at("2024-03-11T10:00:00"))
    region = engine.get(wide.case_id, AUDITOR).regions[0]
    data = {
        "territory_id": f"ti-c{wide.case_id:04d}",
        "contact_email": wide.email,
        "add": _free_groupements(engine, stories, region, 3),
        "effective_on": "2024-09-01",
        "justification": "Rapprochement avec trois intercommunalités voisines.",
    }
    refused = Story(wide.territory, "amendment_not_marginal", email=wide.email)
    refused.case_id = _amend(engine, refused, data)
    scope = engine.get(refused.case_id, AUDITOR).facts["scope"]
    refused.notes.append(
        f"{scope['share_changed']:.0%} of the members changed, above the campaign's "
        f"{scope['marginal_threshold']:.0%}: flagged for the Délégation"
    )
    clock.set(at("2024-04-09T11:00:00"))
    engine.fire(
        refused.case_id,
        "reject",
        COMMITTEE,
        {"not_marginal": True, "reason": "Extension trop large pour une modification à la marge."},
    )
    out.append(refused)
    return out


def _members(engine: Engine, data: dict[str, Any]) -> list[str]:
    sirens = (data.get("perimeter") or {}).get("members") or data.get("add") or []
    return [
        f"{g.name} ({g.nature})" for m in sirens if (g := engine.catalog.reference.groupement(m))
    ]


def run_post_label(engine: Engine, clock: SimulatedClock, stories: list[Story]) -> list[str]:
    """After the label (FAQ 3.2): one fiche-action per labelled territory, 2024-2027."""
    lines = []
    for s in stories:
        case = engine.get(s.case_id, AUDITOR)
        if case.state != "labelled":
            continue
        tid = territory_id_for_case(case.id)
        pm, gov = (
            Actor("project_manager", territory=tid),
            Actor("territory_governance", territory=tid),
        )
        action = case.data["action_plan"][0]
        clock.set(at("2024-02-05T10:00:00"))
        sheet = engine.create_case(
            "action_sheet",
            case.campaign_id,
            {
                "territory_id": tid,
                "origin": "plan",
                "plan_action_title": action["title"],
                "title": action["title"],
                "priority": action.get("priority") or "innovation",
                "description": action["summary"],
                "owner_name": "Communauté de communes porteuse",
                "owner_kind": "intercommunality",
                "estimated_cost": 400000,
                "financing": [
                    {"source": "Région", "amount": 160000, "status": "secured"},
                    {"source": "État (fonds vert)", "amount": 120000, "status": "requested"},
                    {"source": "Industriels", "amount": 120000, "status": "sought"},
                ],
                "starts_on": "2024-04-01",
                "ends_on": "2027-03-31",
                "indicators": [{"name": "Personnes formées", "unit": "personnes", "target": 300}],
                "maturity": "ready",
            },
            pm,
        )
        engine.fire(sheet.id, "submit", pm)
        clock.set(at("2024-03-12T14:00:00"))
        engine.fire(sheet.id, "validate_locally", gov)
        clock.set(at("2024-04-02T11:00:00"))
        engine.fire(
            sheet.id, "validate_regionally", Actor("state_services", region=case.regions[0])
        )
        engine.fire(sheet.id, "start", pm)
        for year, value in ((2024, 80), (2025, 190), (2026, 280)):
            clock.set(at(f"{year}-12-10T10:00:00"))
            engine.fire(
                sheet.id,
                "report_progress",
                pm,
                {"indicator": "Personnes formées", "value": value, "spent_eur": 120000},
            )
        clock.set(at("2027-03-31T17:00:00"))
        done = engine.fire(sheet.id, "complete", pm).case
        lines.append(
            f"#{done.id} {tid} « {done.title} »: {done.state}, "
            f"{done.facts['spent_eur']} EUR spent, indicator "
            f"{done.facts['indicator_values']['Personnes formées']}/300"
        )
    return lines


def run_demo(settings: Settings, *, as_json: bool = False) -> None:
    clock = SimulatedClock(at("2023-06-01T09:00:00"))
    initialise(settings, clock)
    engine = open_engine(settings, clock)
    stories = run_campaign(engine, clock)
    stories += run_amendments(engine, clock, stories)
    post_label = run_post_label(engine, clock, stories)
    report = []
    for s in stories:
        s.notes += _follow_up_notes(engine, s.case_id)
        case = engine.get(s.case_id, AUDITOR)
        events = engine.history(s.case_id, AUDITOR)
        report.append(
            {
                "case": case.id,
                "territory": case.title,
                "id_ti": s.territory.id_ti,
                "story": s.role,
                "governance_mode": case.facts.get("governance_mode"),
                "members": _members(engine, case.data),
                "regions": [engine.catalog.reference.region_name(r) for r in case.regions],
                "state": case.state,
                "notes": s.notes,
                "path": [
                    {
                        "at": paris(e.at).isoformat(),
                        "trigger": e.trigger,
                        "from": e.source,
                        "to": e.dest,
                        "by": e.actor,
                        **(
                            {"missing_opinions": e.annotations["missing_opinions"]}
                            if "missing_opinions" in e.annotations
                            else {}
                        ),
                    }
                    for e in events
                ],
            }
        )
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        return
    _print_report(report, settings)
    console = Console(width=None if sys.stdout.isatty() else 132)
    console.rule("After the label: fiches-actions 2024-2027 (FAQ 3.2)")
    for line in post_label:
        console.print(line, highlight=False)
    console.print("Try: ti-workflow workflows form action_sheet")


def _follow_up_notes(engine: Engine, case_id: int) -> list[str]:
    """The binôme follow-up timers (FAQ 4.1) a labelled case got (run by the scheduler)."""
    with read(engine.db) as conn:
        timers = list_timers(conn, case_id=case_id)
    due = {
        t["name"]: datetime.fromisoformat(t["due_at"]).astimezone(PARIS).strftime("%d/%m/%Y")
        for t in timers
        if t["name"] in ("binome_reminder", "binome_escalation")
    }
    if not due or engine.get(case_id, AUDITOR).facts.get("governance_mode") == "territory":
        return []
    return [
        f"binôme follow-up (FAQ 4.1): reminder on {due.get('binome_reminder')}, the "
        f"Délégation told on {due.get('binome_escalation')}, unless an approved governance "
        "amendment gives the territory one binôme first"
    ]


def _print_report(report: list[dict[str, Any]], settings: Settings) -> None:
    console = Console(width=None if sys.stdout.isatty() else 132)
    console.rule("ti-workflow demo: campaign ti-2023-2027 in simulated time")
    summary = Table(
        "case", "territory", "story", "groupements", "regions", "governance", "final state"
    )
    for r in report:
        summary.add_row(
            str(r["case"]),
            r["territory"],
            r["story"],
            str(len(r["members"])),
            ", ".join(r["regions"]),
            r["governance_mode"] or "-",
            r["state"],
        )
    console.print(summary)
    for r in report:
        console.print(
            f"\n[bold]#{r['case']} {r['territory']}[/] ({r['story']}) -> [bold]{r['state']}[/]"
        )
        console.print("  " + "; ".join(r["members"]), highlight=False)
        path = Table("when (Paris)", "trigger", "from -> to", "by", box=None, pad_edge=False)
        for step in r["path"]:
            when = datetime.fromisoformat(step["at"]).strftime("%d/%m/%Y %H:%M")
            by = "candidate" if step["by"].startswith("candidate:") else step["by"]
            extra = (
                f" (missing: {', '.join(step['missing_opinions'])})"
                if step.get("missing_opinions")
                else ""
            )
            path.add_row(
                when, step["trigger"] + extra, f"{step['from'] or '-'} -> {step['to']}", by
            )
        console.print(path)
        for note in r["notes"]:
            console.print(f"  [yellow]{note}[/]", highlight=False)
    labelled = sum(1 for r in report if r["state"] == "labelled")
    candidacies = sum(1 for r in report if not r["story"].startswith("amendment"))
    amended = sum(1 for r in report if r["state"] == "approved")
    console.print(
        f"\n{labelled} labelled of {candidacies} candidacies; {amended} amendment approved "
        f"by the Délégation. Database: {settings.db_url}"
    )
    console.print("Try: ti-workflow --db " + settings.db_url + " case history 1")
