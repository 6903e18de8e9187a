"""``ti-workflow``: the root command and the small commands (init, validate, workflows)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ti_workflow.bootstrap import initialise
from ti_workflow.cli import api as api_cli
from ti_workflow.cli import audit as audit_cli
from ti_workflow.cli import case as case_cli
from ti_workflow.cli import ds as ds_cli
from ti_workflow.cli import files as files_cli
from ti_workflow.cli import scheduler as scheduler_cli
from ti_workflow.cli import territory as territory_cli
from ti_workflow.cli.common import (
    ROOT,
    AllowCancelOpt,
    DbOpt,
    JsonOpt,
    command,
    console,
    emit,
    settings,
)
from ti_workflow.definitions.campaigns import load_campaigns
from ti_workflow.definitions.loader import load_definition, load_definitions
from ti_workflow.domain.declared import form_description
from ti_workflow.domain.definition import Definition
from ti_workflow.domain.machine import CompiledMachine
from ti_workflow.errors import InvalidDefinition, NotFound
from ti_workflow.scheduling.install import campaign_timer_errors

app = typer.Typer(
    name="ti-workflow",
    help="Workflow engine for the Territoires d'industrie labelling programme.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
workflows_app = typer.Typer(help="Workflow definitions.", no_args_is_help=True)
app.add_typer(case_cli.app, name="case")
app.add_typer(workflows_app, name="workflows")
for _area in (scheduler_cli, audit_cli, api_cli, territory_cli, ds_cli, files_cli):
    _area.register(app, workflows_app, case_cli.app)


@app.callback()
def root(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    ROOT.db = db
    ROOT.json = as_json


@app.command()
@command
def init(db: DbOpt = None, allow_cancel: AllowCancelOpt = False, as_json: JsonOpt = False) -> None:
    """Create or upgrade the database schema, load reference data, store definitions, and
    make the pending campaign timers follow the files (every one cancelled or re-planned
    is printed)."""
    s = settings(db)
    report = initialise(s, check_jobs=True, allow_cancel=allow_cancel)
    new = f" (new: {', '.join(report.new_definitions)})" if report.new_definitions else ""
    emit(
        {
            "database": s.db_url,
            "reference_rows": report.reference_rows,
            "definitions": report.definitions,
            "new_definitions": list(report.new_definitions),
            "campaigns": list(report.campaigns),
            "timers": report.timers.as_dict(),
        },
        as_json,
        lambda: console.print(
            f"Database ready: {s.db_url}\n"
            f"Reference data: {', '.join(f'{v} {k}' for k, v in report.reference_rows.items())}\n"
            f"Workflows: {', '.join(f'{k}@{v[:12]}' for k, v in report.definitions.items())}"
            f"{new}\n"
            f"Campaigns: {', '.join(report.campaigns)}\n"
            f"Pending campaign timers: {len(report.timers.cancelled)} cancelled, "
            f"{len(report.timers.replanned)} re-planned"
            + "".join(f"\n  {line}" for line in report.timers.lines()),
            highlight=False,
        ),
    )


@app.command()
@command
def validate(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Files to check (default: every workflow and campaign)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check workflow (and campaign) files; exit 1 listing every error."""
    s = settings(None)
    paths = files or [*s.workflow_files(), *s.campaign_files()]
    errors: list[str] = []
    checked = []
    workflow_paths = [p for p in paths if p.parent.name != "campaigns"]
    given: list[Definition] = []
    try:
        for d in (given := load_definitions(workflow_paths)):
            checked.append({"file": d.source, "workflow": d.name, "version": d.version})
    except InvalidDefinition as exc:
        errors.extend(exc.errors)
    workflows_ok = not errors
    # With the files given, the other campaign files are read too: an id used twice is an error.
    given_campaigns = {str(p) for p in paths if p.parent.name == "campaigns"}
    every = sorted({*given_campaigns, *(str(p) for p in s.campaign_files())})
    found, partial, campaign_errors = load_campaigns(Path(p) for p in every)
    campaigns = [c for c in [*found, *partial] if c.source in given_campaigns]
    errors += [
        e for e in campaign_errors if any(f"{g}: " in e or f"of {g} " in e for g in given_campaigns)
    ]
    checked += [{"file": c.source, "campaign": c.id} for c in found if c in campaigns]
    if campaigns and workflows_ok:  # what their timers name, in the workflows they act on
        current = {d.name: d for d in load_definitions(s.workflow_files())}
        current.update({d.name: d for d in given})  # the files given take precedence
        errors += campaign_timer_errors(current, campaigns, jobs=True)
    if errors:
        raise InvalidDefinition(errors)

    def human() -> None:
        for c in checked:
            console.print(f"ok  {c['file']}", highlight=False)

    emit({"valid": True, "files": checked}, as_json, human)


@workflows_app.command("list")
@command
def workflows_list(as_json: JsonOpt = False) -> None:
    """The workflow files and their current versions."""
    s = settings(None)
    defs = load_definitions(s.workflow_files())
    rows: list[dict[str, Any]] = [
        {
            "workflow": d.name,
            "version": d.version,
            "file": d.source,
            "states": list(d.state_names),
            "triggers": list(d.triggers),
        }
        for d in defs
    ]

    def human() -> None:
        table = Table("workflow", "version", "states", "triggers")
        for r in rows:
            table.add_row(
                r["workflow"], r["version"][:12], str(len(r["states"])), ", ".join(r["triggers"])
            )
        console.print(table)

    emit(rows, as_json, human)


def _workflow_file(name: str) -> Definition:
    """A shipped workflow by name, or a workflow file by path."""
    path = (
        Path(name)
        if name.endswith((".yaml", ".yml"))
        else settings(None).workflows_dir / f"{name}.yaml"
    )
    if not path.exists():
        raise NotFound("workflow", name)
    return load_definition(path)


@workflows_app.command("diagram")
@command
def workflows_diagram(
    name: Annotated[str, typer.Argument(help="Workflow name, e.g. candidacy, or a YAML file.")],
    as_json: JsonOpt = False,
) -> None:
    """Print a Mermaid state diagram generated from the workflow's YAML."""
    definition = _workflow_file(name)
    text = CompiledMachine(definition).mermaid()
    emit(
        {"workflow": definition.name, "version": definition.version, "mermaid": text},
        as_json,
        lambda: print(text, end=""),
    )


@workflows_app.command("form")
@command
def workflows_form(
    name: Annotated[str, typer.Argument(help="Workflow name, e.g. action_sheet, or a YAML file.")],
    as_json: JsonOpt = False,
) -> None:
    """Print the fields a workflow's form declares (JSON: what a client renders)."""
    description = form_description(_workflow_file(name))

    def human() -> None:
        table = Table("field", "type", "required", "label")
        for f in description.get("fields", []):
            table.add_row(f["name"], f["type"], "yes" if f["required"] else "", f["label_fr"])
            for sub in f.get("fields", []):
                table.add_row(
                    f"  {sub['name']}",
                    sub["type"],
                    "yes" if sub["required"] else "",
                    sub["label_fr"],
                )
        console.print(table if description["declared"] else description["note"])

    emit(description, as_json, human)


@app.command()
@command
def demo(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Run the 2023 campaign on real territories with a simulated clock, and summarise it."""
    from ti_workflow.demo import run_demo

    run_demo(settings(db), as_json=as_json or ROOT.json)


def main() -> None:
    app()
