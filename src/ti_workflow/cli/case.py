"""``ti-workflow case ...``: create, update, fire, show, list, history, triggers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ti_workflow.cli.common import (
    AsOpt,
    DbOpt,
    JsonOpt,
    actor,
    command,
    console,
    emit,
    engine,
    read_json_file,
)
from ti_workflow.clock import paris
from ti_workflow.domain.events import Event
from ti_workflow.errors import FieldError, InvalidData
from ti_workflow.storage.repository import StoredCase
from ti_workflow.views import case_view, event_view, option_view

app = typer.Typer(help="Cases: create, edit, advance and read them.", no_args_is_help=True)

CaseId = Annotated[int, typer.Argument(help="The case number.", min=1)]
DataOpt = Annotated[Path, typer.Option("--data", help="JSON file (or - for standard input).")]
IfVersion = Annotated[
    int | None,
    typer.Option(
        "--if-version", help="Refuse (conflict) unless the case is still at this version."
    ),
]


def _print_case(case: StoredCase) -> None:
    table = Table(show_header=False, box=None)
    for key, value in (
        ("case", str(case.id)),
        ("territory", case.title),
        ("workflow", f"{case.workflow}@{case.definition_version[:12]}"),
        ("campaign", case.campaign_id),
        ("state", case.state),
        ("version", str(case.version)),
        ("regions", ", ".join(case.regions) or "-"),
        ("owner", case.owner_email or "-"),
        ("updated", paris(case.updated_at).strftime("%Y-%m-%d %H:%M:%S %Z")),
    ):
        table.add_row(f"[bold]{key}[/]", value)
    console.print(table)
    opinions = case.facts.get("opinions") or {}
    for region, bodies in sorted(opinions.items()):
        for body, o in sorted(bodies.items()):
            console.print(
                f"  opinion {region}/{body}: {o['opinion']} ({o['reasons']})", highlight=False
            )
    if case.facts.get("missing_opinions"):
        console.print(f"  missing opinions: {', '.join(case.facts['missing_opinions'])}")
    if case.facts.get("decision"):
        d = case.facts["decision"]
        console.print(
            f"  decision: {d['decision']}" + (f" ({d['reason']})" if d.get("reason") else "")
        )


def _print_events(events: list[Event]) -> None:
    table = Table("seq", "when (Paris)", "trigger", "from", "to", "by", "details")
    for e in events:
        details = {**e.payload, **e.annotations}
        details.pop("data", None)
        table.add_row(
            str(e.seq),
            paris(e.at).strftime("%Y-%m-%d %H:%M:%S"),
            e.trigger,
            e.source or "-",
            e.dest,
            e.actor,
            ", ".join(f"{k}={v}" for k, v in details.items()),
        )
    console.print(table)


@app.command("create")
@command
def create(
    data: DataOpt,
    as_: AsOpt,
    workflow: Annotated[str, typer.Option("--workflow")] = "candidacy",
    campaign: Annotated[str, typer.Option("--campaign")] = "ti-2023-2027",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a case (a candidacy draft) from a JSON file."""
    who = actor(as_)
    case = engine(db).create_case(workflow, campaign, read_json_file(data, "--data"), who)
    emit(case_view(case), as_json, lambda: _print_case(case))


@app.command("update")
@command
def update(
    case_id: CaseId,
    data: DataOpt,
    as_: AsOpt,
    if_version: IfVersion = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace the draft's candidacy file (only its candidate, only in draft)."""
    case = engine(db).update_data(case_id, read_json_file(data, "--data"), actor(as_), if_version)
    emit(case_view(case), as_json, lambda: _print_case(case))


@app.command("fire")
@command
def fire(
    case_id: CaseId,
    trigger: Annotated[str, typer.Argument(help="e.g. submit, give_opinion, label.")],
    as_: AsOpt,
    data: Annotated[Path | None, typer.Option("--data", help="Payload JSON file.")] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Shortcut for a payload reason.")
    ] = None,
    if_version: IfVersion = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fire a trigger on a case, with its payload."""
    payload: Any = read_json_file(data, "--data") if data else {}
    if reason is not None:
        if not isinstance(payload, dict):
            raise InvalidData("payload", [FieldError("--data", "expected a JSON object")])
        payload = {**payload, "reason": reason}
    result = engine(db).fire(case_id, trigger, actor(as_), payload, if_version)

    def human() -> None:
        for e in result.events:
            console.print(f"case {e.case_id}: {e.trigger}: {e.source} -> {e.dest}", highlight=False)
        for w in result.warnings:
            text = f"{w['message_fr']} / {w['message_en']}"
            console.print(f"[yellow]attention / warning[/]: {text}", highlight=False)
        _print_case(result.case)

    emit(
        {
            "case": case_view(result.case),
            "events": [event_view(e) for e in result.events],
            "warnings": result.warnings,
        },
        as_json,
        human,
    )


@app.command("show")
@command
def show(
    case_id: CaseId, as_: AsOpt = "auditor", db: DbOpt = None, as_json: JsonOpt = False
) -> None:
    """Show a case (as auditor unless --as says otherwise)."""
    case = engine(db).get(case_id, actor(as_))
    emit(case_view(case), as_json, lambda: _print_case(case))


@app.command("list")
@command
def list_cases(
    as_: AsOpt = "auditor",
    state: Annotated[str | None, typer.Option("--state")] = None,
    region: Annotated[str | None, typer.Option("--region", help="INSEE region code.")] = None,
    campaign: Annotated[str | None, typer.Option("--campaign")] = None,
    workflow: Annotated[str | None, typer.Option("--workflow")] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Text in the territory name.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the cases the actor may see, filtered."""
    cases, total = engine(db).list_cases(
        actor(as_),
        workflow=workflow,
        state=state,
        campaign=campaign,
        region=region,
        text=search,
        limit=limit,
        offset=offset,
    )

    def human() -> None:
        table = Table(
            "id",
            "territory",
            "state",
            "regions",
            "version",
            "updated (Paris)",
            caption=f"{len(cases)} of {total}",
        )
        for c in cases:
            table.add_row(
                str(c.id),
                c.title,
                c.state,
                ", ".join(c.regions),
                str(c.version),
                paris(c.updated_at).strftime("%Y-%m-%d %H:%M"),
            )
        console.print(table)

    emit(
        {
            "total": total,
            "limit": limit,
            "offset": offset,
            "cases": [case_view(c, with_data=False) for c in cases],
        },
        as_json,
        human,
    )


@app.command("history")
@command
def history(
    case_id: CaseId, as_: AsOpt = "auditor", db: DbOpt = None, as_json: JsonOpt = False
) -> None:
    """Every event of a case, in order, with its hash chain."""
    events = engine(db).history(case_id, actor(as_))
    emit([event_view(e) for e in events], as_json, lambda: _print_events(events))


@app.command("triggers")
@command
def triggers(case_id: CaseId, as_: AsOpt, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """What the actor could fire now on a case, and the rules that would refuse it."""
    options = engine(db).available_triggers(case_id, actor(as_))

    def human() -> None:
        for o in options:
            mark = "[green]yes[/]" if o.allowed else "[red]no[/]"
            console.print(
                f"{mark}  {o.trigger} -> {o.dest}" + (f"  ({o.refusal})" if o.refusal else "")
            )
            for r in o.failed_rules:
                console.print(f"       - {r}", highlight=False)
            for w in o.warnings:
                console.print(f"       [yellow]warning[/]: {w}", highlight=False)

    emit([option_view(o) for o in options], as_json, human)
