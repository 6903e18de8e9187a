"""The files of an amendment to a labelled territory (FAQ 2.3): perimeter or governance.

Like the candidacy file, structure is checked on every save (types, unknown fields,
SIREN and INSEE code shapes); whether the change is acceptable is decided by the
``submit`` guards of :mod:`ti_workflow.domain.amendments`, since a draft may be
incomplete.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    model_serializer,
)

from ti_workflow.domain.candidacy import (
    Email,
    GovernanceMember,
    IsoDate,
    LongText,
    Name,
    Siren,
    Text,
    _describe,
    location,
    omit_none,
)
from ti_workflow.domain.reference import Referential
from ti_workflow.errors import FieldError, InvalidData

PERIMETER_AMENDMENT = "perimeter_amendment"
GOVERNANCE_AMENDMENT = "governance_amendment"
AMENDMENT_WORKFLOWS = (PERIMETER_AMENDMENT, GOVERNANCE_AMENDMENT)

TerritoryId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$"
    ),
]
Insee = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9][0-9AB][0-9]{3}$")]


class _Amendment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)

    territory_id: TerritoryId
    contact_email: Email | None = None
    effective_on: IsoDate | None = None
    """First day the change is in force (Europe/Paris); none: the day of approval."""
    new_name: Name | None = None
    justification: LongText = ""


class PerimeterAmendmentForm(_Amendment):
    add: list[Siren] = Field(default_factory=list, max_length=200)
    remove: list[Siren] = Field(default_factory=list, max_length=200)
    add_communes: list[Insee] = Field(default_factory=list, max_length=500)
    remove_communes: list[Insee] = Field(default_factory=list, max_length=500)
    single_member_justification: LongText | None = None
    """FAQ 2.2: a territory left with one intercommunality justifies its critical size."""
    metropole_justification: LongText | None = None
    """FAQ 2.4: a métropole joins only by exception, with a justification."""

    @model_serializer(mode="wrap")
    def _without_absent_justification(self, handler: SerializerFunctionWrapHandler) -> Any:
        return omit_none(handler(self), "single_member_justification")


class GovernanceAmendmentForm(_Amendment):
    add_members: list[GovernanceMember] = Field(default_factory=list, max_length=100)
    remove_members: list[Text] = Field(default_factory=list, max_length=100)
    """Names of members of the governance in force who leave it (replaced or not)."""
    extended_governance_justification: LongText | None = None


_HINTS = {
    "add": "a SIREN is exactly 9 digits",
    "remove": "a SIREN is exactly 9 digits",
    "add_communes": "an INSEE commune code is 5 characters, e.g. 74081 or 2A004",
    "remove_communes": "an INSEE commune code is 5 characters, e.g. 74081 or 2A004",
    "effective_on": "expected a date such as 2024-03-01",
}


def _parse(model: type[_Amendment], what: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidData(
            what, [FieldError("(root)", f"expected a JSON object, got {type(data).__name__}")]
        )
    try:
        return model.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        errors = []
        for e in exc.errors():
            field = next((p for p in e["loc"] if isinstance(p, str)), "")
            message = _describe(e)
            if e["type"] == "extra_forbidden" and len(e["loc"]) == 1:
                allowed = ", ".join(model.model_fields)
                message = f"unknown field of a {what} (allowed: {allowed})"
            elif e["type"] == "extra_forbidden":
                message = "unknown field"
            elif field in _HINTS and e["type"] != "missing":
                got = e.get("input")
                message = _HINTS[field] + (f" (got {got!r})" if got is not None else "")
            errors.append(FieldError(location(e["loc"]), message))
        raise InvalidData(what, errors) from None


def parse_perimeter_amendment(data: Any) -> dict[str, Any]:
    return _parse(PerimeterAmendmentForm, "perimeter amendment file", data)


def parse_governance_amendment(data: Any) -> dict[str, Any]:
    return _parse(GovernanceAmendmentForm, "governance amendment file", data)


def changed_sirens(data: Mapping[str, Any]) -> list[str]:
    return [*(data.get("add") or []), *(data.get("remove") or [])]


def amendment_regions(data: Mapping[str, Any], reference: Referential) -> tuple[str, ...]:
    """Regions of the groupements added or removed; the territory's own regions and those of
    communes moved are added from the database by the territories package."""
    return reference.regions_of(changed_sirens(data))


def amendment_title(kind: str, data: Mapping[str, Any]) -> str:
    label = "périmètre" if kind == PERIMETER_AMENDMENT else "gouvernance"
    return f"{data.get('territory_id', '?')} : modification de {label}"
