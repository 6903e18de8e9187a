"""The candidacy file (the form a territory fills in) and what is derived from it.

Structure is checked whenever the candidate saves a draft (wrong types, unknown
fields, values outside the allowed lists); completeness is a business rule checked
by the ``submit`` guards (see :mod:`ti_workflow.domain.rules`), since a draft may be
incomplete.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ti_workflow.domain.actors import EMAIL_RE
from ti_workflow.errors import FieldError, InvalidData

PRIORITIES = ("ecological_transition", "innovation", "skills", "land")
GOVERNANCE_ROLES = ("elected", "industrial")

Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2_000)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20_000)]
Siren = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{9}$")]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL_RE.pattern)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Perimeter(_Strict):
    members: list[Siren] = Field(default_factory=list, max_length=500)
    single_member_justification: LongText | None = None
    metropole_justification: LongText | None = None


class GovernanceMember(_Strict):
    name: Text = ""
    role: Literal["elected", "industrial"]
    organisation: Text = ""


class Governance(_Strict):
    members: list[GovernanceMember] = Field(default_factory=list, max_length=100)
    extended_governance_justification: LongText | None = None


class FileRef(_Strict):
    """A stored document (``ti_workflow.files``): its content's SHA-256, name and size."""

    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    name: Annotated[
        str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f/\\]+$")
    ]
    size: int = Field(ge=1, strict=True)
    media_type: Literal["application/pdf"] = "application/pdf"


class LetterOfIntent(_Strict):
    signatory: Text = ""
    organisation: Text = ""
    date: dt.date | None = None
    file: FileRef | None = None


class Action(_Strict):
    title: Text = ""
    priority: Literal["ecological_transition", "innovation", "skills", "land"] | None = None
    summary: LongText = ""
    already_started: bool = False


class CandidacyForm(_Strict):
    territory_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)
    ]
    contact_email: Email
    perimeter: Perimeter = Field(default_factory=Perimeter)
    governance: Governance = Field(default_factory=Governance)
    letters_of_intent: list[LetterOfIntent] = Field(default_factory=list, max_length=500)
    action_plan: list[Action] = Field(default_factory=list, max_length=200)


def location(loc: tuple[int | str, ...]) -> str:
    """``('perimeter', 'members', 2)`` -> ``perimeter.members[2]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(root)"


_HINTS = {
    "string_pattern_mismatch": {
        "members": "a SIREN is exactly 9 digits",
        "contact_email": "expected an e-mail address such as ti@example.org",
    },
}


def _describe(err: Any) -> str:
    kind = err["type"]
    field = next((p for p in reversed(err["loc"]) if isinstance(p, str)), "")
    hint = _HINTS.get(kind, {}).get(field)
    got = err.get("input")
    message = hint or err["msg"]
    if kind == "extra_forbidden":
        message = "unknown field (not part of the candidacy file)"
    if kind == "missing":
        return "required field is missing"
    if got is not None and not isinstance(got, dict | list):
        message += f" (got {got!r})"
    return str(message)


def parse_candidacy(data: Any) -> CandidacyForm:
    """Validate a candidacy file; every problem is reported with its field path."""
    if not isinstance(data, dict):
        raise InvalidData(
            "candidacy file",
            [FieldError("(root)", f"expected a JSON object, got {type(data).__name__}")],
        )
    try:
        return CandidacyForm.model_validate(data)
    except ValidationError as exc:
        errors = [FieldError(location(e["loc"]), _describe(e)) for e in exc.errors()]
        raise InvalidData("candidacy file", errors) from None


def normalise(form: CandidacyForm) -> dict[str, Any]:
    """The stored, canonical JSON form of a candidacy file."""
    return form.model_dump(mode="json")
