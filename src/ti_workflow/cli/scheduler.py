"""``scheduler run|tick``, ``timers list``, ``notifications send|list|show|retry``,
``smtp-sink`` and ``case notifications``: the scheduling and mail commands."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from ti_workflow.cli.common import (
    AllowCancelOpt,
    AsOpt,
    DbOpt,
    JsonOpt,
    actor,
    command,
    console,
    emit,
    engine,
    err_console,
    settings,
)
from ti_workflow.clock import paris, parse_instant
from ti_workflow.errors import FieldError, InvalidData, NotFound
from ti_workflow.mail import outbox
from ti_workflow.mail.dispatch import Dispatcher
from ti_workflow.mail.errors import NotRetryable
from ti_workflow.mail.sink import Received, RecordingHandler, start_sink
from ti_workflow.scheduling import lock
from ti_workflow.scheduling.runner import run as run_scheduler
from ti_workflow.scheduling.sweep import sweep, worker_id
from ti_workflow.scheduling.timers import (
    OPEN_STATUSES,
    STATUSES,
    count_timers,
    list_timers,
    sync_campaign_timers,
)
from ti_workflow.storage import repository as repo
from ti_workflow.storage.database import read

scheduler_app = typer.Typer(help="Run due timers (window, reminders, escalations) and send mail.")
timers_app = typer.Typer(help="Timers: what is due next, what was done.")
notifications_app = typer.Typer(help="The e-mail outbox.")

LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most N rows.")]
CaseOpt = Annotated[int | None, typer.Option("--case", min=1, help="Only this case.")]


def register(app: typer.Typer, workflows_app: typer.Typer, case_app: typer.Typer) -> None:
    app.add_typer(scheduler_app, name="scheduler")
    app.add_typer(timers_app, name="timers")
    app.add_typer(notifications_app, name="notifications")
    app.command("smtp-sink")(smtp_sink)
    case_app.command("notifications")(case_notifications)


def _until(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = parse_instant(text)
    except ValueError:
        raise InvalidData(
            "option",
            [
                FieldError(
                    "--until",
                    f"{text!r} is not an ISO 8601 instant, e.g. "
                    "2023-09-23T00:00 (Paris time) or 2023-09-22T22:00Z",
                )
            ],
        ) from None
    if value > datetime.now(UTC):
        raise InvalidData(
            "option",
            [
                FieldError(
                    "--until",
                    f"{text} is in the future: a tick never runs a timer before it is due",
                )
            ],
        ) from None
    return value


@scheduler_app.command("tick")
@command
def tick(
    until: Annotated[
        str | None, typer.Option("--until", help="Only timers due up to this instant (ISO).")
    ] = None,
    no_send: Annotated[bool, typer.Option("--no-send", help="Queue mail, do not send.")] = False,
    allow_cancel: AllowCancelOpt = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run every due timer once (late policies applied), send due mail, and exit. Every
    campaign timer cancelled or re-planned because its file changed is printed first."""
    horizon = _until(until)
    eng = engine(db, allow_cancel)
    worker = worker_id()
    lock.acquire(eng.db, worker, timedelta(minutes=10))
    try:
        report = sweep(eng, until=horizon, worker=worker, allow_cancel=allow_cancel)
        sent = None if no_send else Dispatcher(eng.db, settings(db), eng.clock).send_due()
    finally:
        lock.release(eng.db, worker)
    body = report.as_dict()
    if sent is not None:
        body["mail"] = {
            "sent": sent.sent,
            "retrying": sent.retrying,
            "failed": sent.failed,
            "partial": sent.partial,
            "errors": sent.errors,
        }

    def human() -> None:
        for line in report.synced.lines():
            console.print(line, highlight=False)
        for t in report.timers:
            console.print(
                f"{t['status']:<10} {t['name']}  (due {_paris(t['due_at'])})  "
                + _did(t["outcome"]),
                highlight=False,
            )
        console.print(f"{len(report.timers)} timer(s) run", highlight=False)
        if sent is not None:
            console.print(
                f"mail: {sent.sent} sent, {sent.retrying} to retry, {sent.failed} "
                f"failed, {sent.partial} partly failed",
                highlight=False,
            )
            for e in dict.fromkeys(sent.errors[:20]):
                console.print(f"  {e}", highlight=False)
            if len(sent.errors) > 20:
                console.print(f"  … and {len(sent.errors) - 20} more", highlight=False)

    emit(body, as_json, human)


