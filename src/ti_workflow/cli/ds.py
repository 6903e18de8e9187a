"""``ti-workflow ds ...``: the Démarches Simplifiées connector (sync, push, status, mapping)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ti_workflow.cli.common import DbOpt, JsonOpt, command, console, emit, engine, settings
from ti_workflow.clock import paris, parse_instant
from ti_workflow.ds import outbox, store
from ti_workflow.ds.check import check_mapping
from ti_workflow.ds.client import DsClient
from ti_workflow.ds.install import Connector, connector_of
from ti_workflow.ds.mapping import load_mapping
from ti_workflow.ds.push import retry_failed
from ti_workflow.errors import FieldError, InvalidData
from ti_workflow.storage.database import read

app = typer.Typer(
    help="Démarches Simplifiées: import the dossiers, write decisions back (docs/ds.md).",
    no_args_is_help=True,
)


@contextmanager
def opened(db: str | None) -> Iterator[Connector]:
    eng = engine(db)
    try:
        store.check_tables(eng.db)
        yield connector_of(eng)
    finally:
        eng.db.dispose()


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_instant(text)
    except ValueError:
        raise InvalidData(
            "option",
            [
                FieldError(
                    "--since",
                    f"{text!r} is not an ISO 8601 instant, e.g. 2023-07-01T00:00 (Paris time) "
                    "or 2023-06-30T22:00Z",
                )
            ],
        ) from None


@app.command("sync")
@command
def sync(
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Read the dossiers changed since this instant (default: since the last run).",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import the procedure's new and changed dossiers (and withdraw the deleted ones)."""
    start = _since(since)
    with opened(db) as connector:
        report = connector.sync(start)
    data = report.as_dict()

    def human() -> None:
        console.print(
            f"{data['seen']} dossier(s) read on {data['pages']} page(s)"
            f"{' (resumed run)' if data['resumed'] else ''}: {data['created']} new case(s), "
            f"{data['updated']} update(s), {data['submitted']} filed, {data['refused']} "
            f"refused by the rules, {data['withdrawn']} withdrawn, {data['unchanged']} "
            "unchanged",
            highlight=False,
        )
        for line in data["problems"]:
            console.print(f"  {escape(line)}", highlight=False)

    emit(data, as_json, human)


@app.command("push")
@command
def push(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 200,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the due changes on DS (en instruction, decisions, messages)."""
    with opened(db) as connector:
        report = connector.push(limit)
    data = report.as_dict()

    def human() -> None:
        console.print(
            f"{data['claimed']} due: {data['sent']} written, {data['already_done']} already "
            f"done on DS, {data['failed']} failed, {data['retrying']} to retry",
            highlight=False,
        )
        for line in data["errors"]:
            console.print(f"  {escape(line)}", highlight=False)

    emit(data, as_json, human)


@app.command("status")
@command
def status(
    show_all: Annotated[
        bool, typer.Option("--all", help="Every dossier, not only those with a problem.")
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The dossiers the operator must look at (refused by the rules, data errors), the last
    sync and the DS outbox."""
    with opened(db) as connector, read(connector.engine.db) as conn:
        links = store.links(conn, connector.procedure)
        sync_state = store.sync_row(conn, connector.procedure)
        queued = {s: outbox.count_rows(conn, s) for s in outbox.STATUSES}
        failed = outbox.list_rows(conn, status="failed")
    shown = [link for link in links if show_all or link.problems]
    data: dict[str, Any] = {
        "procedure": connector.procedure,
        "dossiers": len(links),
        "with_problems": sum(1 for link in links if link.problems),
        "last_run_at": _iso(sync_state.get("last_run_at")),
        "next_since": _iso(sync_state.get("since")),
        "run_under_way": sync_state.get("run_started_at") is not None,
        "outbox": queued,
        "failed_pushes": failed,
        "list": [
            {
                "dossier": link.number,
                "case_id": link.case_id,
                "ds_state": link.state,
                "modified_at": _iso(link.modified_at),
                "problems": link.problems,
            }
            for link in shown
        ],
    }

    def human() -> None:
        last = sync_state.get("last_run_at")
        resumes = " (a run was interrupted: the next one resumes it)"
        console.print(
            f"Procedure n° {connector.procedure}: {data['dossiers']} dossier(s), "
            f"{data['with_problems']} with a problem; last sync "
            f"{paris(last).strftime('%d/%m/%Y %H:%M') if last else 'never'}"
            f"{resumes if data['run_under_way'] else ''}",
            highlight=False,
        )
        console.print(
            "DS outbox: " + ", ".join(f"{n} {s}" for s, n in queued.items()), highlight=False
        )
        if shown:
            table = Table("dossier", "case", "DS state", "problem")
            for item in data["list"]:
                text = "; ".join(p.get("message", p["kind"]) for p in item["problems"]) or "-"
                table.add_row(
                    str(item["dossier"]),
                    str(item["case_id"] or "-"),
                    item["ds_state"],
                    escape(text),
                )
            console.print(table)
        for row in failed:
            console.print(
                f"push {row['id']} ({row['operation']} dossier n° {row['dossier_number']}) "
                f"failed: {escape(str(row['last_error']))}",
                highlight=False,
            )

    emit(data, as_json, human)


@app.command("retry")
@command
def retry(
    ids: Annotated[list[int], typer.Argument(help="Failed DS outbox rows to send again.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue failed DS outbox rows again (after fixing the cause on DS)."""
    with opened(db) as connector:
        done = retry_failed(connector.engine.db, ids, connector.engine.clock.now())
    missing = sorted(set(ids) - set(done))
    emit(
        {"queued": done, "not_failed_or_unknown": missing},
        as_json,
        lambda: console.print(
            f"queued again: {', '.join(map(str, done)) or 'none'}"
            + (f"; not failed or unknown: {', '.join(map(str, missing))}" if missing else ""),
            highlight=False,
        ),
    )
    if missing:
        raise typer.Exit(1)


@app.command("check-mapping")
@command
def check_mapping_command(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Compare the mapping file with the procedure's active revision on DS; exit 1 on any
    problem (unmapped required field, mapped field gone, label or type changed)."""
    s = settings(db)
    mapping = load_mapping(s.ds_mapping_path)
    with DsClient.from_settings(s) as client:
        assert s.ds_procedure is not None
        revision = client.revision(s.ds_procedure)
    problems = check_mapping(mapping, revision)
    data = {
        "procedure": s.ds_procedure,
        "mapping": mapping.source,
        "revision": (revision.get("activeRevision") or {}).get("id"),
        "problems": [p.as_dict() for p in problems],
    }

    def human() -> None:
        if not problems:
            console.print(
                f"The mapping {mapping.source} matches procedure n° {s.ds_procedure} "
                f"({revision.get('title')}).",
                highlight=False,
            )
        for p in problems:
            console.print(f"{p.kind}: {escape(p.message)}", highlight=False)

    emit(data, as_json, human)
    if problems:
        raise typer.Exit(1)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def register(app_: typer.Typer, workflows_app: typer.Typer, case_app: typer.Typer) -> None:
    """``ti-workflow ds sync|push|status|retry|check-mapping``."""
    app_.add_typer(app, name="ds")
