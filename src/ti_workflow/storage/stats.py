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


def case_ids(conn: Connection, workflow: str, region: str | None = None) -> list[int]:
    query = _scoped(select(cases.c.id), workflow, region)
    return [int(r[0]) for r in conn.execute(query)]


def in_states(
    conn: Connection, workflow: str, states: Iterable[str], region: str | None = None
) -> list[dict[str, Any]]:
    """The cases in these states, without their form: id, title, campaign, state, regions
    and the opinions given (``{region: {body: {...}}}``)."""
    query = select(
        cases.c.id,
        cases.c.title,
        cases.c.campaign_id,
        cases.c.state,
        cases.c.regions,
        cases.c.facts["opinions"].label("opinions"),  # not the whole facts document
        cases.c.updated_at,
    ).where(cases.c.state.in_(list(states)))
    query = _scoped(query, workflow, region).order_by(cases.c.id)
    return [
        {
            "id": r.id,
            "title": r.title,
            "campaign": r.campaign_id,
            "state": r.state,
            "regions": list(r.regions or []),
            "opinions": r.opinions or {},
            "updated_at": utc(r.updated_at),
        }
        for r in conn.execute(query).all()
    ]


def versions(conn: Connection, case_ids: Iterable[int]) -> dict[int, int]:
    """Each case's version (it grows with every event): what a cache keys on."""
    ids = sorted(set(case_ids))
    found: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for r in conn.execute(select(cases.c.id, cases.c.version).where(cases.c.id.in_(chunk))):
            found[int(r.id)] = int(r.version)
    return found


def perimeters(conn: Connection, case_ids: Iterable[int]) -> dict[int, list[str]]:
    """The member SIRENs of each case's perimeter (its current form)."""
    ids = sorted(set(case_ids))
    found: dict[int, list[str]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        members = cases.c.data["perimeter"]["members"].label("members")
        for r in conn.execute(select(cases.c.id, members).where(cases.c.id.in_(chunk))):
            found[int(r.id)] = [str(m) for m in r.members or []]
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
