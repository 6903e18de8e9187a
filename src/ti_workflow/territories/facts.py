"""What the amendment guards need from the database, read inside the command's transaction.

The guards stay pure (:mod:`ti_workflow.domain.amendments`); this module gives them the
territory as it stands on the amendment's effective date in ``Context.extra["territory"]``,
and gives the engine the regions an amendment concerns beyond its own groupements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import Connection

from ti_workflow.clock import Clock, paris
from ti_workflow.domain.amendment_forms import AMENDMENT_WORKFLOWS
from ti_workflow.domain.amendment_review import MARGINAL_SHARE_PARAMETER
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.reference import Referential
from ti_workflow.storage.repository import StoredCase
from ti_workflow.territories import store


def effective_on(data: Mapping[str, Any], clock: Clock) -> date:
    """The amendment's effective date; none given: today in Paris (the day it is approved)."""
    given = data.get("effective_on")
    return date.fromisoformat(given) if given else paris(clock.now()).date()


def territory_facts(
    conn: Connection, data: Mapping[str, Any], day: date, today: date | None = None
) -> dict[str, Any]:
    """The territory on the effective date ``day``; who may file for it as of ``today``."""
    tid = str(data.get("territory_id") or "")
    territory = store.find_territory(conn, tid)
    if territory is None:
        return {"found": False, "id": tid, "effective_on": day.isoformat()}
    snap = store.snapshot(conn, territory, day)
    last = store.last_change_on(conn, tid)
    elsewhere: dict[str, Any] = {}
    for m in store.memberships(conn, data.get("add") or [], from_=day):
        if m.territory_id != tid:
            elsewhere.setdefault(m.siren, m.as_dict())
    included = {c.value[0] for c in snap.communes if c.value[1] == "include"}
    excluded = {c.value[0] for c in snap.communes if c.value[1] == "exclude"}
    codes = [*(data.get("add_communes") or []), *(data.get("remove_communes") or [])]
    communes = store.communes_info(conn, codes)
    for code, info in communes.items():
        info["included"] = code in included
        info["excluded"] = code in excluded
        holders = store.commune_holders(conn, code, info["epci_siren"], day)
        info["held_by"] = [h for h in holders if h != tid]
    now = store.snapshot(conn, territory, max(today or day, territory.labelled_on))
    return {
        "found": True,
        "id": tid,
        "name": snap.name,
        "filers": filers(store.contact(conn, territory), now.governance),
        "campaign_id": territory.campaign_id,
        "labelled_on": territory.labelled_on.isoformat(),
        "effective_on": day.isoformat(),
        "last_change_on": last.isoformat() if last else None,
        "members": snap.sirens,
        "governance": snap.governance,
        "elsewhere": elsewhere,
        "communes": communes,
        "communes_elsewhere": store.communes_included_elsewhere(
            conn, data.get("add") or [], tid, day
        ),
    }


def filers(contact: Mapping[str, Any] | None, governance: list[dict[str, Any]]) -> dict[str, Any]:
    """The accounts attached to a territory, which alone may file an amendment for it
    (FAQ 2.3): its contact, and the members of its governance who gave an e-mail."""
    members = sorted({str(m["email"]).lower() for m in governance if m.get("email")})
    email = (contact or {}).get("email")
    return {"contact": str(email).lower() if email else None, "governance": members}


def context_provider(
    clock: Clock, campaigns: Mapping[str, Campaign]
) -> Callable[[Connection, StoredCase, str], dict[str, Any]]:
    def provide(conn: Connection, case: StoredCase, trigger: str) -> dict[str, Any]:
        if case.workflow not in AMENDMENT_WORKFLOWS:
            return {}
        campaign = campaigns.get(case.campaign_id)
        share = campaign.parameters.get(MARGINAL_SHARE_PARAMETER) if campaign else None
        return {
            "territory": territory_facts(
                conn, case.data, effective_on(case.data, clock), paris(clock.now()).date()
            ),
            # The campaign's parameters the rules read, as they were for this step.
            "parameters": {MARGINAL_SHARE_PARAMETER: share},
        }

    return provide


def territory_regions(conn: Connection, reference: Referential, tid: str, day: date) -> set[str]:
    territory = store.find_territory(conn, tid)
    if territory is None:
        return set()
    snap = store.snapshot(conn, territory, max(day, territory.labelled_on))
    regions = set(reference.regions_of(snap.sirens))
    included = [c.value[0] for c in snap.communes if c.value[1] == "include"]
    regions.update(info["region"] for info in store.communes_info(conn, included).values())
    return regions


def region_provider(
    clock: Clock, reference: Referential
) -> Callable[[Connection, str, Mapping[str, Any]], Iterable[str]]:
    """Regions of an amendment: the territory's (FAQ 2.5) and those of the communes moved."""

    def provide(conn: Connection, workflow: str, data: Mapping[str, Any]) -> Iterable[str]:
        if workflow not in AMENDMENT_WORKFLOWS:
            return ()
        day = effective_on(data, clock)
        regions = territory_regions(conn, reference, str(data.get("territory_id")), day)
        codes = [*(data.get("add_communes") or []), *(data.get("remove_communes") or [])]
        regions.update(info["region"] for info in store.communes_info(conn, codes).values())
        return regions

    return provide
