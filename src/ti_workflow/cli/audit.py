"""``ti-workflow audit ...``, ``workflows diff`` and ``cases migrate``: read, prove, export.

Every audit command only reads the cases and events (a checkpoint adds a row to its
own table); ``cases migrate`` is the one writer here, and it refuses the auditor.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from ti_workflow.audit import offline
from ti_workflow.audit.checkpoints import load_checkpoint_file, take_checkpoint, verify_checkpoint
from ti_workflow.audit.errors import AuditFailed
from ti_workflow.audit.export import FORMATS, export
from ti_workflow.audit.history import replay_case
from ti_workflow.audit.snapshot import parse_at, snapshot, state_at, states_at
from ti_workflow.audit.verify import count_events, verify
from ti_workflow.audit.versions import diff, migrate, resolve_definition
from ti_workflow.cli.common import (
    ROOT,
    AsOpt,
    DbOpt,
    JsonOpt,
    actor,
    command,
    console,
    emit,
    engine,
    err_console,
)
from ti_workflow.errors import FieldError, InvalidData

audit_app = typer.Typer(
    help="Audit: replay, state at an instant, verify, export.", no_args_is_help=True
)
cases_app = typer.Typer(help="Operations on many cases at once.", no_args_is_help=True)

CaseArg = Annotated[int, typer.Argument(help="Case id.")]
AtOpt = Annotated[str, typer.Option("--at", help="ISO 8601 instant; no offset = Europe/Paris.")]
PROGRESS_FROM = 20_000
PARALLEL_FROM = 100_000


def register(app: typer.Typer, workflows_app: typer.Typer, case_app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.add_typer(cases_app, name="cases")
    workflows_app.command("diff")(workflows_diff)


def _json(as_json: bool) -> bool:
    return as_json or ROOT.json


@audit_app.command("replay")
@command
def audit_replay(case_id: CaseArg, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Rebuild a case from its events alone and show its path (Paris time)."""
    result = replay_case(engine(db), case_id)

    def human() -> None:
        c = result.case
        table = Table("#", "quand (Paris)", "trigger", "état", "acteur", "payload", "notifs")
        for s in result.steps:
            table.add_row(
                str(s["seq"]),
                s["at_paris"][:19].replace("T", " "),
                s["trigger"],
                f"{s['source'] or '∅'} → {s['dest']}",
                s["actor"],
                escape(
                    json.dumps(
                        s["payload"] if s["trigger"] not in ("create", "update") else {"data": "…"},
                        ensure_ascii=False,
                    )
                )[:60],
                str(len(s["notifications"])),
            )
        console.print(table)
        console.print(
            f"case {c.case_id} «{escape(c.title)}»: replayed state [bold]{c.state}[/] "
            f"(version {c.definition_version[:12]}, {c.events} events)",
            highlight=False,
        )
        if result.differences:
            for f in result.differences:
                console.print(f"[red]differs[/] {escape(str(f))}", highlight=False)
        else:
            console.print(
                "the stored case equals its replay / le dossier stocké est identique à sa relecture"
            )

    emit(result.as_dict(), _json(as_json), human)


