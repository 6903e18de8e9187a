"""Reading a case's document with the case's own scope (the console and the API share it).

A document is served only to an actor who may read the case (the engine's scope: anyone
else gets the same ``NotFound`` as for an unknown case) and only if the case's history
refers to it: a hash known from another case opens nothing here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ti_workflow.domain.actors import Actor
from ti_workflow.errors import NotFound
from ti_workflow.files.refs import file_refs
from ti_workflow.files.store import PDF, StoredFile

if TYPE_CHECKING:
    from ti_workflow.engine import Engine


def read_for_case(
    engine: Engine, actor: Actor, case_id: int, sha256: str
) -> tuple[StoredFile, bytes]:
    """The document and its bytes; ``NotFound`` if out of scope or not this case's."""
    name = None
    for event in engine.history(case_id, actor):  # the engine checks the scope
        for _, ref in file_refs(event.payload):
            if ref.get("sha256") == sha256:
                name = str(ref.get("name") or "document.pdf")  # the latest name wins
    if name is None:
        raise NotFound(f"file of case {case_id}", sha256)
    data = engine.files.read(sha256)
    return StoredFile(sha256, name, len(data), PDF), data
