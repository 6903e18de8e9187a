"""Plain-JSON views of cases, events and options, shared by the CLI and (later) the HTTP API."""

from __future__ import annotations

from typing import Any

from ti_workflow.domain.events import Event, iso_utc
from ti_workflow.engine import TriggerOption
from ti_workflow.storage.repository import StoredCase


def case_view(case: StoredCase, *, with_data: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": case.id,
        "workflow": case.workflow,
        "campaign": case.campaign_id,
        "definition_version": case.definition_version,
        "state": case.state,
        "version": case.version,
        "regions": list(case.regions),
        "title": case.title,
        "owner": case.owner_email,
        "created_at": iso_utc(case.created_at),
        "updated_at": iso_utc(case.updated_at),
        "events": case.last_seq,
        "head_hash": case.head_hash,
    }
    if with_data:
        view["data"] = case.data
        view["facts"] = case.facts
    return view


def event_view(event: Event) -> dict[str, Any]:
    return {**event.body(), "prev_hash": event.prev_hash, "hash": event.hash}


def option_view(option: TriggerOption) -> dict[str, Any]:
    return {
        "trigger": option.trigger,
        "dest": option.dest,
        "label_fr": option.label_fr,
        "allowed": option.allowed,
        "refusal": option.refusal,
        "failed_rules": [r.as_dict() for r in option.failed_rules],
        "payload_fields": list(option.payload_fields),
        "reason_required": option.reason_required,
        "warnings": [r.as_dict() for r in option.warnings],
    }
