"""Errors as ``application/problem+json`` (RFC 9457): one stable ``type`` per error kind.

Every refusal says what was wrong, where, and what is allowed (field paths, failed
business rules in French and English); nothing ever carries a stack trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ti_workflow.domain.text import safe_text
from ti_workflow.errors import (
    Conflict,
    Forbidden,
    GuardRefused,
    InvalidData,
    NotFound,
    TiWorkflowError,
    TransitionNotAllowed,
    UnknownTrigger,
)
from ti_workflow.files.errors import FileRefused
from ti_workflow.http.errors import BodyTooLarge, IdempotencyMismatch, Unauthenticated
from ti_workflow.storage.database import DatabaseUnavailable, SchemaOutdated

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:ti-workflow:problem:"


@dataclass(frozen=True)
class Kind:
    status: int
    title: str
    title_fr: str


KINDS: dict[str, Kind] = {
    "malformed-request": Kind(400, "Malformed request", "Requête mal formée"),
    "unauthenticated": Kind(401, "Authentication required", "Authentification requise"),
    "forbidden": Kind(403, "Forbidden", "Action non autorisée"),
    "not-found": Kind(404, "Not found", "Introuvable"),
    "method-not-allowed": Kind(405, "Method not allowed", "Méthode non autorisée"),
    "not-allowed": Kind(409, "Transition not allowed", "Transition impossible dans cet état"),
    "conflict": Kind(409, "Concurrent change", "Modification concurrente"),
    "precondition-failed": Kind(412, "Stale version (If-Match)", "Version périmée (If-Match)"),
    "body-too-large": Kind(413, "Request body too large", "Corps de requête trop volumineux"),
    "unsupported-media-type": Kind(
        415, "Unsupported media type", "Type de contenu non pris en charge"
    ),
    "file-too-large": Kind(413, "File too large", "Fichier trop volumineux"),
    "file-not-pdf": Kind(415, "File is not a PDF", "Le fichier n'est pas un PDF"),
    "file-refused": Kind(422, "File refused", "Fichier refusé"),
    "invalid-data": Kind(422, "Invalid data", "Données invalides"),
    "guard-refused": Kind(422, "Business rules not met", "Règles du programme non respectées"),
    "unknown-trigger": Kind(422, "Unknown trigger", "Déclencheur inconnu"),
    "idempotency-key-reused": Kind(
        422, "Idempotency-Key reused", "Clé d'idempotence déjà utilisée"
    ),
    "internal-error": Kind(500, "Internal error", "Erreur interne"),
    "unavailable": Kind(503, "Service unavailable", "Service indisponible"),
}


class FieldProblem(BaseModel):
    location: str = Field(examples=["data.perimeter.members[0]"])
    message: str = Field(examples=["a SIREN is exactly 9 digits (got '12345')"])
    message_fr: str | None = Field(
        default=None, description="The same in French (declared forms give it)."
    )


class RuleProblem(BaseModel):
    code: str = Field(examples=["perimeter_single_member"])
    faq: str | None = Field(default=None, examples=["2.2"])
    message_fr: str
    message_en: str


class Problem(BaseModel):
    """RFC 9457 problem details, with the project's extension members."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:ti-workflow:problem:guard-refused",
                    "title": "Business rules not met",
                    "title_fr": "Règles du programme non respectées",
                    "status": 422,
                    "detail": "case 1: 'submit' refused, 1 rule(s) not met",
                    "instance": "/v1/cases/1/triggers/submit",
                    "kind": "guard_refused",
                    "errors": [],
                    "rules": [
                        {
                            "code": "governance_binome",
                            "faq": "4.4",
                            "message_fr": "la gouvernance doit compter au moins un élu",
                            "message_en": "the governance needs at least one elected official",
                        }
                    ],
                }
            ]
        }
    )

    type: str
    title: str
    title_fr: str
    status: int
    detail: str
    instance: str
    kind: str
    errors: list[FieldProblem] = Field(default_factory=list)
    rules: list[RuleProblem] = Field(default_factory=list)


def problem(
    slug: str,
    detail: str,
    instance: str,
    *,
    errors: list[dict[str, str]] | None = None,
    rules: list[dict[str, Any]] | None = None,
    status: int | None = None,
) -> dict[str, Any]:
    k = KINDS[slug]
    return {
        "type": TYPE_BASE + slug,
        "title": k.title,
        "title_fr": k.title_fr,
        "status": status or k.status,
        "detail": safe_text(detail),
        "instance": instance,
        "kind": slug.replace("-", "_"),  # always the type's suffix: one name per problem
        "errors": [{k: safe_text(v) for k, v in e.items()} for e in errors or []],
        "rules": rules or [],
    }


def slug_of(exc: TiWorkflowError, if_match: bool) -> str:
    """Which problem type an engine (or API) error is."""
    if isinstance(exc, Conflict):
        return "precondition-failed" if if_match else "conflict"
    if isinstance(exc, FileRefused):
        return {"too_large": "file-too-large", "not_pdf": "file-not-pdf"}.get(
            exc.reason, "file-refused"
        )
    table: list[tuple[type[TiWorkflowError], str]] = [
        (Unauthenticated, "unauthenticated"),
        (Forbidden, "forbidden"),
        (NotFound, "not-found"),
        (TransitionNotAllowed, "not-allowed"),
        (GuardRefused, "guard-refused"),
        (UnknownTrigger, "unknown-trigger"),
        (InvalidData, "invalid-data"),
        (IdempotencyMismatch, "idempotency-key-reused"),
        (BodyTooLarge, "body-too-large"),
        (DatabaseUnavailable, "unavailable"),
        (SchemaOutdated, "unavailable"),
    ]
    for cls, slug in table:
        if isinstance(exc, cls):
            return slug
    return "invalid-data"


def from_error(exc: TiWorkflowError, instance: str, if_match: bool) -> dict[str, Any]:
    slug = slug_of(exc, if_match)
    errors: list[dict[str, str]] = []
    rules: list[dict[str, Any]] = []
    if isinstance(exc, GuardRefused):
        rules = [r.as_dict() for r in exc.rules]
    elif isinstance(exc, FileRefused):
        rules = exc.details()
    elif isinstance(exc, InvalidData):
        errors = [e.as_dict() for e in exc.errors]
    elif isinstance(exc, UnknownTrigger):
        errors = [{"location": "trigger", "message": f"allowed: {', '.join(sorted(exc.known))}"}]
    return problem(slug, str(exc), instance, errors=errors, rules=rules)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these statuses, all documented as problems."""
    described = {
        400: "Malformed JSON or header",
        401: "Missing, unknown, expired or revoked token",
        403: "The caller's role or scope may not do this",
        404: "Unknown case, or a case outside the caller's scope",
        409: "Transition not possible from the current state, or a concurrent change",
        412: "If-Match names a version that is no longer current",
        413: "Body over the size limit",
        415: "Body is not JSON (or, for a file, not a PDF)",
        422: "Invalid data (field paths given), unknown trigger, failed business rules, "
        "or Idempotency-Key reused with another request",
        500: "Unexpected error (no internals are disclosed)",
        503: "Database unreachable or not migrated",
    }
    return {s: {"model": Problem, "description": described[s]} for s in statuses}
