"""Plain-data views of territories for the CLI's ``--json`` output (and, later, the API)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from ti_workflow.domain.reference import Referential
from ti_workflow.territories import store


def membership_view(m: store.Membership) -> dict[str, Any]:
    return m.as_dict()


def snapshot_view(conn: Connection, snap: store.Snapshot, ref: Referential) -> dict[str, Any]:
    t = snap.territory
    members = []
    for p in snap.members:
        g = ref.groupement(p.value)
        members.append(
            {
                **p.as_dict("siren"),
                "name": g.name if g else "?",
                "nature": g.nature if g else "?",
                "regions": list(g.regions) if g else [],
            }
        )
    codes = [p.value[0] for p in snap.communes]
    info = store.communes_info(conn, codes)
    communes = [
        {
            **p.as_dict("code_insee"),
            "code_insee": p.value[0],
            "mode": p.value[1],
            "name": info.get(p.value[0], {}).get("name", "?"),
            "region": info.get(p.value[0], {}).get("region"),
        }
        for p in snap.communes
    ]
    regions = set(ref.regions_of(snap.sirens))
    regions.update(c["region"] for c in communes if c["mode"] == "include" and c["region"])
    return {
        "id": t.id,
        "at": snap.day.isoformat(),
        "labelled": snap.labelled,
        "name": snap.name,
        "campaign_id": t.campaign_id,
        "labelled_on": t.labelled_on.isoformat(),
        "source": t.source,
        "case_id": t.case_id,
        "regions": sorted(regions),
        "members": members,
        "communes": communes,
        "governance": {
            "members": snap.governance,
            "justification": snap.governance_justification,
        },
    }
