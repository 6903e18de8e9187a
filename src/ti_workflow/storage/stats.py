"""Counts for steering (the console's dashboard): grouped reads, no case loaded whole.

Every function takes an optional ``region``: a regional body sees only the cases
concerning its region (the same scope as :func:`repository.list_cases`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select

from ti_workflow.storage.repository import utc
from ti_workflow.storage.tables import CaseRegionRow, CaseRow, EventRow

cases = CaseRow.__table__  # type: ignore[attr-defined]
case_regions = CaseRegionRow.__table__  # type: ignore[attr-defined]
events = EventRow.__table__  # type: ignore[attr-defined]


def _scoped(query: Select[Any], workflow: str, region: str | None) -> Select[Any]:
    query = query.where(cases.c.workflow == workflow)
    if region:
        query = query.where(
            cases.c.id.in_(select(case_regions.c.case_id).where(case_regions.c.region == region))
        )
    return query


def by_state_and_region(
    conn: Connection, workflow: str, region: str | None = None
) -> dict[tuple[str, str], int]:
    """``{(region, state): cases}``: a case concerning two regions counts in both."""
    query = (
        select(case_regions.c.region, cases.c.state, func.count())
        .select_from(cases.join(case_regions, case_regions.c.case_id == cases.c.id))
        .group_by(case_regions.c.region, cases.c.state)
    )
    query = _scoped(query, workflow, None)
    if region:
        query = query.where(case_regions.c.region == region)
    return {(r, s): int(n) for r, s, n in conn.execute(query).all()}


def by_campaign_and_state(
    conn: Connection, workflow: str, region: str | None = None
) -> dict[tuple[str, str], int]:
    query = select(cases.c.campaign_id, cases.c.state, func.count()).group_by(
        cases.c.campaign_id, cases.c.state
    )
    query = _scoped(query, workflow, region)
    return {(c, s): int(n) for c, s, n in conn.execute(query).all()}


def trigger_instants(
    conn: Connection,
    workflow: str,
    trigger: str,
    region: str | None = None,
    campaign: str | None = None,
) -> list[tuple[int, datetime]]:
    """``(case id, instant)`` of every event of this trigger (on the cases of ``campaign``
    when given), oldest first."""
    query = (
        select(events.c.case_id, events.c.at)
        .select_from(events.join(cases, cases.c.id == events.c.case_id))
        .where(events.c.trigger == trigger)
        .order_by(events.c.at, events.c.id)
    )
    if campaign:
        query = query.where(cases.c.campaign_id == campaign)
    query = _scoped(query, workflow, region)
    return [(int(c), utc(at)) for c, at in conn.execute(query).all()]


def versions(conn: Connection, workflow: str, region: str | None = None) -> dict[int, int]:
    """Each case's version in scope (it grows with every event): what a cache keys on."""
    query = _scoped(select(cases.c.id, cases.c.version), workflow, region)
    return {int(r.id): int(r.version) for r in conn.execute(query)}


def summaries(conn: Connection, case_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Per case, what steering reads, without the form: title, campaign, state, version,
    regions, the opinions given (``{region: {body: {...}}}``), the perimeter's member
    SIRENs and the last change."""
    ids = sorted(set(case_ids))
    found: dict[int, dict[str, Any]] = {}
    query = select(
        cases.c.id,
        cases.c.title,
        cases.c.campaign_id,
        cases.c.state,
        cases.c.version,
        cases.c.regions,
        cases.c.facts["opinions"].label("opinions"),  # not the whole facts document
        cases.c.data["perimeter"]["members"].label("members"),  # nor the whole form
        cases.c.updated_at,
    )
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for r in conn.execute(query.where(cases.c.id.in_(chunk))):
            found[int(r.id)] = {
                "id": int(r.id),
                "title": r.title,
                "campaign": r.campaign_id,
                "state": r.state,
                "version": int(r.version),
                "regions": list(r.regions or []),
                "opinions": r.opinions or {},
                "members": [str(m) for m in r.members or []],
                "updated_at": utc(r.updated_at),
            }
    return found


def open_by_territory(
    conn: Connection, workflows: Iterable[str], final_states: Iterable[str]
) -> dict[str, list[int]]:
    """``{territory id: case ids}`` of the cases of these workflows (amendments) not yet in
    a final state."""
    query = select(cases.c.id, cases.c.data).where(
        cases.c.workflow.in_(list(workflows)), cases.c.state.not_in(list(final_states))
    )
    found: dict[str, list[int]] = {}
    for r in conn.execute(query.order_by(cases.c.id)):
        tid = str((r.data or {}).get("territory_id") or "")
        if tid:
            found.setdefault(tid, []).append(int(r.id))
    return found
