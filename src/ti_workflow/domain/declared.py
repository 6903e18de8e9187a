"""How the engine uses a declared form: the :class:`Form` it checks saves with, and the
``form_complete`` guard (every required field and row filled) transitions may name."""

from __future__ import annotations

from typing import Any

from ti_workflow.domain.definition import Definition
from ti_workflow.domain.reference import Referential
from ti_workflow.domain.rules import FORMS, Context, Form, guard
from ti_workflow.errors import Rule


def form_of(definition: Definition, reference: Referential) -> Form:
    """The form a definition's saves are checked with: declared, or written in code."""
    spec = definition.form_spec
    if spec is None:
        return FORMS[definition.form]
    what = f"{definition.name} data"
    return Form(
        name=definition.name,
        parse=lambda data: spec.parse(data, reference, what),
        regions=lambda data, ref: (),  # the territory's regions come from a region provider
        title=spec.title,
    )


@guard
def form_complete(ctx: Context) -> list[Rule]:
    """Every required field and the minimum number of rows of the declared form are filled."""
    if ctx.form is None:
        return []
    return [
        Rule("form_incomplete", faq or None, fr, f"{path}: {en}")
        for path, fr, en, faq in ctx.form.missing(ctx.data)
    ]


def form_description(definition: Definition) -> dict[str, Any]:
    """What a client needs to render any workflow's form (``GET /v1/workflows/{name}/form``)."""
    out: dict[str, Any] = {
        "workflow": definition.name,
        "version": definition.version,
        "title": definition.title,
        "declared": definition.form_spec is not None,
        "editable_in": list(definition.editable_in),
    }
    if definition.form_spec is None:
        out["form"] = definition.form
        out["note"] = "this workflow's form is written in code; its fields are not declared"
    else:
        out.update(definition.form_spec.describe())
    return out
