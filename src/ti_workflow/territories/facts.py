"""What the amendment guards need from the database, read inside the command's transaction.

The guards stay pure (:mod:`ti_workflow.domain.amendments`); this module gives them the
territory as it stands on the amendment's effective date in ``Context.extra["territory"]``,
and gives the engine the regions an amendment concerns beyond its own groupements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import Connection, String, cast, or_, select

from ti_workflow.clock import Clock, paris
from ti_workflow.domain.amendment_forms import AMENDMENT_WORKFLOWS
from ti_workflow.domain.amendment_review import MARGINAL_SHARE_PARAMETER
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.postlabel import FUNDED_STATES, PROJECT_MANAGER, TERRITORY_WORKFLOWS
from ti_workflow.domain.reference import Referential
from ti_workflow.domain.rules import OPEN_CANDIDACY_STATES_FR
from ti_workflow.storage import repository as repo
from ti_workflow.storage.repository import StoredCase
from ti_workflow.territories import store
from ti_workflow.territories.hooks import territory_id_for_case


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


def labelled_territory(
    conn: Connection, data: Mapping[str, Any], day: date, case_id: int = 0
) -> dict[str, Any]:
    """The territory a post-label case belongs to: labelled when, and its plan's actions
    when it was labelled through a candidacy here (none for a territory imported from the
    published list, whose plan is not on file)."""
    tid = str(data.get("territory_id") or "")
    territory = store.find_territory(conn, tid)
    if territory is None:
        return {"found": False, "id": tid, "effective_on": day.isoformat()}
    snap = store.snapshot(conn, territory, max(day, territory.labelled_on))
    plan = None
    if territory.case_id is not None:
        candidacy = repo.load_case(conn, territory.case_id)
        plan = [str(a.get("title") or "") for a in candidacy.data.get("action_plan") or []]
    return {
        "found": True,
        "id": tid,
        "labelled_on": territory.labelled_on.isoformat(),
        "effective_on": day.isoformat(),
        "plan_actions": plan,
        "members": snap.sirens,
        "funded_posts": funded_posts(conn, tid, case_id),
    }


def funded_posts(conn: Connection, tid: str, case_id: int) -> list[int]:
    """The territory's other project-manager cases whose post is granted or funded (FAQ 5.2:
    one post per territory)."""
    c = repo.cases.c
    rows = conn.execute(
        select(c.id)
        .where(
            c.workflow == PROJECT_MANAGER,
            c.state.in_(FUNDED_STATES),
            c.id != case_id,
            c.data["territory_id"].as_string() == tid,
        )
        .order_by(c.id)
    ).all()
    return [r.id for r in rows]


def context_provider(
    clock: Clock, campaigns: Mapping[str, Campaign]
) -> Callable[[Connection, StoredCase, str], dict[str, Any]]:
    def provide(conn: Connection, case: StoredCase, trigger: str) -> dict[str, Any]:
        if case.workflow in TERRITORY_WORKFLOWS:
            day = paris(clock.now()).date()
            return {"territory": labelled_territory(conn, case.data, day, case.id)}
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


CANDIDACY = "candidacy"
FOLLOW_UP_TRIGGERS = ("remind_binome", "escalate_binome")


def groupements_elsewhere(
    conn: Connection, case: StoredCase, day: date
) -> dict[str, list[dict[str, Any]]]:
    """The case's groupements already in another open candidacy or a labelled territory
    (programme rule: one territory per groupement), by SIREN; only those held elsewhere."""
    members = list(dict.fromkeys((case.data.get("perimeter") or {}).get("members") or []))
    if not members:
        return {}
    held: dict[str, list[dict[str, Any]]] = {}
    c = repo.cases.c
    text = cast(c.data, String)
    rows = conn.execute(
        select(c.id, c.title, c.state, c.data)
        .where(
            c.workflow == case.workflow,
            c.state.in_(list(OPEN_CANDIDACY_STATES_FR)),
            c.id != case.id,
            or_(*(text.contains(siren) for siren in members)),  # a pre-filter; exact below
        )
        .order_by(c.id)
    ).all()
    wanted = set(members)
    for row in rows:
        theirs = set((row.data.get("perimeter") or {}).get("members") or [])
        for siren in sorted(wanted & theirs):
            held.setdefault(siren, []).append(
                {"kind": "candidacy", "case_id": row.id, "title": row.title, "state": row.state}
            )
    for m in store.memberships(conn, members, from_=day):
        held.setdefault(m.siren, []).append(
            {"kind": "territory", "territory_id": m.territory_id, "name": m.name}
        )
    return {siren: held[siren] for siren in members if siren in held}


def territory_governance(conn: Connection, case: StoredCase, day: date) -> dict[str, Any]:
    """The governance in force of the territory a candidacy became, and whether an
    approved amendment changed it since (FAQ 4.1 follow-up)."""
    territory = store.find_territory(conn, territory_id_for_case(case.id))
    if territory is None:
        return {"found": False}
    members = store.snapshot(conn, territory, day).governance
    filed = list((case.data.get("governance") or {}).get("members") or [])
    return {"found": True, "members": members, "amended": members != filed}


def candidacy_provider(clock: Clock) -> Callable[[Connection, StoredCase, str], dict[str, Any]]:
    """Database facts for the candidacy guards: groupements held elsewhere at ``submit``,
    the territory's governance for the binôme follow-up."""

    def provide(conn: Connection, case: StoredCase, trigger: str) -> dict[str, Any]:
        if case.workflow != CANDIDACY:
            return {}
        day = paris(clock.now()).date()
        if trigger == "submit":
            held = groupements_elsewhere(conn, case, day)
            return {"groupements_elsewhere": held} if held else {}
        if trigger in FOLLOW_UP_TRIGGERS:
            return {"territory_governance": territory_governance(conn, case, day)}
        return {}

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
        if workflow in TERRITORY_WORKFLOWS:
            day = paris(clock.now()).date()
            return territory_regions(conn, reference, str(data.get("territory_id")), day)
        if workflow not in AMENDMENT_WORKFLOWS:
            return ()
        day = effective_on(data, clock)
        regions = territory_regions(conn, reference, str(data.get("territory_id")), day)
        codes = [*(data.get("add_communes") or []), *(data.get("remove_communes") or [])]
        regions.update(info["region"] for info in store.communes_info(conn, codes).values())
        return regions

    return provide
