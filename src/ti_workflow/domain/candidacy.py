"""The candidacy file (the form a territory fills in) and what is derived from it.

Structure is checked whenever the candidate saves a draft (wrong types, unknown
fields, values outside the allowed lists); completeness is a business rule checked
by the ``submit`` guards (see :mod:`ti_workflow.domain.rules`), since a draft may be
incomplete.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_serializer,
)
from pydantic_core import PydanticCustomError

from ti_workflow.domain.actors import EMAIL_RE
from ti_workflow.domain.text import clean_text
from ti_workflow.errors import FieldError, InvalidData

PRIORITIES = ("ecological_transition", "innovation", "skills", "land")
GOVERNANCE_ROLES = ("elected", "industrial")
PRIORITY_LABELS_FR = {
    "ecological_transition": "transition écologique et énergétique",
    "innovation": "innovation",
    "skills": "recrutement et compétences",
    "land": "foncier",
}
"""FAQ 1.5: the programme's four priorities, as French text shows them."""
ROLE_LABELS_FR = {"elected": "élu", "industrial": "industriel"}
TERRITORY_BINOME = "territory"
PER_INTERCOMMUNALITY = "per_intercommunality"
BINOME_PENDING = "pending"
GOVERNANCE_MODES = (TERRITORY_BINOME, PER_INTERCOMMUNALITY, BINOME_PENDING)
"""FAQ 4.1: a binôme for the territory; at first one per intercommunality; or none yet
(its identification "ne doit pas devenir un point bloquant"), with how it will be found."""


def _one_line(value: str) -> str:
    try:
        return clean_text(value)
    except ValueError as exc:
        raise PydanticCustomError("text_refused", str(exc)) from None


def _long_text(value: str) -> str:
    try:
        return clean_text(value, multiline=True)
    except ValueError as exc:
        raise PydanticCustomError("text_refused", str(exc)) from None


def _iso_date(value: Any) -> Any:
    """A date is written 2023-07-01 (a JSON string) or is a date: never a number."""
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise PydanticCustomError("date_refused", "expected a date such as 2023-07-01")


Text = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2_000), AfterValidator(_one_line)
]
"""A name or a single-line field: no line break, control or invisible character; NFC."""
LongText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=20_000), AfterValidator(_long_text)
]
"""A long text field: line breaks allowed, other control or invisible characters not; NFC."""
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    AfterValidator(_one_line),
]
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
Siren = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{9}$")]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL_RE.pattern)
]


class _Strict(BaseModel):
    """Strict types (``"yes"`` is not ``true``, ``1`` is not ``"1"``), unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)

    added_later: ClassVar[tuple[str, ...]] = ()
    """Fields added after files were first recorded: left out of the normalised form while
    they hold their default, so a file recorded before them replays unchanged (audit)."""

    @model_serializer(mode="wrap")
    def _without_later_defaults(self, handler: SerializerFunctionWrapHandler) -> Any:
        dumped = handler(self)
        if isinstance(dumped, dict):
            fields = type(self).model_fields
            for key in self.added_later:
                default = fields[key].get_default(call_default_factory=True)
                if key in dumped and dumped[key] == default:
                    del dumped[key]
        return dumped


class Perimeter(_Strict):
    members: list[Siren] = Field(default_factory=list, max_length=500)
    single_member_justification: LongText | None = None
    metropole_justification: LongText | None = None


def omit_none(dumped: Any, *keys: str) -> Any:
    """A dumped form without these optional keys when empty: a field added later leaves the
    files recorded before it (audit replay) exactly in their normalised form."""
    if isinstance(dumped, dict):
        for key in keys:
            if dumped.get(key) is None:
                dumped.pop(key, None)
    return dumped


class GovernanceMember(_Strict):
    name: Text = ""
    role: Literal["elected", "industrial"]
    organisation: Text = ""
    represents: Siren | None = None
    """Governance ``per_intercommunality``: the SIREN of the member groupement whose binôme
    this member belongs to (FAQ 4.1)."""
    email: Email | None = None
    """Optional: a member with an e-mail may file the territory's amendments (FAQ 2.3)."""
    added_later = ("represents", "email")


class Governance(_Strict):
    mode: Literal["territory", "per_intercommunality", "pending"] = "territory"
    members: list[GovernanceMember] = Field(default_factory=list, max_length=100)
    extended_governance_justification: LongText | None = None
    binome_search_plan: LongText | None = None
    """Governance ``pending``: how the territory's binôme will be found (FAQ 4.1)."""
    added_later = ("mode", "binome_search_plan")


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
    date: IsoDate | None = None
    signatory_role: Literal["elected", "industrial", "other"] | None = None
    """What the signatory stands for, when no governance member can be matched (FAQ 4.5)."""
    file: FileRef | None = None
    added_later = ("signatory_role", "file")


class Action(_Strict):
    title: Text = ""
    priority: Literal["ecological_transition", "innovation", "skills", "land"] | None = None
    summary: LongText = ""
    already_started: bool = False
    owner: Text = ""
    """The project owner (porteur), any structure of local industrial development (FAQ 3.1)."""
    duration_months: StrictInt | None = Field(default=None, ge=1, le=240)
    phases: list[Text] = Field(default_factory=list, max_length=50)
    """FAQ 3.1: the complex projects are split into phases (advised beyond four years)."""
    added_later = ("owner", "duration_months", "phases")


class CandidacyForm(_Strict):
    territory_name: Name
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
        "represents": "a SIREN is exactly 9 digits",
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