@scheduler_app.command("run")
@command
def run(
    interval: Annotated[
        int | None,
        typer.Option(
            "--interval",
            min=1,
            help="Safety wake-up, seconds (default: TI_WORKFLOW_SCHEDULER_INTERVAL or 60).",
        ),
    ] = None,
    exit_after: Annotated[
        float | None, typer.Option("--exit-after", min=0.1, help="Stop after N seconds.")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Long-running scheduler: wakes at the next due instant and every interval."""
    eng = engine(db)
    every = interval or settings(db).scheduler_interval_seconds

    def report(wake: dict[str, Any]) -> None:
        emit(
            wake,
            as_json,
            lambda: console.print(
                f"{datetime.now(UTC).isoformat(timespec='seconds')} "
                + (
                    f"{len(wake['sweep']['timers'])} timer(s) run, next timer "
                    f"{_paris(wake['next']) or 'none pending'}"
                    if "sweep" in wake
                    else f"{wake['sent']} mail sent, {wake['retrying']} to retry, "
                    f"{wake['failed']} failed, next mail "
                    f"{_paris(wake['next_mail']) or 'none pending'}"
                ),
                highlight=False,
            ),
        )

    stats = run_scheduler(eng, every, exit_after, report)
    if not as_json:
        console.print(f"stopped after {stats.wakes} wake(s)", highlight=False)


@timers_app.command("list")
@command
def timers_list(
    status: Annotated[
        str | None, typer.Option("--status", help=f"One of: {', '.join(STATUSES)}.")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every status, what was done included.")
    ] = False,
    case: CaseOpt = None,
    limit: LimitOpt = 50,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What is due next (pending timers, earliest first)."""
    if status is not None and status not in STATUSES:
        raise InvalidData(
            "option", [FieldError("--status", f"{status!r}: expected one of {', '.join(STATUSES)}")]
        )
    eng = engine(db)
    with eng.db.begin() as conn:
        synced = sync_campaign_timers(conn, eng.catalog.campaigns.values(), eng.clock.now())
        if case is not None:
            repo.load_case(conn, case)  # an unknown case is an error, not an empty list
    statuses = [status] if status else (STATUSES if all_ else OPEN_STATUSES)
    with read(eng.db) as conn:
        rows = list_timers(conn, statuses=statuses, case_id=case, limit=limit)
        total = count_timers(conn, statuses=statuses, case_id=case)

    def human() -> None:
        for line in synced.lines():  # a file changed since the last tick: say what followed
            console.print(line, highlight=False)
        table = Table(
            "id", "due (Paris)", "campaign", "timer", "case", "does", "late", "status", "outcome"
        )
        for r in rows:  # with its offset: 02:30 on a night the clocks go back happens twice
            table.add_row(
                str(r["id"]),
                _paris(r["due_at"]),
                r["campaign"],
                r["name"],
                str(r["case_id"] or "all"),
                _does(r["action"]),
                r["late_policy"],
                r["status"],
                _outcome(r),
            )
        console.print(table)
        _shown(len(rows), total)

    emit(rows, as_json, human)


def _paris(instant: str | None) -> str:
    if not instant:
        return ""
    return paris(datetime.fromisoformat(instant)).strftime("%d/%m/%Y %H:%M %z")


def _shown(shown: int, total: int) -> None:
    if shown < total:
        console.print(f"{shown} of {total} shown (--limit N to see more)", highlight=False)


def _outcome(r: dict[str, Any]) -> str:
    """When a listed timer ran, and what it did."""
    if not r.get("fired_at"):
        return ""
    return "; ".join(part for part in (_paris(r["fired_at"]), _did(r["outcome"])) if part)


def _did(outcome: dict[str, Any] | None) -> str:
    """What a timer did, in one line: on how many cases, what it queued, or why not."""
    out = outcome or {}
    parts = []
    for action in out.get("actions") or []:
        if "fired" in action:
            parts.append(f"{action['name']} {action['fired']} (skipped {action['skipped']})")
        elif "queued" in action:
            parts.append(f"{action['name']} {action['queued']} queued")
        else:
            parts.append(str(action.get("name")))
    for key in ("queued", "fired", "cases", "reason", "error", "message"):
        if out.get(key) not in (None, ""):
            parts.append(f"{key} {out[key]}")
    if out.get("late_by"):
        parts.append(f"late by {out['late_by'].split('.')[0]}")
    return "; ".join(parts)


def _does(action: dict[str, Any]) -> str:
    if action.get("kind") == "case":
        return f"fire {action['fire']}" if action.get("fire") else f"notify {action['notify']}"
    return "; ".join(
        f"{a['kind']} {a['name']}" + (f" in {'/'.join(a['states'])}" if a["states"] else "")
        for a in action.get("actions", [])
    )


@notifications_app.command("send")
@command
def notifications_send(
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="At most N messages (default: every one due)."),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send every due message of the outbox (one SMTP connection per batch)."""
    eng = engine(db)
    report = Dispatcher(eng.db, settings(db), eng.clock).send_due(limit=limit)
    body = {
        "sent": report.sent,
        "retrying": report.retrying,
        "failed": report.failed,
        "partial": report.partial,
        "errors": report.errors,
    }
    emit(
        body,
        as_json,
        lambda: console.print(
            f"{report.sent} sent, {report.retrying} to retry, {report.failed} failed, "
            f"{report.partial} partly failed"
            + "".join(f"\n  {e}" for e in dict.fromkeys(report.errors[:20]))
            + (f"\n  … and {len(report.errors) - 20} more" if len(report.errors) > 20 else ""),
            highlight=False,
        ),
    )
    if report.retrying and not (report.sent or report.partial):
        # SMTP down (or refusing everything for now): cron and monitoring must notice.
        err_console.print(
            f"[bold red]error[/] (nothing_sent): none of the {report.claimed} message(s) due "
            f"could be sent; {report.retrying} will be tried again later",
            highlight=False,
        )
        raise typer.Exit(1)


def _print_messages(rows: list[dict[str, Any]]) -> None:
    table = Table("id", "case", "notification", "to", "status", "tries", "detail")
    for r in rows:
        detail = r["last_error"] or ""
        if r["status"] == "sending":  # a sender holds it (or died holding it)
            holder = r["claimed_by"] or "?"
            detail = f"claimed by {holder} until {_paris(r['lease_until'])}"
            if lock.is_dead(holder):
                detail += " (that process is gone: the next send takes it back)"
        elif r["rejected"]:
            detail = "; ".join(f"{k}: {v}" for k, v in r["rejected"].items())
        table.add_row(
            str(r["id"]),
            str(r["case_id"] or ""),
            r["notification"],
            "\n".join(r["to"]),
            r["status"],
            str(r["attempts"]),
            detail,
        )
    console.print(table)


@notifications_app.command("list")
@command
def notifications_list(
    status: Annotated[
        str | None, typer.Option("--status", help=f"One of: {', '.join(outbox.STATUSES)}.")
    ] = None,
    case: CaseOpt = None,
    limit: LimitOpt = 100,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The outbox: what was (or will be) sent to whom, and how it went."""
    if status is not None and status not in outbox.STATUSES:
        raise InvalidData(
            "option",
            [FieldError("--status", f"{status!r}: expected one of {', '.join(outbox.STATUSES)}")],
        )
    eng = engine(db)
    with read(eng.db) as conn:
        if case is not None:
            repo.load_case(conn, case)  # an unknown case is an error, not an empty list
        rows = outbox.list_messages(conn, status=status, case_id=case, limit=limit)
        total = outbox.count_messages(conn, status=status, case_id=case)

    def human() -> None:
        _print_messages(rows)
        _shown(len(rows), total)

    emit(rows, as_json, human)


@notifications_app.command("show")
@command
def notifications_show(
    message: Annotated[int, typer.Argument(help="Outbox message id.", min=1)],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One message exactly as queued: headers and both parts."""
    eng = engine(db)
    with read(eng.db) as conn:
        row = conn.execute(outbox.outbox.select().where(outbox.outbox.c.id == message)).first()
    if row is None:
        raise NotFound("message", message)
    msg = outbox.build_message(row, settings(db).mail_from)
    body = {**outbox._public(row), "text": row.body_text, "html": row.body_html}

    def human() -> None:
        for header in ("From", "To", "Subject", "Message-ID", "Date"):
            print(f"{header}: {msg[header]}")
        print(f"Status: {row.status} ({row.attempts} attempt(s)) {row.last_error or ''}")
        print("\n--- text/plain ---")
        print(row.body_text.rstrip("\n"))
        print("\n--- text/html ---")
        print(row.body_html.rstrip("\n"))

    emit(body, as_json, human)


@notifications_app.command("retry")
@command
def notifications_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Message ids to send again.")] = None,
    all_failed: Annotated[
        bool, typer.Option("--all-failed", help="Every failed or partly failed message.")
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue failed messages again (only their refused recipients)."""
    if bool(ids) == all_failed:
        raise InvalidData(
            "arguments", [FieldError("IDS", "give message ids or --all-failed, not both")]
        )
    eng = engine(db)
    with eng.db.begin() as conn:
        if ids:
            found = {
                r.id: r.status
                for r in conn.execute(
                    outbox.outbox.select().where(outbox.outbox.c.id.in_(ids))
                ).all()
            }
            missing = sorted(set(ids) - set(found))
            if missing:
                raise NotFound("message", missing[0] if len(missing) == 1 else missing)
            done = {i: s for i, s in found.items() if s not in ("failed", "partial")}
            if done:
                raise NotRetryable(done)
        queued = outbox.retry(conn, ids or [], all_failed, eng.clock.now())
    emit(
        {"queued": queued},
        as_json,
        lambda: console.print(f"{len(queued)} message(s) queued again", highlight=False),
    )


def smtp_sink(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 1025,
    quiet: Annotated[bool, typer.Option("--quiet", help="Accept, print nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """A local SMTP server that prints what it receives (for development)."""

    def show(got: Received) -> None:
        if quiet:
            return
        emit(
            {
                "from": got.mail_from,
                "to": got.rcpt_tos,
                "subject": got.subject,
                "message_id": got.message["Message-ID"],
            },
            as_json,
            lambda: console.print(f"{got.rcpt_tos} {got.subject}", highlight=False),
        )

    controller = start_sink(host, port, RecordingHandler(on_message=show))
    console.print(f"SMTP sink listening on {host}:{port} (Ctrl-C to stop)", highlight=False)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@command
def case_notifications(
    case_id: Annotated[int, typer.Argument(help="The case number.", min=1)],
    as_: AsOpt = "auditor",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What was sent to whom about this case: everything for the auditor and the national
    committee, its own mail for a candidate or a regional body."""
    eng = engine(db)
    reader = actor(as_)
    eng.get(case_id, reader)
    with read(eng.db) as conn:
        rows = outbox.list_messages(conn, case_id=case_id, limit=10_000, reader=reader)
    emit(rows, as_json, lambda: _print_messages(rows))
