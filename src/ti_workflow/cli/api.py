"""``serve``, ``users ...``, ``tokens ...``: the operator HTTP API and its accounts."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from ti_workflow.bootstrap import open_engine
from ti_workflow.cli.common import DbOpt, JsonOpt, command, console, emit, settings
from ti_workflow.clock import parse_instant
from ti_workflow.errors import FieldError, InvalidData
from ti_workflow.http import accounts
from ti_workflow.storage.database import check_schema, make_engine

users_app = typer.Typer(help="API users (one role each; never 'system').", no_args_is_help=True)
tokens_app = typer.Typer(
    help="API bearer tokens (stored as hashes, shown once).", no_args_is_help=True
)


def _db(db: str | None):  # type: ignore[no-untyped-def]
    engine = make_engine(settings(db).db_url)
    check_schema(engine)
    return engine


def _now() -> datetime:
    return datetime.now(UTC)


def register(app: typer.Typer, workflows_app: typer.Typer, case_app: typer.Typer) -> None:
    """Add ``serve`` and the ``users`` and ``tokens`` groups."""
    app.command("serve")(serve)
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
    users_app.command("refusals")(users_refusals)


@command
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Processes; on SQLite they take turns to write (a lock file beside it).",
        ),
    ] = 1,
    worker_timeout: Annotated[
        int,
        typer.Option(
            "--worker-timeout",
            min=5,
            max=3600,
            help="Seconds a worker may take to answer the supervisor's health ping "
            "(starting or busy) before it is replaced.",
        ),
    ] = 60,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve the operator HTTP API (/v1, OpenAPI at /v1/openapi.json) with uvicorn."""
    import uvicorn

    from ti_workflow.http import worker

    s = settings(db)
    # Store new definition or campaign versions once, here, rather than racing in N workers;
    # this also refuses at once a database that is unreachable or not initialised.
    open_engine(s).db.dispose()
    os.environ["TI_WORKFLOW_DB"] = s.db_url
    # Spawned workers re-import __main__ first: let it be the app's module, not the CLI.
    main = sys.modules["__main__"]
    sys.modules["__main__"] = worker
    try:
        uvicorn.run(
            "ti_workflow.http.worker:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            timeout_worker_healthcheck=worker_timeout,
            # info: the supervisor's "Child process [N] died" and each worker's start
            log_level="info",
            access_log=False,
        )
    finally:
        sys.modules["__main__"] = main


@users_app.command("add")
@command
def users_add(
    name: Annotated[str, typer.Argument(help="A unique login name, e.g. ara-region.")],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="candidate, regional_council, state_services, national_committee or auditor.",
        ),
    ],
    region: Annotated[
        str | None, typer.Option("--region", help="INSEE region code (regional roles).")
    ] = None,
    email: Annotated[
        str | None, typer.Option("--email", help="E-mail (required for a candidate).")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an API user with one role (and its region or e-mail)."""
    user = accounts.add_user(_db(db), name, role, _now(), region=region, email=email)
    emit(
        user.as_dict(),
        as_json,
        lambda: console.print(
            f"user {user.name} added: acts as {user.actor.label}", highlight=False
        ),
    )


@users_app.command("list")
@command
def users_list(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Every API user."""
    users = accounts.list_users(_db(db))

    def human() -> None:
        table = Table("id", "name", "role", "region", "e-mail", "created (UTC)")
        for u in users:
            table.add_row(
                str(u.id),
                u.name,
                u.role,
                u.region or "-",
                u.email or "-",
                u.created_at.strftime("%Y-%m-%d %H:%M"),
            )
        console.print(table)

    emit([u.as_dict() for u in users], as_json, human)


@tokens_app.command("create")
@command
def tokens_create(
    user: Annotated[str, typer.Argument(help="The user's name.")],
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="ISO 8601 duration: P30D, P2W, PT12H.")
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="ISO 8601 instant (no offset: Europe/Paris time)."),
    ] = None,
    label: Annotated[str, typer.Option("--label", help="What the token is for.")] = "",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a bearer token; the secret is printed now and never again."""
    now = _now()
    if expires_in and expires:
        raise InvalidData(
            "options", [FieldError("--expires", "give --expires-in or --expires, not both")]
        )
    at = None
    if expires_in:
        at = now + accounts.parse_duration(expires_in)
    elif expires:
        try:
            at = parse_instant(expires)
        except ValueError:
            raise InvalidData(
                "options",
                [FieldError("--expires", f"{expires!r} is not an ISO 8601 instant")],
            ) from None
    secret, token = accounts.create_token(_db(db), user, now, at, label)

    def human() -> None:
        console.print(f"token {token.id} for {token.user}", highlight=False)
        console.print(
            f"expires: {token.expires_at.isoformat() if token.expires_at else 'never'}",
            highlight=False,
        )
        console.print("secret (shown once, keep it now):", highlight=False)
        print(secret)

    emit({**token.as_dict(now), "token": secret}, as_json, human)


@tokens_app.command("list")
@command
def tokens_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Tokens (prefix, owner, expiry, status), never their secret."""
    now = _now()
    tokens = accounts.list_tokens(_db(db), user)

    def human() -> None:
        table = Table("id", "user", "prefix", "label", "expires (UTC)", "status")
        for t in tokens:
            table.add_row(
                str(t.id),
                t.user,
                t.prefix + "...",
                t.label,
                t.expires_at.strftime("%Y-%m-%d %H:%M") if t.expires_at else "never",
                t.status(now),
            )
        console.print(table)

    emit([t.as_dict(now) for t in tokens], as_json, human)


@tokens_app.command("revoke")
@command
def tokens_revoke(
    token_id: Annotated[int, typer.Argument(help="The token id (see tokens list).", min=1)],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a token at once (every worker refuses it from its next request)."""
    token = accounts.revoke_token(_db(db), token_id, _now())
    emit(
        token.as_dict(_now()),
        as_json,
        lambda: console.print(f"token {token.id} of {token.user} revoked", highlight=False),
    )


@command
def users_refusals(
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's refusals.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The API's latest refusals (401, 403, 404, 409, 412, 413, 422...), newest first."""
    rows = accounts.refusals(_db(db), limit, user)

    def human() -> None:
        table = Table("when (UTC)", "who", "request", "status", "problem", "detail")
        for r in rows:
            table.add_row(
                str(r["at"])[:19],
                str(r["actor"] or "-"),
                f"{r['method']} {r['path']}",
                str(r["status"]),
                str(r["problem"]),
                str(r["detail"])[:80],
            )
        console.print(table)

    emit(rows, as_json, human)
