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
PROJECT_MANAGER = "project_manager"
TERRITORY_GOVERNANCE = "territory_governance"
PROJECT_OWNER = "project_owner"
TERRITORY_ROLES = (PROJECT_MANAGER, TERRITORY_GOVERNANCE, PROJECT_OWNER)
"""After labelling (FAQ 3-5): people of one territory, who see and act on its cases only
(the cases whose data names it in ``territory_id``)."""

ROLES = (
    CANDIDATE, REGIONAL_COUNCIL, STATE_SERVICES, NATIONAL_COMMITTEE, AUDITOR, SYSTEM,
    *TERRITORY_ROLES,
)  # fmt: skip
REGIONAL_ROLES = (REGIONAL_COUNCIL, STATE_SERVICES)
TERRITORY_RE = re.compile(r"^ti-[0-9A-Za-z]{2,8}$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
REGION_RE = re.compile(r"^\d{2,3}$")

ACTOR_FORMS = (
    "candidate:EMAIL, regional_council:RR, state_services:RR, national_committee, auditor, "
    "system, project_manager:TERRITORY, territory_governance:TERRITORY, project_owner:TERRITORY"
)


@dataclass(frozen=True)
class Actor:
    role: str
    email: str | None = None
    region: str | None = None
    territory: str | None = None

    @property
    def label(self) -> str:
        if self.territory:
            return f"{self.role}:{self.territory}"
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
    if role in TERRITORY_ROLES:
        if not TERRITORY_RE.match(qualifier):
            raise bad(f"{role} needs a territory id such as ti-8401, got {qualifier!r}")
        return Actor(role, territory=qualifier)
    if qualifier:
        raise bad(f"{role} takes no qualifier, got {qualifier!r}")
    return Actor(role)
