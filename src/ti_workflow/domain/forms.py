"""Declared forms: the case data a workflow file describes under ``form:``.

A workflow either names a form written in code (``form: candidacy``) or declares its
fields (``form: {title_field:, fields:}``). The loader turns a declaration into the frozen
:class:`FormSpec` below; the engine checks every save against it (:meth:`FormSpec.parse`:
structure, types and limits, every failure listed at once with its field path, in French
and English) and the ``form_complete`` guard checks, at the transitions that name it, that
every required field and row is there (:meth:`FormSpec.missing`). A draft may be incomplete,
never malformed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from stdnum.fr import siren as siren_number

from ti_workflow.domain.actors import EMAIL_RE
from ti_workflow.domain.reference import Referential
from ti_workflow.errors import FieldError, InvalidData

TEXT, LONG_TEXT, NUMBER, AMOUNT, DATE, EMAIL, CHOICE, SIREN, ROWS = (
    "text", "long_text", "number", "amount_eur", "date", "email", "choice", "siren", "rows",
)  # fmt: skip
FIELD_TYPES = (TEXT, LONG_TEXT, NUMBER, AMOUNT, DATE, EMAIL, CHOICE, SIREN, ROWS)
DEFAULT_MAX_LENGTH = {TEXT: 2_000, LONG_TEXT: 20_000, EMAIL: 320}
MAX_ROWS = 500
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NBSP = "\u00a0"


@dataclass(frozen=True)
class Choice:
    value: str
    label_fr: str


@dataclass(frozen=True)
class FormField:
    """One field; a ``rows`` field repeats its ``fields`` (``min_rows``..``max_rows`` rows)."""

    name: str
    type: str
    label_fr: str
    required: bool = False
    help_fr: str = ""
    faq: str = ""
    choices: tuple[Choice, ...] = ()
    max_length: int | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    min_date: str | None = None
    max_date: str | None = None
    min_rows: int = 0
    max_rows: int = MAX_ROWS
    fields: tuple[FormField, ...] = ()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "label_fr": self.label_fr,
            "required": self.required,
        }
        if self.help_fr:
            out["help_fr"] = self.help_fr
        if self.faq:
            out["faq"] = self.faq
        if self.choices:
            out["choices"] = [{"value": c.value, "label_fr": c.label_fr} for c in self.choices]
        if self.type in DEFAULT_MAX_LENGTH:
            out["max_length"] = self.max_length or DEFAULT_MAX_LENGTH[self.type]
        for key, value in (("minimum", self.minimum), ("maximum", self.maximum)):
            if value is not None:
                out[key] = _json_number(value)
        if self.min_date:
            out["min_date"] = self.min_date
        if self.max_date:
            out["max_date"] = self.max_date
        if self.type == ROWS:
            out["min_rows"] = self.min_rows
            out["max_rows"] = self.max_rows
            out["fields"] = [f.describe() for f in self.fields]
        return out


@dataclass(frozen=True)
class FormSpec:
    fields: tuple[FormField, ...]
    title_field: str = ""

    def describe(self) -> dict[str, Any]:
        return {"title_field": self.title_field, "fields": [f.describe() for f in self.fields]}

    def title(self, data: Mapping[str, Any]) -> str:
        return str(data.get(self.title_field, "")) if self.title_field else ""

    def parse(self, data: Any, reference: Referential, what: str = "case data") -> dict[str, Any]:
        """The normalised data, or :class:`InvalidData` listing every structural failure.

        Unfilled fields (absent, null, empty text) are dropped; required ones are checked by
        the ``form_complete`` guard at the transitions that need them."""
        errors: list[FieldError] = []
        if not isinstance(data, dict):
            raise InvalidData(
                what,
                [
                    _err(
                        "(root)",
                        f"expected a JSON object, got {type(data).__name__}",
                        "un objet JSON est attendu",
                    )
                ],
            )
        clean = _parse_group(self.fields, data, "", reference, errors)
        if errors:
            raise InvalidData(what, errors)
        return clean

    def missing(self, data: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
        """``(path, message_fr, message_en, faq)`` of every required field or row not filled."""
        out: list[tuple[str, str, str, str]] = []
        _missing(self.fields, data, "", "", out)
        return out


def _err(location: str, en: str, fr: str) -> FieldError:
    return FieldError(location, en, fr)


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _fr_number(value: Decimal) -> str:
    """1234567.5 -> '1 234 567,50' (non-breaking spaces, French decimal comma)."""
    integral = value == value.to_integral_value()
    text = f"{value:,.0f}" if integral else f"{value:,.2f}"
    return text.replace(",", NBSP).replace(".", ",")


def _fr_date(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%d/%m/%Y")


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _parse_group(
    fields: tuple[FormField, ...],
    data: Mapping[str, Any],
    prefix: str,
    reference: Referential,
    errors: list[FieldError],
) -> dict[str, Any]:
    known = {f.name for f in fields}
    for key in data:
        if key not in known:
            errors.append(
                _err(
                    f"{prefix}{key}",
                    f"unknown field (allowed: {', '.join(f.name for f in fields)})",
                    "champ inconnu de ce formulaire",
                )
            )
    clean: dict[str, Any] = {}
    for f in fields:
        value = data.get(f.name)
        if _empty(value):
            continue
        path = f"{prefix}{f.name}"
        parsed = _parse_value(f, value, path, reference, errors)
        if parsed is not None:
            clean[f.name] = parsed
    return clean


def _parse_value(
    f: FormField, value: Any, path: str, reference: Referential, errors: list[FieldError]
) -> Any:
    def bad(en: str, fr: str) -> None:
        got = value if not isinstance(value, dict | list) else type(value).__name__
        errors.append(_err(path, f"{en} (got {got!r})", f"« {f.label_fr} »{NBSP}: {fr}"))

    if f.type == ROWS:
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            bad("expected a list of objects (rows)", "une liste de lignes est attendue")
            return None
        if len(value) > f.max_rows:
            errors.append(
                _err(
                    path,
                    f"at most {f.max_rows} rows, got {len(value)}",
                    f"« {f.label_fr} »{NBSP}: {f.max_rows} lignes au plus ({len(value)} données)",
                )
            )
            return None
        return [
            _parse_group(f.fields, row, f"{path}[{i}].", reference, errors)
            for i, row in enumerate(value)
        ]
    if f.type in (TEXT, LONG_TEXT, EMAIL):
        if not isinstance(value, str):
            bad("expected text", "un texte est attendu")
            return None
        text = value.strip()
        limit = f.max_length or DEFAULT_MAX_LENGTH[f.type]
        if len(text) > limit:
            errors.append(
                _err(
                    path,
                    f"at most {limit} characters, got {len(text)}",
                    f"« {f.label_fr} »{NBSP}: {_fr_number(Decimal(limit))} caractères au plus",
                )
            )
            return None
        if f.type == EMAIL:
            if not EMAIL_RE.match(text):
                bad("expected an e-mail address", "une adresse électronique est attendue")
                return None
            return text.lower()
        return text
    if f.type in (NUMBER, AMOUNT):
        return _parse_number(f, value, path, errors, bad)
    if f.type == DATE:
        if not isinstance(value, str) or not ISO_DATE.match(value):
            bad("expected a date such as 2024-03-01", "une date est attendue (AAAA-MM-JJ)")
            return None
        try:
            date.fromisoformat(value)
        except ValueError:
            bad("not a calendar date", "cette date n'existe pas")
            return None
        if f.min_date and value < f.min_date:
            bad(
                f"on or after {f.min_date}",
                f"la date doit être au plus tôt le {_fr_date(f.min_date)}",
            )
            return None
        if f.max_date and value > f.max_date:
            bad(
                f"on or before {f.max_date}",
                f"la date doit être au plus tard le {_fr_date(f.max_date)}",
            )
            return None
        return value
    if f.type == CHOICE:
        allowed = [c.value for c in f.choices]
        if value not in allowed:
            bad(
                f"expected one of {', '.join(allowed)}",
                "valeur hors de la liste ("
                + ", ".join(f"« {c.label_fr} »" for c in f.choices)
                + ")",
            )
            return None
        return value
    # SIREN of a groupement
    if not isinstance(value, str) or not value.strip().isdigit() or len(value.strip()) != 9:
        bad("a SIREN is exactly 9 digits", "un numéro SIREN compte exactement 9 chiffres")
        return None
    siren = value.strip()
    if not siren_number.is_valid(siren):
        bad("not a valid SIREN (check digit)", "ce numéro SIREN n'est pas valide (clé)")
        return None
    if reference.groupement(siren) is None:
        bad(
            "not a groupement (EPCI) of the reference data",
            "ce SIREN n'est pas celui d'une intercommunalité du référentiel",
        )
        return None
    return siren


def _parse_number(f: FormField, value: Any, path: str, errors: list[FieldError], bad: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        bad("expected a number", "un nombre est attendu")
        return None
    try:
        number = Decimal(str(value).strip().replace(NBSP, "").replace(" ", ""))
    except InvalidOperation:
        bad("expected a number", "un nombre est attendu")
        return None
    if not number.is_finite():
        bad("expected a finite number", "un nombre est attendu")
        return None
    unit = f"{NBSP}€" if f.type == AMOUNT else ""
    if f.type == AMOUNT and number != number.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP):
        bad("an amount has at most 2 decimals (cents)", "un montant a au plus deux décimales")
        return None
    lowest = f.minimum if f.minimum is not None else (Decimal(0) if f.type == AMOUNT else None)
    if lowest is not None and number < lowest:
        bad(f"at least {lowest}", f"la valeur minimale est {_fr_number(lowest)}{unit}")
        return None
    if f.maximum is not None and number > f.maximum:
        bad(f"at most {f.maximum}", f"la valeur maximale est {_fr_number(f.maximum)}{unit}")
        return None
    return _json_number(number)


def _missing(
    fields: tuple[FormField, ...],
    data: Mapping[str, Any],
    prefix: str,
    prefix_fr: str,
    out: list[tuple[str, str, str, str]],
) -> None:
    for f in fields:
        path = f"{prefix}{f.name}"
        label = f"{prefix_fr}« {f.label_fr} »"
        value = data.get(f.name)
        if f.type == ROWS:
            rows = value if isinstance(value, list) else []
            needed = max(f.min_rows, 1 if f.required else 0)
            if len(rows) < needed:
                plural = "s" if needed > 1 else ""
                out.append(
                    (
                        path,
                        f"{label}{NBSP}: au moins {needed} ligne{plural} "
                        f"(actuellement {len(rows)})",
                        f"at least {needed} row(s) needed, got {len(rows)}",
                        f.faq,
                    )
                )
            for i, row in enumerate(rows):
                if isinstance(row, Mapping):
                    _missing(
                        f.fields,
                        row,
                        f"{path}[{i}].",
                        f"{label}, ligne n{NBSP}°{NBSP}{i + 1}, ",
                        out,
                    )
        elif f.required and _empty(value):
            out.append(
                (
                    path,
                    f"{label}{NBSP}: champ obligatoire non rempli",
                    "required field is empty",
                    f.faq,
                )
            )
