"""What every command shares: options, engine opening, output, and error reporting."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ti_workflow.bootstrap import open_engine
from ti_workflow.domain.actors import Actor, parse_actor
from ti_workflow.engine import Engine
from ti_workflow.errors import FieldError, InvalidData, TiWorkflowError, UnknownTrigger
from ti_workflow.files.errors import FileRefused
from ti_workflow.settings import Settings

console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (default: TI_WORKFLOW_DB or sqlite:///ti_workflow.db)."
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


class State:
    """Root options, given before the command (``ti-workflow --db URL case list``)."""

    db: str | None = None
    json: bool = False


ROOT = State()

P = ParamSpec("P")
R = TypeVar("R")


def settings(db: str | None) -> Settings:
    return Settings.from_env(db_url=db or ROOT.db)


def engine(db: str | None) -> Engine:
    return open_engine(settings(db))


def actor(text: str) -> Actor:
    return parse_actor(text)


def read_json_file(path: Path, option: str) -> Any:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidData(
            "input", [FieldError(option, f"cannot read {path}: {exc.strerror}")]
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidData(
            "input",
            [
                FieldError(
                    option,
                    f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
                )
            ],
        ) from None


def emit(value: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json or ROOT.json:
        sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        human()


def command(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn engine errors into a clear message (stderr), exit 1 (refused) or 2 (bad usage)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        as_json = bool(kwargs.get("as_json")) or ROOT.json
        try:
            return fn(*args, **kwargs)
        except TiWorkflowError as exc:
            code = 2 if isinstance(exc, USAGE_ERRORS) else 1
            if as_json:
                body = {"error": exc.kind, "message": str(exc), "rules": exc.details()}
                sys.stdout.write(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
            err_console.print(
                f"[bold red]error[/] ({exc.kind}): {escape(str(exc))}", highlight=False
            )
            raise typer.Exit(code) from None

    return wrapper
