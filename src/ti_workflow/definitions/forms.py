"""``form:`` declared in a workflow file -> frozen :class:`FormSpec` (every error collected)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from ti_workflow.domain.forms import (
    CHOICE,
    DATE,
    DEFAULT_MAX_LENGTH,
    FIELD_TYPES,
    ISO_DATE,
    MAX_ROWS,
    NUMBER,
    ROWS,
    Choice,
    FormField,
    FormSpec,
)

FORM_KEYS = ("title_field", "fields")
FIELD_KEYS = (
    "type", "label_fr", "help_fr", "faq", "required", "choices", "max_length",
    "minimum", "maximum", "min_date", "max_date", "min_rows", "max_rows", "fields",
)  # fmt: skip
NAME_OK = "letters, digits and '_' only, starting with a letter"

Error = Callable[[str, str], None]


def _is_name(value: Any) -> bool:
    return (
        isinstance(value, str)
        and bool(value)
        and value[0].isalpha()
        and value.replace("_", "a").isalnum()
        and value.isascii()
    )


def parse_form(raw: Any, error: Error, path: str = "form") -> FormSpec | None:
    if not isinstance(raw, dict):
        error(path, "a declared form is a mapping (title_field:, fields:)")
        return None
    for key in raw:
        if key not in FORM_KEYS:
            error(f"{path}.{key}", f"unknown key (allowed: {', '.join(FORM_KEYS)})")
    fields = _fields(raw.get("fields"), error, f"{path}.fields", depth=0)
    title = raw.get("title_field", "")
    if title and not any(f.name == title and f.type != ROWS for f in fields):
        error(f"{path}.title_field", f"{title!r} is not a top-level field of this form")
    return FormSpec(fields=fields, title_field=str(title or ""))


def _fields(raw: Any, error: Error, path: str, depth: int) -> tuple[FormField, ...]:
    if not isinstance(raw, dict) or not raw:
        error(path, "a non-empty mapping of field name to its description is needed")
        return ()
    out = []
    for name, spec in raw.items():
        fpath = f"{path}.{name}"
        if not _is_name(name):
            error(fpath, f"field name {name!r}: {NAME_OK}")
            continue
        if not isinstance(spec, dict):
            error(fpath, "must be a mapping (type:, label_fr:, required:...)")
            continue
        field = _field(str(name), spec, error, fpath, depth)
        if field is not None:
            out.append(field)
    return tuple(out)


def _field(
    name: str, spec: dict[str, Any], error: Error, path: str, depth: int
) -> FormField | None:
    for key in spec:
        if key not in FIELD_KEYS:
            error(f"{path}.{key}", f"unknown key (allowed: {', '.join(FIELD_KEYS)})")
    ftype = spec.get("type")
    if ftype == "file":
        error(
            f"{path}.type",
            "type 'file' is not available: this installation has no files store "
            "(declare the documents as text references)",
        )
        return None
    if ftype not in FIELD_TYPES:
        error(f"{path}.type", f"unknown type {ftype!r} (known: {', '.join(FIELD_TYPES)})")
        return None
    label = spec.get("label_fr")
    if not isinstance(label, str) or not label.strip():
        error(f"{path}.label_fr", "every field has a French label (label_fr:)")
        label = name
    for key in ("help_fr", "faq"):
        if key in spec and not isinstance(spec[key], str | int | float):
            error(f"{path}.{key}", "must be text")
    required = spec.get("required", False)
    if not isinstance(required, bool):
        error(f"{path}.required", f"must be true or false, got {required!r}")
        required = False

    def not_for(keys: tuple[str, ...], allowed: tuple[str, ...]) -> None:
        for key in keys:
            if key in spec and ftype not in allowed:
                error(f"{path}.{key}", f"only for a field of type {' or '.join(allowed)}")

    not_for(("choices",), (CHOICE,))
    not_for(("max_length",), tuple(DEFAULT_MAX_LENGTH))
    not_for(("minimum", "maximum"), (NUMBER, "amount_eur"))
    not_for(("min_date", "max_date"), (DATE,))
    not_for(("min_rows", "max_rows", "fields"), (ROWS,))

    choices: list[Choice] = []
    if ftype == CHOICE:
        raw = spec.get("choices")
        if not isinstance(raw, dict) or not raw:
            error(f"{path}.choices", "a choice field maps each value to its French label")
        else:
            for value, clabel in raw.items():
                if not _is_name(value):
                    error(f"{path}.choices.{value}", f"choice value {value!r}: {NAME_OK}")
                elif not isinstance(clabel, str) or not clabel.strip():
                    error(f"{path}.choices.{value}", "each choice has a French label")
                else:
                    choices.append(Choice(str(value), clabel.strip()))

    def integer(key: str, low: int, high: int) -> int | None:
        value = spec.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            error(f"{path}.{key}", f"must be a whole number from {low} to {high}, got {value!r}")
            return None
        return value

    def number(key: str) -> Decimal | None:
        value = spec.get(key)
        if value is None:
            return None
        try:
            if isinstance(value, bool):
                raise InvalidOperation
            return Decimal(str(value))
        except InvalidOperation:
            error(f"{path}.{key}", f"must be a number, got {value!r}")
            return None

    def day(key: str) -> str | None:
        value = spec.get(key)
        if value is None:
            return None
        text = value.isoformat() if hasattr(value, "isoformat") else value
        if not isinstance(text, str) or not ISO_DATE.match(text):
            error(f"{path}.{key}", f"must be a date such as 2024-01-01, got {value!r}")
            return None
        return text

    max_length = integer("max_length", 1, 100_000)
    minimum, maximum = number("minimum"), number("maximum")
    if minimum is not None and maximum is not None and minimum > maximum:
        error(f"{path}.minimum", f"minimum {minimum} is above maximum {maximum}")
    min_date, max_date = day("min_date"), day("max_date")
    if min_date and max_date and min_date > max_date:
        error(f"{path}.min_date", f"min_date {min_date} is after max_date {max_date}")
    min_rows = integer("min_rows", 0, MAX_ROWS) or 0
    max_rows = integer("max_rows", 1, MAX_ROWS) or MAX_ROWS
    if min_rows > max_rows:
        error(f"{path}.min_rows", f"min_rows {min_rows} is above max_rows {max_rows}")
    sub: tuple[FormField, ...] = ()
    if ftype == ROWS:
        if depth >= 1:
            error(f"{path}.type", "rows cannot be nested in rows")
            return None
        sub = _fields(spec.get("fields"), error, f"{path}.fields", depth + 1)
    return FormField(
        name=name,
        type=ftype,
        label_fr=str(label).strip(),
        required=required,
        help_fr=str(spec.get("help_fr", "")).strip(),
        faq=str(spec.get("faq", "")).strip(),
        choices=tuple(choices),
        max_length=max_length,
        minimum=minimum,
        maximum=maximum,
        min_date=min_date,
        max_date=max_date,
        min_rows=min_rows,
        max_rows=max_rows,
        fields=sub,
    )
