"""What every command shares: options, engine opening, output, and error reporting."""

from __future__ import annotations

import functools
import json
import sys
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import InterfaceError, OperationalError
from typer.models import OptionInfo

from ti_workflow.bootstrap import open_engine
from ti_workflow.definitions.loader import UNREADABLE
from ti_workflow.domain.actors import Actor, parse_actor
from ti_workflow.domain.text import MAX_DEPTH, json_depth, refuse_nul, safe_text, text_problem
from ti_workflow.engine import Engine
from ti_workflow.errors import (
    FieldError,
    InvalidData,
    InvalidDefinition,
    TiWorkflowError,
    UnknownTrigger,
)
from ti_workflow.files.errors import FileRefused
from ti_workflow.settings import Settings
from ti_workflow.storage import database
from ti_workflow.storage.database import connection_lost

console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (default: TI_WORKFLOW_DB or sqlite:///ti_workflow.db)."
    ),
]
AllowCancelOpt = Annotated[
    bool,
    typer.Option(
        "--allow-cancel",
        help="Cancel the pending timers that fire a trigger and are no longer in the campaign "
        "files (else listed under cancelled: with a date and a reason, or refused).",
    ),
]
AsOpt = Annotated[
    str,
    typer.Option(
        "--as",
        help="Who acts: candidate:EMAIL, regional_council:RR, state_services:RR, "
        "national_committee, auditor or system.",
    ),
]

USAGE_ERRORS = (InvalidData, UnknownTrigger, FileRefused)
_last_wait = [0.0]


def _say_waiting(lock_file: str, holder: str) -> None:
    """A SQLite write waits for another process (the API, the scheduler): say so, at most
    every 5 seconds, rather than look hung."""
    now = time.monotonic()
    if now - _last_wait[0] >= 5:
        _last_wait[0] = now
        err_console.print(
            f"waiting for the write lock ({lock_file}, held by {holder})…", highlight=False
        )


database.on_write_wait = _say_waiting


class State:
    """Root options, given before the command (``ti-workflow --db URL case list``)."""

    db: str | None = None
    json: bool = False


ROOT = State()

P = ParamSpec("P")
R = TypeVar("R")


def settings(db: str | None) -> Settings:
    return Settings.from_env(db_url=db or ROOT.db)


def engine(db: str | None, allow_cancel: bool = False) -> Engine:
    return open_engine(settings(db), allow_cancel=allow_cancel)


def actor(text: str) -> Actor:
    return parse_actor(text)


DATA_LIMIT = 256 * 1024
"""The most ``--data`` may hold: the HTTP API's body limit (``http.limits.DEFAULT_LIMIT``)."""
MAX_ID = 2**31 - 1
"""The largest id (case, message, token) the database holds; the API's limit too."""


def read_json_file(path: Path, option: str) -> Any:
    """The JSON in ``path`` (``-``: standard input), read with the API's size limit, in
    UTF-8, nested at most ``MAX_DEPTH`` deep, with no NUL in any text: else exit 2."""

    def bad(message: str) -> InvalidData:
        return InvalidData("input", [FieldError(option, message)])

    try:
        if str(path) == "-":
            raw = sys.stdin.buffer.read(DATA_LIMIT + 1)
        else:
            with path.open("rb") as f:
                raw = f.read(DATA_LIMIT + 1)
    except OSError as exc:
        raise bad(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > DATA_LIMIT:
        raise bad(f"{path} is over the limit of {DATA_LIMIT // 1024} KiB (the API's body limit)")
    if b"\x00" in raw:
        raise bad(f"{path} holds NUL bytes (UTF-16 or binary?); save the file in UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(
            f"{path} is not UTF-8 text (byte {exc.start + 1}); save the file in UTF-8"
        ) from None
    text = text.removeprefix("\ufeff")
    depth = json_depth(text)
    if depth > MAX_DEPTH:
        raise bad(f"{path} is nested {depth} levels deep; at most {MAX_DEPTH} are accepted")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    refuse_nul(value, "input", f"{option} ")
    return value


def emit(value: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json or ROOT.json:
        sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        human()


def command(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn engine errors into a clear message (stderr), exit 1 (refused) or 2 (bad usage).

    A database that goes away in the middle of a command (server restarted, connection
    killed, disk gone) is one line and exit 1, never a traceback: each transaction is
    all-or-nothing, so running the command again finishes the work."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        as_json = bool(kwargs.get("as_json")) or ROOT.json
        try:
            _check_arguments(fn, kwargs)
            try:
                return fn(*args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                raise connection_lost(exc) from None
        except TiWorkflowError as exc:
            code = 2 if isinstance(exc, USAGE_ERRORS) or _unreadable(exc) else 1
            message = safe_text(str(exc))  # it may quote refused input (a lone surrogate)
            if as_json:
                rules = [
                    {k: safe_text(v) if isinstance(v, str) else v for k, v in d.items()}
                    for d in exc.details()
                ]
                body = {"error": exc.kind, "message": message, "rules": rules}
                sys.stdout.write(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
            err_console.print(
                f"[bold red]error[/] ({exc.kind}): {escape(message)}", highlight=False
            )
            raise typer.Exit(code) from None

    return wrapper


def _unreadable(exc: TiWorkflowError) -> bool:
    """Definition files that cannot be read as YAML at all are bad input (exit 2); files
    that read but break the rules are refused (exit 1, like any refusal)."""
    return isinstance(exc, InvalidDefinition) and all(
        f": {UNREADABLE}" in e or ": cannot read: " in e for e in exc.errors
    )


def _check_arguments(fn: Callable[..., Any], values: dict[str, Any]) -> None:
    """Whole numbers given on the command line are ids, counts or limits: none is larger than
    the database's integers (``case show 99999999999999999999999`` is an input error). Every
    text argument is one line with no control or invisible character (docs/input-rules.md)."""
    errors = []
    for name, value in values.items():
        for n in value if isinstance(value, list) else [value]:
            problem = None
            if isinstance(n, int) and not isinstance(n, bool) and abs(n) > MAX_ID:
                problem = f"{n} is too large (at most {MAX_ID})"
            elif isinstance(n, str):
                problem = text_problem(n)
            if problem:
                errors.append(FieldError(_param(fn, name), problem))
                break
    if errors:
        raise InvalidData("arguments", errors)


def _param(fn: Callable[..., Any], name: str) -> str:
    """How the user wrote parameter ``name``: ``--case`` (an option) or ``CASE_ID``."""
    hint = typing.get_type_hints(fn, include_extras=True).get(name)
    for meta in getattr(hint, "__metadata__", ()):
        if isinstance(meta, OptionInfo):
            declared = [meta.default, *(meta.param_decls or ())]  # Annotated: default holds one
            return str(next((d for d in declared if str(d).startswith("--")), name))
    return name.upper()
