"""``ti-workflow file put`` (store a PDF, print its reference) and ``case file`` (download
one of a case's documents, with the case's scope)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ti_workflow.cli.common import AsOpt, DbOpt, actor, command, engine, err_console, settings
from ti_workflow.domain.actors import AUDITOR
from ti_workflow.errors import FieldError, Forbidden, InvalidData
from ti_workflow.files import MAX_BYTES, FileRefused, FileStore, read_for_case

app = typer.Typer(help="Documents (letters of intent): PDF, at most 10 MiB.", no_args_is_help=True)


def register(app_: typer.Typer, workflows_app: typer.Typer, case_app: typer.Typer) -> None:
    app_.add_typer(app, name="file")
    case_app.command("file")(case_file)


@app.command("put")
@command
def put(
    path: Annotated[Path, typer.Argument(help="The PDF to store.")],
    as_: AsOpt,
    db: DbOpt = None,
) -> None:
    """Store a PDF and print its reference (JSON) for ``letters_of_intent[i].file``."""
    who = actor(as_)
    if who.role == AUDITOR:
        raise Forbidden(who.label, "store a file", "auditors read and never write")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:  # never read what would be refused
            raise FileRefused("too_large", f"{path} is {size} bytes, at most {MAX_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidData(
            "input", [FieldError("PATH", f"cannot read {path}: {exc.strerror}")]
        ) from None
    stored = FileStore(settings(db).files_root).put(data, name=path.name)
    sys.stdout.write(json.dumps(stored.as_ref(), ensure_ascii=False, indent=2) + "\n")


@command
def case_file(
    case_id: Annotated[int, typer.Argument(help="The case number.", min=1)],
    sha256: Annotated[str, typer.Argument(help="The document's SHA-256.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the PDF.")],
    as_: AsOpt = "auditor",
    db: DbOpt = None,
) -> None:
    """Write one of the case's documents (those who may read the case; auditor by default)."""
    stored, data = read_for_case(engine(db), actor(as_), case_id, sha256)
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise InvalidData(
            "output", [FieldError("--out", f"cannot write {out}: {exc.strerror}")]
        ) from None
    err_console.print(f"{stored.name} ({stored.size} bytes) written to {out}", highlight=False)
