"""Wires the file store into an engine (called by ``bootstrap.open_engine``).

Case data may only refer to documents the store holds, at the size the reference
states: a hook checks every reference of a create or update inside its transaction, so
a refusal stores nothing. References carried over unchanged are checked for presence
and size; new ones are also hashed.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from ti_workflow.engine import Change, Engine
from ti_workflow.errors import FieldError, InvalidData
from ti_workflow.files.refs import file_refs, referenced_hashes
from ti_workflow.settings import Settings

PROBLEMS = {
    "missing": "no stored file has this SHA-256; upload the PDF first "
    "(POST /v1/files or 'ti-workflow file put') and use the reference it returns",
    "altered": "the stored file with this SHA-256 is damaged; upload the PDF again",
    "size_mismatch": "the size does not match the stored file with this SHA-256",
}


def install(engine: Engine, settings: Settings) -> None:
    """The store itself is given to the engine by ``open_engine`` (``engine.files``)."""
    engine.hooks.insert(0, reference_check(engine))


def reference_check(engine: Engine) -> Callable[[Connection, Change], None]:
    def check(conn: Connection, change: Change) -> None:
        before = referenced_hashes(change.before.data) if change.before else set()
        errors = []
        for event in change.events:
            data = event.payload.get("data")
            if data is None:
                continue
            for path, ref in file_refs(data):
                known = ref.get("sha256") in before
                problem = engine.files.check(ref, content=not known)
                if problem is not None:
                    errors.append(FieldError(path, f"{PROBLEMS[problem]} ({ref.get('sha256')})"))
        if errors:
            raise InvalidData(f"{change.definition.name} file", errors)

    return check
