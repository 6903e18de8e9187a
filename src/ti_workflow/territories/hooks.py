"""Hooks run inside a command's transaction: a labelled candidacy becomes a territory, an
approved amendment changes the territory from its effective date. Both are written with
the event that causes them, or not at all."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection

from ti_workflow.clock import paris
from ti_workflow.domain.amendment_forms import AMENDMENT_WORKFLOWS, GOVERNANCE_AMENDMENT
from ti_workflow.domain.amendments import governance_after
from ti_workflow.engine import Change
from ti_workflow.errors import Rule
from ti_workflow.territories import store, writes
from ti_workflow.territories.errors import TerritoryRefused, double_membership


def territory_id_for_case(case_id: int) -> str:
    """Territories labelled through the workflow: ``ti-c`` and the candidacy's number."""
    return f"ti-c{case_id:04d}"


def _reached(change: Change, state: str) -> bool:
    return any(e.dest == state and e.source != state for e in change.events)


def on_labelled(conn: Connection, change: Change) -> None:
    if change.definition.name != "candidacy" or not _reached(change, "labelled"):
        return
    case = change.case
    writes.lock_memberships(conn)
    day = paris(change.now).date()
    members = list(dict.fromkeys((case.data.get("perimeter") or {}).get("members") or []))
    tid = territory_id_for_case(case.id)
    clashes = [m for m in store.memberships(conn, members, from_=day) if m.territory_id != tid]
    if clashes:
        raise TerritoryRefused(
            f"labelling case {case.id}",
            [
                double_membership(m.siren, tid, m.territory_id, m.valid_from.isoformat())
                for m in clashes
            ],
        )
    governance = case.data.get("governance") or {}
    writes.create_territory(
        conn,
        territory_id=tid,
        campaign_id=case.campaign_id,
        labelled_on=day,
        source="candidacy",
        case_id=case.id,
        name=str(case.data.get("territory_name") or case.title),
        members=members,
        governance=list(governance.get("members") or []),
        justification=governance.get("extended_governance_justification"),
        now=change.now,
    )


def _stale(what: str) -> Rule:
    return Rule(
        "territory_changed_meanwhile",
        "2.3",
        f"le territoire a changé depuis l'examen de la demande ({what})",
        f"the territory changed since the amendment was checked ({what})",
    )


def on_approved(conn: Connection, change: Change) -> None:
    if change.definition.name not in AMENDMENT_WORKFLOWS or not _reached(change, "approved"):
        return
    case, data = change.case, change.case.data
    given = data.get("effective_on")
    day = date.fromisoformat(given) if given else paris(change.now).date()
    writes.lock_memberships(conn)
    territory = store.load_territory(conn, data["territory_id"])
    tid, cid = territory.id, case.id
    action = f"approving amendment {cid}"
    if change.definition.name == GOVERNANCE_AMENDMENT:
        current = store.snapshot(conn, territory, day).governance
        writes.close(conn, store.governance_t, tid, day, cid)
        writes.open_row(
            conn, store.governance_t, tid, day, cid,
            members=governance_after(current, data),
            justification=data.get("extended_governance_justification"),
        )  # fmt: skip
    for siren in data.get("remove") or []:
        if writes.close(conn, store.members_t, tid, day, cid, siren=siren) != 1:
            raise TerritoryRefused(action, [_stale(f"{siren} n'en est plus membre")])
    for siren in data.get("add") or []:
        clash = store.memberships(conn, [siren], from_=day)
        if clash:
            m = clash[0]
            rule = double_membership(siren, tid, m.territory_id, m.valid_from.isoformat())
            raise TerritoryRefused(action, [rule])
        writes.open_row(conn, store.members_t, tid, day, cid, siren=siren)
    for mode, codes in (
        ("include", data.get("add_communes")),
        ("exclude", data.get("remove_communes")),
    ):
        opposite = "exclude" if mode == "include" else "include"
        for code in codes or []:
            if not writes.close(
                conn, store.tcommunes_t, tid, day, cid, code_insee=code, mode=opposite
            ):
                writes.open_row(conn, store.tcommunes_t, tid, day, cid, code_insee=code, mode=mode)
    if data.get("new_name"):
        writes.close(conn, store.names_t, tid, day, cid)
        writes.open_row(conn, store.names_t, tid, day, cid, name=data["new_name"])