@audit_app.command("state-at")
@command
def audit_state_at(case_id: CaseArg, at: AtOpt, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The case (state, form data, opinions, decision) as it was at an instant."""
    instant = parse_at(at)
    result = state_at(engine(db), case_id, instant)

    def human() -> None:
        if result.case is None:
            console.print(
                f"case {case_id} did not exist yet at {at} / le dossier n'existait pas encore",
                highlight=False,
            )
            return
        body = result.as_dict()
        console.print(
            f"case {case_id} at {body['at_paris']} (Paris): [bold]{body['state']}[/]",
            highlight=False,
        )
        console.print_json(
            json.dumps(
                {k: body[k] for k in ("opinions", "decision", "data")},
                ensure_ascii=False,
                default=str,
            )
        )

    emit(result.as_dict(), _json(as_json), human)


@audit_app.command("snapshot")
@command
def audit_snapshot(
    at: AtOpt,
    state: Annotated[str | None, typer.Option("--state", help="Only cases in this state.")] = None,
    workflow: Annotated[str | None, typer.Option("--workflow")] = None,
    with_data: Annotated[bool, typer.Option("--data", help="Include form data and facts.")] = False,
    states_only: Annotated[
        bool,
        typer.Option(
            "--states-only",
            help="Only id, state and current title, by SQL: fast on large logs "
            "(no opinions, decision or data; assumes a verified log).",
        ),
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every case as it was at an instant (e.g. labelled on 2023-12-01)."""
    instant = parse_at(at)
    e = engine(db)
    if states_only:
        found = states_at(e, instant, state)
        light = [{"id": i, "state": st, "current_title": title} for i, st, title in found]

        def brief() -> None:
            for r in light:
                console.print(
                    f"{r['id']:>6}  {r['state']:<16} {escape(str(r['current_title']))}",
                    highlight=False,
                )
            console.print(f"{len(light)} case(s) at {at}", highlight=False)

        emit(
            {"at": instant.isoformat(), "count": len(light), "cases": light}, _json(as_json), brief
        )
        return
    rows = [c.as_dict(with_data) for c in snapshot(e, instant, state, workflow)]

    def human() -> None:
        table = Table("id", "territoire", "état", "régions", "décision")
        for r in rows:
            decision = (r.get("decision") or {}).get("decision", "")
            table.add_row(
                str(r["id"]), escape(r["title"]), r["state"], " ".join(r["regions"]), decision
            )
        console.print(table)
        console.print(f"{len(rows)} case(s) at {at}", highlight=False)

    emit({"at": instant.isoformat(), "count": len(rows), "cases": rows}, _json(as_json), human)


@contextmanager
def _progress(total: int, show: bool) -> Iterator[Any]:
    """A progress bar shown from the first events verified: ``verify`` forks its workers
    first, before the bar's refresh thread starts (a fork copies no thread but their locks).
    """
    if not show:
        yield None
        return
    with ExitStack() as stack:
        state: dict[str, Any] = {}

        def advance(n: int) -> None:
            if not state:
                state["bar"] = bar = stack.enter_context(
                    Progress(console=err_console, transient=True)
                )
                state["task"] = bar.add_task("verifying events", total=total)
            state["bar"].advance(state["task"], n)

        yield advance


@audit_app.command("verify")
@command
def audit_verify(
    case_id: Annotated[int | None, typer.Option("--case", help="Only this case.")] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="A checkpoint file (JSON or its root) kept elsewhere."),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Hash chains and case heads only (no replay, no rules).")
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            help=f"Processes verifying disjoint ranges of cases; 0: one per CPU from "
            f"{PARALLEL_FROM:,} events on.",
        ),
    ] = 0,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Prove every chain, state, transition and message; exit 1 naming each fault."""
    e = engine(db)
    document = load_checkpoint_file(checkpoint) if checkpoint else None
    total = count_events(e, case_id)
    if workers == 0:
        workers = len(os.sched_getaffinity(0)) if total >= PARALLEL_FROM else 1
    with _progress(total, total >= PROGRESS_FROM and not _json(as_json)) as advance:
        report = verify(e, case_id, advance, quick=quick, workers=workers)
    if document is not None:
        report.findings.extend(verify_checkpoint(e, document))
    if not report.ok:
        raise AuditFailed(report.findings, report.cases, report.events)
    emit(
        {**report.as_dict(), "checkpoint": document.get("root") if document else None},
        _json(as_json),
        lambda: console.print(
            f"OK: {report.events} events in {report.cases} cases verified"
            + (f", checkpoint {document['root'][:12]}… holds" if document else ""),
            highlight=False,
        ),
    )


@audit_app.command("checkpoint")
@command
def audit_checkpoint(
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON here.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a Merkle root over every chain's head; keep its output elsewhere."""
    cp = take_checkpoint(engine(db))
    body = cp.as_dict()
    if out is not None:
        out.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    emit(
        body,
        _json(as_json),
        lambda: console.print(
            f"checkpoint {cp.id} at {cp.taken_at.isoformat()}: {cp.cases} cases, {cp.events} "
            f"events\nroot {cp.root}" + (f"\nwritten to {out}" if out else ""),
            highlight=False,
        ),
    )


