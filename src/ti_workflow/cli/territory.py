"""``ti-workflow territory ...``: labelled territories and their effective-dated history.

Amendments themselves are ordinary cases (``case create --workflow perimeter_amendment``,
``case fire``); these commands read territories and import an existing list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from stdnum.fr import siren as siren_number

from ti_workflow.cli.common import AsOpt, DbOpt, JsonOpt, actor, command, console, emit, engine
from ti_workflow.clock import PARIS, paris
from ti_workflow.domain.actors import AUDITOR, EMAIL_RE, NATIONAL_COMMITTEE, Actor
from ti_workflow.domain.amendment_forms import AMENDMENT_WORKFLOWS
from ti_workflow.engine import Engine
from ti_workflow.errors import FieldError, Forbidden, InvalidData
from ti_workflow.storage.database import read
from ti_workflow.territories import importer, store, writes
from ti_workflow.territories.phase1 import phase1_overlap
from ti_workflow.territories.views import membership_view, snapshot_view

INSEE_RE = re.compile(r"^[0-9][0-9AB][0-9]{3}$")

app = typer.Typer(
    help="Labelled territories: perimeter, governance, history.", no_args_is_help=True
)

AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="The day to answer for: an ISO date (2024-03-01) or instant (read in "
        "Europe/Paris). Default: today.",
    ),
]


@contextmanager
def opened(db: str | None) -> Iterator[Engine]:
    """An engine for one command, its connections closed when the command ends."""
    eng = engine(db)
    try:
        store.check_tables(eng.db)
        yield eng
    finally:
        eng.db.dispose()


def parse_at(text: str | None, eng: Engine) -> date:
    if text is None:
        return paris(eng.clock.now()).date()
    try:
        if len(text.strip()) == 10:
            return date.fromisoformat(text.strip())
        instant = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidData(
            "option",
            [
                FieldError(
                    "--at",
                    f"{text!r} is not an ISO date or instant; e.g. 2024-03-01 or "
                    f"2024-03-01T12:00:00+01:00",
                )
            ],
        ) from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=PARIS)
    return paris(instant).date()


def amendments_of(eng: Engine, territory_id: str) -> list[dict[str, Any]]:
    """The amendment cases filed for a territory, in any state (newest first)."""
    found = []
    for workflow in AMENDMENT_WORKFLOWS:
        cases, _ = eng.list_cases(Actor(AUDITOR), workflow=workflow, text=territory_id, limit=1000)
        found += [
            {
                "case_id": c.id,
                "workflow": c.workflow,
                "state": c.state,
                "effective_on": c.data.get("effective_on"),
                "regions": list(c.regions),
            }
            for c in cases
            if c.data.get("territory_id") == territory_id
        ]
    return sorted(found, key=lambda a: -int(a["case_id"]))


@app.command("show")
@command
def show(
    territory_id: Annotated[str, typer.Argument(help="Territory id, e.g. ti-8401 or ti-c0012.")],
    at: AtOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A territory on one day: name, member groupements, communes, governance; its history."""
    with opened(db) as eng:
        day = parse_at(at, eng)
        with read(eng.db) as conn:
            territory = store.load_territory(conn, territory_id)
            view = snapshot_view(conn, store.snapshot(conn, territory, day), eng.catalog.reference)
            view["history"] = store.history(conn, territory_id)
            view["contact"] = store.contact(conn, territory)
        view["amendments"] = amendments_of(eng, territory_id)

        def human() -> None:
            state = "labellisé" if view["labelled"] else f"pas encore labellisé (le {day})"
            console.print(
                f"[bold]{view['id']}[/] {view['name'] or '-'}  ({view['campaign_id']}, {state}, "
                f"au {day.isoformat()})",
                highlight=False,
            )
            console.print(f"regions: {', '.join(view['regions']) or '-'}", highlight=False)
            table = Table("siren", "groupement", "nature", "regions", "since", "until")
            for m in view["members"]:
                table.add_row(
                    m["siren"], m["name"], m["nature"], ", ".join(m["regions"]), m["valid_from"],
                    m["valid_to"] or "-",
                )  # fmt: skip
            console.print(table)
            for c in view["communes"]:
                console.print(
                    f"commune {c['code_insee']} {c['name']}: {c['mode']}", highlight=False
                )
            for a in view["amendments"]:
                console.print(
                    f"amendment: case {a['case_id']} {a['workflow']} {a['state']} "
                    f"(effective {a['effective_on'] or 'on approval'})",
                    highlight=False,
                )

        for g in view["governance"]["members"]:
            console.print(
                f"governance: {g.get('name')} ({g.get('role')}, {g.get('organisation') or '-'})",
                highlight=False,
            )

        emit(view, as_json, human)


