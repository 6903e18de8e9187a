"""Request and response bodies, as documented in the OpenAPI document.

Requests are strict (unknown fields refused, no type coercion); the candidacy file
itself is the domain's own model, so the API and the CLI accept exactly the same files.
Responses are built from the shared views (``ti_workflow.views``) and documented here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ti_workflow.domain.candidacy import CandidacyForm

CANDIDACY_EXAMPLE: dict[str, Any] = {
    "territory_name": "Vallée de l'Arve",
    "contact_email": "ti@arve.example.org",
    "perimeter": {"members": ["200000172", "200033116"]},
    "governance": {
        "members": [
            {"name": "Mme Élue", "role": "elected", "organisation": "CC Faucigny-Glières"},
            {"name": "M. Industriel", "role": "industrial", "organisation": "Décolletage SA"},
        ]
    },
    "letters_of_intent": [
        {"signatory": "Mme Élue", "organisation": "CC Faucigny-Glières", "date": "2023-07-01"}
    ],
    "action_plan": [
        {
            "title": "Campus des métiers",
            "priority": "skills",
            "summary": "",
            "already_started": False,
        }
    ],
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateCase(_Strict):
    """A new candidacy draft, owned by the calling candidate."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"workflow": "candidacy", "campaign": "ti-2023-2027", "data": CANDIDACY_EXAMPLE}
            ]
        },
    )

    workflow: str = Field(default="candidacy", max_length=100, examples=["candidacy"])
    campaign: str = Field(max_length=100, examples=["ti-2023-2027"])
    data: CandidacyForm


CASE_EXAMPLE: dict[str, Any] = {
    "id": 1,
    "workflow": "candidacy",
    "campaign": "ti-2023-2027",
    "definition_version": "3d297409753d0220a9fd1ad2521aa44bff2b1c08f3d23f90b210269a3b8664ed",
    "state": "submitted",
    "version": 2,
    "regions": ["84"],
    "title": "Vallée de l'Arve",
    "owner": "ti@arve.example.org",
    "created_at": "2023-07-03T08:00:00+00:00",
    "updated_at": "2023-07-03T08:05:00+00:00",
    "events": 2,
    "head_hash": "5aa74e1b64f27c0dc7ae5e0096534dc765c2b5af98145af7bf862997a43b21cf",
    "data": CANDIDACY_EXAMPLE,
    "facts": {"regions": ["84"]},
}


class CaseOut(BaseModel):
    """A case. Its ``version`` is also the response's ``ETag`` (``"3"``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [CASE_EXAMPLE]})

    id: int
    workflow: str
    campaign: str
    definition_version: str
    state: str = Field(examples=["draft"])
    version: int
    regions: list[str] = Field(examples=[["84"]])
    title: str
    owner: str | None
    created_at: str
    updated_at: str
    events: int
    head_hash: str
    data: dict[str, Any] | None = None
    facts: dict[str, Any] | None = None


class CasePage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[CaseOut]


class EventOut(BaseModel):
    case_id: int
    seq: int
    trigger: str
    source: str | None
    dest: str
    actor: str
    role: str
    at: str
    payload: dict[str, Any]
    annotations: dict[str, Any]
    definition_version: str
    prev_hash: str
    hash: str


class RuleOut(BaseModel):
    code: str
    faq: str | None
    message_fr: str
    message_en: str
    severity: str = Field(
        default="error", description="error: refuses the step; warning: shown, not refusing"
    )


class FireOut(BaseModel):
    case: CaseOut
    events: list[EventOut]
    warnings: list[RuleOut] = Field(
        default_factory=list,
        description="Non-blocking rules met by the step (also in the events' annotations)",
    )


class TriggerOut(BaseModel):
    trigger: str
    dest: str
    label_fr: str
    allowed: bool
    refusal: str | None
    failed_rules: list[RuleOut]
    payload_fields: list[str]
    reason_required: bool
    warnings: list[RuleOut] = Field(default_factory=list)


class HistoryOut(BaseModel):
    case_id: int
    events: list[EventOut]


class Instant(BaseModel):
    utc: str = Field(examples=["2023-06-22T22:00:00+00:00"])
    local: str = Field(examples=["2023-06-23T00:00:00+02:00"])


class DatedParameter(BaseModel):
    name: str
    date: str
    day_starts: Instant
    day_ends: Instant


class CampaignOut(BaseModel):
    id: str
    name: str
    timezone: str
    opens_on: str
    closes_on: str
    opens_at: Instant
    closes_at: Instant
    open_now: bool
    parameters: dict[str, Any]
    timetable: list[DatedParameter]


class MeOut(BaseModel):
    id: int
    name: str
    role: str
    region: str | None
    email: str | None
    actor: str
    created_at: str


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    detail: str = ""


# Trigger payloads are declared per transition in the workflow files; the engine
# checks them (unknown fields, types, choices) and names each wrong field.
PAYLOAD_EXAMPLES = {
    "give_opinion": {
        "summary": "Avis d'opportunité (FAQ 1.3)",
        "value": {"opinion": "favourable", "reasons": "Cohérent avec le SRDEII."},
    },
    "reject": {"summary": "Décision motivée", "value": {"reason": "Périmètre incohérent."}},
    "submit": {"summary": "Sans charge utile", "value": {}},
}