@audit_app.command("export")
@command
def audit_export(
    fmt: Annotated[str, typer.Option("--format", help=f"One of {', '.join(FORMATS)}.")] = "jsonl",
    case_id: Annotated[int | None, typer.Option("--case")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO instant (Paris if no offset).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="File (default: stdout).")] = None,
    documents: Annotated[
        Path | None,
        typer.Option(
            "--documents", help="Also copy the documents referred to here (<sha256>.pdf; JSONL)."
        ),
    ] = None,
    db: DbOpt = None,
) -> None:
    """Export events as JSONL (verifiable offline, with the documents' hashes) or CSV."""
    if fmt not in FORMATS:
        raise InvalidData(
            "export",
            [FieldError("--format", f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")],
        )
    if documents is not None and fmt != "jsonl":
        raise InvalidData(
            "export", [FieldError("--documents", "only with --format jsonl (it lists them)")]
        )
    instant = parse_at(since, "--since") if since else None
    e = engine(db)
    if case_id is not None:
        from ti_workflow.domain.actors import AUDITOR, Actor

        e.get(case_id, Actor(AUDITOR))
    if out is None:
        n = export(e, sys.stdout, fmt, case_id, instant, documents)
    else:
        with out.open("w", encoding="utf-8", newline="") as f:
            n = export(e, f, fmt, case_id, instant, documents)
        err_console.print(f"{n} events written to {out}", highlight=False)
    if documents is not None:
        err_console.print(f"documents copied to {documents}", highlight=False)


@audit_app.command("verify-export")
def audit_verify_export(
    file: Annotated[Path, typer.Argument(help="A JSONL file from `audit export`.")],
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint")] = None,
    files: Annotated[
        Path | None,
        typer.Option("--files", help="The documents copied by `audit export --documents`."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check an exported JSONL file alone (no database): same as python -m …audit.offline."""
    args = [str(file)]
    if checkpoint is not None:
        args += ["--checkpoint", str(checkpoint)]
    if files is not None:
        args += ["--files", str(files)]
    if _json(as_json):
        args.append("--json")
    raise typer.Exit(offline.main(args))


@command
def workflows_diff(
    old: Annotated[str, typer.Argument(help="YAML file or stored version (hash prefix).")],
    new: Annotated[str, typer.Argument(help="YAML file or stored version (hash prefix).")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What changed between two versions of a workflow."""
    needs_db = not all(Path(x).is_file() for x in (old, new))
    e = engine(db) if needs_db else None
    result = diff(resolve_definition(e, old), resolve_definition(e, new))

    def human() -> None:
        console.print(
            f"{result['old']['workflow']}@{result['old']['version'][:12]} → "
            f"{result['new']['workflow']}@{result['new']['version'][:12]}",
            highlight=False,
        )
        if result["identical"]:
            console.print("no behavioural change / aucune différence")
        for c in result["changes"]:
            detail = f": {c.get('old')!r} → {c.get('new')!r}" if "old" in c else ""
            console.print(f"  {c['what']}: {escape(c['name'])}{escape(detail)}", highlight=False)

    emit(result, _json(as_json), human)


@cases_app.command("migrate")
@command
def cases_migrate(
    to: Annotated[str, typer.Option("--to", help="Target version (hash prefix) or YAML file.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only; write nothing.")] = False,
    case_ids: Annotated[list[int] | None, typer.Option("--case", help="Only these cases.")] = None,
    who: AsOpt = "national_committee",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move in-flight cases to another definition version, one `migrate` event each."""
    report = migrate(engine(db), to, actor(who), dry_run, case_ids or None)

    def human() -> None:
        verb = "would move" if dry_run else "moved"
        for m in report.moves:
            console.print(
                f"  case {m['case_id']} ({m['state']}): {m['from_version'][:12]} → "
                f"{m['to_version'][:12]}; triggers +{m['triggers_added']} "
                f"-{m['triggers_removed']}",
                highlight=False,
            )
        for r in report.refusals:
            console.print(
                f"  [red]refused[/] case {r['case_id']}: {escape(r['reason'])}", highlight=False
            )
        console.print(
            f"{verb} {len(report.moves)} case(s) to {report.to_version[:12]}", highlight=False
        )

    emit(report.as_dict(), _json(as_json), human)
    if report.refusals:
        raise typer.Exit(1)
