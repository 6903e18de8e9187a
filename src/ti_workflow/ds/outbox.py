"""What goes back to DS, queued in the transaction of the event that causes it.

The hook runs inside every command's transaction (``engine.hooks``): an event stamped
``source.ds`` on a case's creation links the dossier to the case (unique both ways); on a
linked case, a trigger of :data:`PUSHED` queues one ``ds_outbox`` row (``dedupe_key``:
case, event, operation), so a replayed hook queues nothing twice and a rolled-back command
queues nothing at all. Decisions are due at the announcement instant (FAQ 1.3: the map is
announced in November 2023, and territories are notified through DS): the due instant of
the campaign timer the mapping names (``decision_timer``), or at once when it has passed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ti_workflow.domain.campaign import Campaign
from ti_workflow.ds import store
from ti_workflow.ds.errors import DsError
from ti_workflow.ds.mapping import DsMapping
from ti_workflow.engine import CREATE, SOURCE, Change, Hook
from ti_workflow.storage.repository import insert_or_ignore, utc

PUSHED = {
    "start_regional_review": "instruct",
    "label": "accept",
    "reject": "refuse",
    "return_for_completion": "message",
}
"""Trigger -> what is written on DS: ``instruct`` (dossierPasserEnInstruction), ``accept``
(dossierAccepter), ``refuse`` (dossierRefuser, the reason as motivation), ``message``
(dossierEnvoyerMessage, then dossierRepasserEnConstruction if it is en instruction)."""
DECISIONS = ("accept", "refuse")
STATUSES = ("pending", "sending", "sent", "failed")
NBSP = "\u00a0"


def completion_message(reason: str) -> str:
    """The message a territory reads on DS when its candidacy is returned for completion."""
    return (
        f"Votre candidature au label Territoires d'industrie vous est renvoyée pour "
        f"complément{NBSP}: {reason.strip()}\n\n"
        "Merci de compléter votre dossier sur Démarches Simplifiées puis de le déposer à "
        "nouveau avant la clôture des candidatures."
    )


def decision_due(campaign: Campaign, timer: str, now: datetime) -> datetime:
    """The announcement instant (checked to exist when the connector is installed)."""
    for spec in campaign.timers:
        if spec.name == timer:
            return max(spec.due, now)
    return now


def hook(mapping: DsMapping) -> Hook:
    def on_change(conn: Connection, change: Change) -> None:
        if change.case.workflow != mapping.workflow:
            return
        for event in change.events:
            ds = (event.annotations.get(SOURCE) or {}).get("ds")
            if ds and event.trigger == CREATE:
                _link(conn, change, ds)
        wanted = [(e, PUSHED[e.trigger]) for e in change.events if e.trigger in PUSHED]
        if not wanted:
            return
        link = store.link_of_case(conn, change.case.id)
        if link is None:
            return  # a case filed elsewhere than on DS: nothing to write there
        for event, operation in wanted:
            due = change.now
            if operation in DECISIONS:
                due = decision_due(change.campaign, mapping.decision_timer, change.now)
            reason = event.payload.get("reason")
            motivation = None
            if operation == "message":
                motivation = completion_message(str(reason or ""))
            elif reason:
                motivation = str(reason)
            insert_or_ignore(
                conn,
                store.ds_outbox,
                {
                    "dedupe_key": f"{change.case.id}:{event.seq}:{operation}",
                    "case_id": change.case.id,
                    "event_seq": event.seq,
                    "dossier_number": link.number,
                    "operation": operation,
                    "motivation": motivation,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": due,
                    "created_at": change.now,
                },
            )

    return on_change


def _link(conn: Connection, change: Change, ds: dict[str, Any]) -> None:
    """The dossier becomes this case, in the case's own transaction: never two cases."""
    number = int(ds["dossier"])
    link = store.link_of_dossier(conn, number)
    if link is not None and link.case_id not in (None, change.case.id):
        raise DsError(f"DS dossier n° {number} is already case {link.case_id}")
    store.save_link(
        conn,
        number,
        {
            "procedure": int(ds["procedure"]),
            "dossier_id": str(ds["id"]),
            "case_id": change.case.id,
            "state": str(ds["state"]),
            "synced_at": change.now,
        },
    )


def list_rows(
    conn: Connection, *, status: str | None = None, case_id: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    q = select(store.ds_outbox).order_by(store.ds_outbox.c.id)
    if status:
        q = q.where(store.ds_outbox.c.status == status)
    if case_id is not None:
        q = q.where(store.ds_outbox.c.case_id == case_id)
    rows = []
    for r in conn.execute(q.limit(limit)).all():
        m = dict(r._mapping)
        for key in ("next_attempt_at", "lease_until", "created_at", "sent_at"):
            m[key] = utc(m[key]).isoformat() if m[key] else None
        rows.append(m)
    return rows


def count_rows(conn: Connection, status: str | None = None) -> int:
    q = select(func.count()).select_from(store.ds_outbox)
    if status:
        q = q.where(store.ds_outbox.c.status == status)
    return int(conn.execute(q).scalar_one())
