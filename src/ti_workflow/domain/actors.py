"""Who acts: a role, and for some roles an e-mail (candidate) or a region (regional bodies)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ti_workflow.errors import FieldError, InvalidData

CANDIDATE = "candidate"
REGIONAL_COUNCIL = "regional_council"
STATE_SERVICES = "state_services"
NATIONAL_COMMITTEE = "national_committee"
AUDITOR = "auditor"
SYSTEM = "system"

ROLES = (CANDIDATE, REGIONAL_COUNCIL, STATE_SERVICES, NATIONAL_COMMITTEE, AUDITOR, SYSTEM)
REGIONAL_ROLES = (REGIONAL_COUNCIL, STATE_SERVICES)
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
REGION_RE = re.compile(r"^\d{2,3}$")

ACTOR_FORMS = (
    "candidate:EMAIL, regional_council:RR, state_services:RR, national_committee, auditor, system"
)


@dataclass(frozen=True)
class Actor:
    role: str
    email: str | None = None
    region: str | None = None

    @property
    def label(self) -> str:
        if self.email:
            return f"{self.role}:{self.email}"
        if self.region:
            return f"{self.role}:{self.region}"
        return self.role

    def __str__(self) -> str:
        return self.label


def parse_actor(text: str) -> Actor:
    """Parse ``candidate:EMAIL``, ``regional_council:RR``..., refusing anything else."""
    role, _, qualifier = text.strip().partition(":")

    def bad(message: str) -> InvalidData:
        return InvalidData(
            "actor", [FieldError("--as", f"{message}; expected one of {ACTOR_FORMS}")]
        )

    if role not in ROLES:
        raise bad(f"unknown role {role!r}")
    if role == CANDIDATE:
        if not EMAIL_RE.match(qualifier):
            raise bad(f"candidate needs an e-mail address, got {qualifier!r}")
        return Actor(role, email=qualifier.lower())
    if role in REGIONAL_ROLES:
        if not REGION_RE.match(qualifier):
            raise bad(f"{role} needs an INSEE region code such as 84, got {qualifier!r}")
        return Actor(role, region=qualifier)
    if qualifier:
        raise bad(f"{role} takes no qualifier, got {qualifier!r}")
    return Actor(role)