@app.command("phase1")
@command
def phase1(
    case_id: Annotated[int, typer.Argument(help="A candidacy's case number.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How a candidacy's perimeter overlaps the territories of phase 1 (2019-2022), FAQ 1.2:
    informative only."""
    with opened(db) as eng:
        case = eng.get(case_id, Actor(AUDITOR))
    if case.workflow != "candidacy":
        raise InvalidData("case", [FieldError("CASE_ID", f"case {case_id} is not a candidacy")])
    overlap = phase1_overlap((case.data.get("perimeter") or {}).get("members") or [])

    def human() -> None:
        if not overlap:
            console.print(f"Case {case_id}: no groupement was in a phase-1 territory.")
            return
        table = Table("phase-1 territory", "shared", "% of perimeter", "% of phase-1 territory")
        for o in overlap:
            table.add_row(
                f"{o['id']} {o['name']}",
                str(len(o["shared"])),
                f"{o['share_of_perimeter']:.0%}",
                f"{o['share_of_phase1_territory']:.0%}",
            )
        console.print(table)

    emit({"case": case_id, "phase1_overlap": overlap}, as_json, human)


@app.command("of")
@command
def of(
    siren: Annotated[
        str,
        typer.Argument(
            help="SIREN of an EPCI à fiscalité propre or an EPT, or the INSEE code of a "
            "commune (5 characters: where a groupement is split, communes are answered one "
            "by one)."
        ),
    ],
    at: AtOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The territory a groupement (or commune) belonged to on one day (none: exit 0, null)."""
    siren = siren.strip()
    if INSEE_RE.match(siren):
        commune_of(siren, at, db, as_json)
        return
    if not siren_number.is_valid(siren):
        raise InvalidData(
            "argument",
            [
                FieldError(
                    "SIREN",
                    f"{siren!r} is neither a valid SIREN (9 digits, checksum) nor an INSEE "
                    f"commune code (5 characters, e.g. 74081 or 2A004)",
                )
            ],
        )
    with opened(db) as eng:
        g = eng.catalog.reference.groupement(siren)
        if g is None:
            raise InvalidData(
                "argument",
                [
                    FieldError(
                        "SIREN",
                        f"{siren} is not an EPCI à fiscalité propre nor a Grand Paris EPT "
                        f"(2023 reference data)",
                    )
                ],
            )
        day = parse_at(at, eng)
        with read(eng.db) as conn:
            found = store.memberships(conn, [siren], on=day)
        value = {
            "siren": siren,
            "groupement": g.name,
            "at": day.isoformat(),
            "territory": membership_view(found[0]) if found else None,
        }

        def human() -> None:
            if found:
                m = found[0]
                console.print(
                    f"{siren} ({g.name}) -> {m.territory_id} {m.name} on {day} "
                    f"(member from {m.valid_from}" + (f" to {m.valid_to})" if m.valid_to else ")"),
                    highlight=False,
                )
            else:
                console.print(
                    f"{siren} ({g.name}) belonged to no territory on {day}", highlight=False
                )

        emit(value, as_json, human)


def commune_of(code: str, at: str | None, db: str | None, as_json: bool) -> None:
    with opened(db) as eng:
        day = parse_at(at, eng)
        with read(eng.db) as conn:
            info = store.communes_info(conn, [code]).get(code)
            if info is None:
                raise InvalidData(
                    "argument",
                    [FieldError("SIREN", f"no commune has the INSEE code {code} (2023 data)")],
                )
            holders = [
                {"territory_id": tid, "name": store.name_on(conn, tid, day)}
                for tid in store.commune_holders(conn, code, info["epci_siren"], day)
            ]
        value = {
            "commune": code,
            "name": info["name"],
            "groupement": info["epci_siren"],
            "at": day.isoformat(),
            "territory": holders[0] if holders else None,
        }

        def human() -> None:
            where = f"{holders[0]['territory_id']} {holders[0]['name']}" if holders else "none"
            console.print(f"{code} ({info['name']}) on {day}: {where}", highlight=False)

        emit(value, as_json, human)


@app.command("list")
@command
def list_territories(
    at: AtOpt = None,
    campaign: Annotated[str | None, typer.Option("--campaign")] = None,
    region: Annotated[str | None, typer.Option("--region", help="INSEE region code.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every territory with its name and members on one day."""
    with opened(db) as eng:
        day = parse_at(at, eng)
        ref = eng.catalog.reference
        with read(eng.db) as conn:
            rows = store.list_territories(conn, day, campaign)
        out: list[dict[str, Any]] = []
        for t, name, sirens in rows:
            regions = list(ref.regions_of(sirens))
            if region and region not in regions:
                continue
            out.append(
                {
                    "id": t.id,
                    "name": name,
                    "campaign_id": t.campaign_id,
                    "labelled_on": t.labelled_on.isoformat(),
                    "source": t.source,
                    "members": sirens,
                    "regions": regions,
                }
            )

        def human() -> None:
            table = Table("id", "name", "labelled", "members", "regions")
            for r in out:
                table.add_row(
                    r["id"], r["name"] or "-", r["labelled_on"], str(len(r["members"])),
                    ", ".join(r["regions"]),
                )  # fmt: skip
            console.print(table)
            console.print(f"{len(out)} territories on {day}", highlight=False)

        emit({"at": day.isoformat(), "count": len(out), "territories": out}, as_json, human)


@app.command("import")
@command
def import_list(
    file: Annotated[
        Path | None,
        typer.Argument(help="CSV list (default: the shipped November 2023 list, 183 territories)."),
    ] = None,
    campaign: Annotated[str, typer.Option("--campaign")] = "ti-2023-2027",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load an existing list of labelled territories; history starts at announcement_on."""
    with opened(db) as eng:
        camp = eng.catalog.campaign(campaign)
        importer.history_start(camp)
        name, text = importer.read_text(file)
        listed = importer.parse_list(name, text, eng.catalog.reference)
        with eng.db.begin() as conn:
            report = importer.import_territories(conn, camp, name, listed, eng.clock.now())

        def human() -> None:
            console.print(
                f"{report.territories} territories, {report.memberships} memberships in {name}: "
                f"{len(report.created)} created, {len(report.unchanged)} already present"
                + (f", {len(report.differing)} kept as amended since" if report.differing else "")
                + f" (history from {report.history_starts_on})",
                highlight=False,
            )

        emit(report.as_dict(), as_json, human)


contact_app = typer.Typer(
    help="Who files amendments for a territory (FAQ 2.3).", no_args_is_help=True
)
app.add_typer(contact_app, name="contact")


@contact_app.command("set")
@command
def set_contact(
    territory_id: Annotated[str, typer.Argument(help="Territory id, e.g. ti-2707.")],
    email: Annotated[str, typer.Argument(help="The e-mail of the account that will file.")],
    as_: AsOpt,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (kept with it).")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Attach a territory's contact, the account that files its amendments (the Délégation:
    --as national_committee). The previous contact is closed, never erased."""
    who = actor(as_)
    clean = email.strip().lower()
    if not EMAIL_RE.match(clean):
        raise InvalidData(
            "contact",
            [FieldError("EMAIL", f"expected an e-mail such as ti@example.org, got {email!r}")],
        )
    if who.role != NATIONAL_COMMITTEE:
        raise Forbidden(
            who.label,
            f"set the contact of {territory_id}",
            "only national_committee (the Délégation)",
        )
    with opened(db) as eng:
        now = eng.clock.now()
        with eng.db.begin() as conn:
            territory = store.load_territory(conn, territory_id.strip())
            writes.set_contact(conn, territory.id, clean, by=who.label, now=now, reason=reason)
        with read(eng.db) as conn:
            current = store.contact(conn, territory)
        out = {"territory_id": territory.id, "contact": current}
        emit(
            out,
            as_json,
            lambda: console.print(
                f"{territory.id}: contact {clean} (set by {who.label} at {now.isoformat()})",
                highlight=False,
            ),
        )


def register(app_: typer.Typer, workflows_app: typer.Typer, case_app: typer.Typer) -> None:
    """``ti-workflow territory show|of|list|import``."""
    app_.add_typer(app, name="territory")
