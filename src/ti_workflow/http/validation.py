"""FastAPI's request validation errors, told the project's way: path, problem, what is allowed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from stdnum.fr import siren as siren_number

from ti_workflow.domain.candidacy import CandidacyForm, location
from ti_workflow.domain.text import nul_paths, text_problem
from ti_workflow.errors import FieldError, InvalidData

_HINTS = {
    "members": "a SIREN is exactly 9 digits",
    "represents": "a SIREN is exactly 9 digits",
    "contact_email": "expected an e-mail address such as ti@example.org",
}


def _where(loc: Sequence[int | str]) -> str:
    parts = tuple(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
        return location(parts) if parts else "(body)"
    return location(parts)


def _message(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (not allowed here)"
    field = next((p for p in reversed(err["loc"]) if isinstance(p, str)), "")
    message = str(err["msg"])
    if kind == "string_pattern_mismatch" and field in _HINTS:
        message = _HINTS[field]
    got = err.get("input")
    if got is not None and not isinstance(got, dict | list) and kind != "json_invalid":
        text = repr(got)
        message += f" (got {text[:80]}{'...' if len(text) > 80 else ''})"
    return message


def describe_validation(errors: Sequence[Any]) -> tuple[str, str, list[dict[str, str]]]:
    """``(problem slug, detail, field errors)``: malformed JSON is 400, the rest 422."""
    if any(e["type"] == "json_invalid" for e in errors):
        e = next(e for e in errors if e["type"] == "json_invalid")
        where = e.get("ctx", {}).get("error", "")
        detail = f"the body is not valid JSON ({where})" if where else "the body is not valid JSON"
        return "malformed-request", detail, [{"location": "(body)", "message": detail}]
    fields = [{"location": _where(e["loc"]), "message": _message(e)} for e in errors]
    listed = "; ".join(f"{f['location']}: {f['message']}" for f in fields[:10])
    more = f" (and {len(fields) - 10} more)" if len(fields) > 10 else ""
    return "invalid-data", f"{len(fields)} invalid field(s): {listed}{more}", fields


def check_sirens(form: CandidacyForm, prefix: str) -> None:
    """Refuse a SIREN whose check digit is wrong at once, naming the field (FAQ 2.1)."""
    errors = [
        FieldError(
            f"{prefix}perimeter.members[{i}]",
            f"{siren!r} is not a valid SIREN (wrong check digit) / "
            f"{siren} n'est pas un numéro SIREN valide (clé de contrôle incorrecte)",
        )
        for i, siren in enumerate(form.perimeter.members)
        if not siren_number.is_valid(siren)
    ]
    if errors:
        raise InvalidData("candidacy file", errors)


async def refuse_bad_text(request: Request) -> None:
    """Before any route: no NUL, control or invisible character in the URL's parameters, and
    no NUL anywhere in a JSON body (PostgreSQL cannot store it; see docs/input-rules.md).
    The field rules of each body (single-line or long text) are the domain models'."""
    errors = [
        FieldError(f"{where}.{_shown(name)}", problem)
        for where, items in (
            ("path", request.path_params.items()),
            ("query", request.query_params.multi_items()),
        )
        for name, value in items
        if (problem := text_problem(str(name)) or text_problem(str(value)))
    ]
    if request.method in ("POST", "PUT", "PATCH") and "json" in request.headers.get(
        "content-type", ""
    ):
        body = await request.body()
        if b"\\u0000" in body:
            try:
                value = json.loads(body)
            except ValueError:
                value = None  # malformed JSON: FastAPI answers 400
            errors += [
                FieldError(_shown(p), "contains the NUL character (U+0000), which no text may hold")
                for p in nul_paths(value)
            ]
    if errors:
        raise InvalidData("request", errors[:20])


def _shown(text: str) -> str:
    return text.encode("unicode_escape").decode("ascii") if text_problem(text) else text
