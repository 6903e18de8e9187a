"""Checking what an actor sends with a trigger against the transition's declared payload."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

from ti_workflow.domain.definition import PayloadField, Transition
from ti_workflow.domain.text import text_problem
from ti_workflow.errors import FieldError, InvalidData


def declared_fields(t: Transition) -> tuple[PayloadField, ...]:
    """The transition's fields, plus ``reason`` (optional everywhere, required where declared)."""
    reason = PayloadField("reason", "text", required=t.reason_required)
    return (*t.payload, reason) if t.payload_field("reason") is None else t.payload


_FIELDS: dict[int, tuple[Transition, dict[str, PayloadField], bool]] = {}


def _fields(t: Transition) -> tuple[dict[str, PayloadField], bool]:
    """The declared fields by name, and whether any is required: computed once per
    transition object (keyed by identity: hashing a transition costs more than this)."""
    found = _FIELDS.get(id(t))
    if found is None or found[0] is not t:
        fields = {f.name: f for f in declared_fields(t)}
        found = _FIELDS[id(t)] = (t, fields, any(f.required for f in fields.values()))
    return found[1], found[2]


def validate_payload(t: Transition, payload: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(payload, Mapping):
        raise InvalidData(
            f"payload of {t.trigger!r}",
            [FieldError("(root)", f"expected a JSON object, got {type(payload).__name__}")],
        )
    fields, required = _fields(t)
    if not payload and not required:
        return {}
    errors = [
        FieldError(key, f"unknown field (allowed: {', '.join(fields)})")
        for key in payload
        if key not in fields
    ]
    clean: dict[str, Any] = {}
    for name, spec in fields.items():
        value = payload.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if spec.required:
                what = "a reason is required" if name == "reason" else "required field is missing"
                errors.append(FieldError(name, what))
            continue
        problem, converted = _check(spec, value)
        if problem:
            errors.append(FieldError(name, problem))
        else:
            clean[name] = converted
    if errors:
        raise InvalidData(f"payload of {t.trigger!r}", errors)
    return clean


def _check(spec: PayloadField, value: Any) -> tuple[str | None, Any]:
    if spec.type in ("text", "string"):
        if not isinstance(value, str):
            return f"expected text, got {type(value).__name__}", None
        if len(value) > spec.max_length:
            return f"too long ({len(value)} characters, at most {spec.max_length})", None
        problem = text_problem(value, multiline=spec.type == "text")
        if problem:
            return problem, None
        return None, unicodedata.normalize("NFC", value.strip())
    if spec.type == "choice":
        if not isinstance(value, str) or value not in spec.choices:
            return f"{value!r} is not allowed (allowed: {', '.join(spec.choices)})", None
        return None, value
    if spec.type == "boolean":
        if not isinstance(value, bool):
            return f"expected true or false, got {value!r}", None
        return None, value
    if spec.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected a whole number, got {value!r}", None
        return None, value
    if spec.type == "date":
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            return None, date.fromisoformat(value).isoformat()
        except ValueError:
            return f"expected a date such as 2023-09-22, got {value!r}", None
    return f"unsupported field type {spec.type!r}", None
