"""The outbox: render a notification for a case (or a campaign) and queue it, once.

A row is written inside the caller's transaction (the fire that caused it, or the
timer's), with its recipients, rendered parts and a Message-ID fixed now. Its
``dedupe_key`` is unique: a second sweep or a replayed hook queues nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select, update

from ti_workflow.domain.actors import AUDITOR, CANDIDATE, NATIONAL_COMMITTEE, SYSTEM, Actor
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.events import Event
from ti_workflow.domain.reference import Referential
from ti_workflow.domain.rules import missing_opinions
from ti_workflow.domain.timers import NotificationSpec
from ti_workflow.mail.directory import DREETS, Directory, Recipient, address_problem
from ti_workflow.mail.french import body_label
from ti_workflow.mail.render import Renderer
from ti_workflow.mail.tables import OutboxRow
from ti_workflow.storage.repository import StoredCase, insert_or_ignore, utc

outbox = OutboxRow.__table__  # type: ignore[attr-defined]
STATUSES = ("pending", "sending", "sent", "partial", "failed", "undeliverable")


@dataclass(frozen=True)
class Composer:
    """Everything needed to turn a notification into an outbox row."""

    renderer: Renderer
    directory: Directory
    reference: Referential
    mail_from: str

    @property
    def domain(self) -> str:
        return self.mail_from.rsplit("@", 1)[-1].strip(">").strip() or "ti-workflow.invalid"

    def recipients(
        self, spec: NotificationSpec, case: StoredCase | None
    ) -> tuple[list[Recipient], dict[str, str]]:
        found: list[Recipient] = []
        problems: dict[str, str] = {}
        for role in spec.to:
            if role == "national_committee":
                found += [Recipient(role, a) for a in self.directory.national_committee]
            elif case is None:
                continue
            elif role == "candidate":
                address = str(case.data.get("contact_email") or case.owner_email or "")
                problem = address_problem(address)
                if problem:
                    problems[f"candidate:{address}"] = problem
                else:
                    found.append(Recipient("candidate", address.lower()))
            else:
                wanted = None
                if role == "regional_bodies_missing":
                    wanted = set(missing_opinions(case.regions, case.facts))
                for region in case.regions:
                    for body in ("regional_council", "state_services"):
                        if wanted is not None and f"{region}/{body}" not in wanted:
                            continue
                        found += self._regional(region, body, problems)
                        if body == "state_services":  # FAQ 1.3: "en lien avec les DREETS"
                            found += self._regional(region, DREETS, problems, cc=True)
        unique: dict[str, Recipient] = {}
        for r in found:
            unique.setdefault(r.address, r)
        return list(unique.values()), problems

    def _regional(
        self, region: str, body: str, problems: dict[str, str], cc: bool = False
    ) -> list[Recipient]:
        addresses = self.directory.regional(region, body)
        if not addresses:
            problems[f"{body}:{region}"] = "no address in the directory"
        return [Recipient(f"{body}:{region}", a, cc) for a in addresses]

    def case_context(
        self,
        case: StoredCase,
        campaign: Campaign,
        event: Event | None,
        timer: Mapping[str, Any] | None,
        extra: Mapping[str, Any],
    ) -> dict[str, Any]:
        decision = case.facts.get("decision")
        regions = {r: {"code": r, "name": self.reference.region_name(r)} for r in case.regions}
        given = case.facts.get("opinions") or {}
        return {
            "case": {
                "id": case.id,
                "title": case.title,
                "state": case.state,
                "regions": list(regions.values()),
                "contact_email": case.data.get("contact_email") or case.owner_email,
            },
            "campaign": campaign_context(campaign),
            "event": None
            if event is None
            else {"trigger": event.trigger, "at": event.at, "actor": event.actor},
            "timer": timer,
            "reason": (event.payload.get("reason") if event else None)
            or (decision or {}).get("reason"),
            "decision": decision,
            "missing_opinions": [
                self._opinion(region, body, {})
                for region, body in (
                    m.split("/") for m in missing_opinions(case.regions, case.facts)
                )
            ],
            "opinions": [
                self._opinion(region, body, opinion)
                for region in case.regions
                for body, opinion in sorted((given.get(region) or {}).items())
            ],
            "params": dict(campaign.parameters),
            **extra,
        }

    def _opinion(self, region: str, body: str, given: Mapping[str, Any]) -> dict[str, Any]:
        place = {"code": region, "name": self.reference.region_name(region)}
        return {
            "region": region,
            "region_name": place["name"],
            "body": body,
            "label": body_label(place, body),
            "opinion": given.get("opinion"),
            "favourable": given.get("opinion") == "favourable",
            "reasons": given.get("reasons") or "",
        }

    def enqueue(
        self,
        conn: Connection,
        spec: NotificationSpec,
        context: Mapping[str, Any],
        *,
        dedupe_key: str,
        now: datetime,
        case: StoredCase | None = None,
        campaign_id: str | None = None,
        event_seq: int | None = None,
        timer_id: int | None = None,
    ) -> bool:
        """Render and queue; False if this dedupe key was already queued (nothing written)."""
        recipients, problems = self.recipients(spec, case)
        rendered = self.renderer.render(spec.name, context)
        values = {
            "message_id": f"<{uuid.uuid4().hex}.{spec.name}@{self.domain}>",
            "dedupe_key": dedupe_key,
            "notification": spec.name,
            "campaign_id": campaign_id or (case.campaign_id if case else None),
            "case_id": case.id if case else None,
            "event_seq": event_seq,
            "timer_id": timer_id,
            "recipients": [r.as_dict() for r in recipients],
            "remaining": [r.address for r in recipients],
            "rejected": problems,
            "subject": rendered.subject,
            "body_text": rendered.text,
            "body_html": rendered.html,
            "status": "pending" if recipients else "undeliverable",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "last_error": None if recipients else "no valid recipient",
        }
        return insert_or_ignore(conn, outbox, values)


def once_key(spec: NotificationSpec, case: StoredCase) -> str | None:
    """The dedupe key shared by the event and the timer that may both send a held
    notification (``held_until``): whichever comes first queues it, the other nothing."""
    return f"once:{case.id}:{spec.name}" if spec.held_until else None


def campaign_context(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "opens_on": campaign.opens_on,
        "closes_on": campaign.closes_on,
        "closes_at": campaign.closes_at,
        "due": {timer.name: timer.due for timer in campaign.timers},  # name -> due instant
    }


def encoded_subject(subject: str) -> str:
    """The Subject as RFC 2047 encoded words, folded by ``email.header.Header``.

    Python 3.11's own header folding drops the space between two encoded words in about
    one long French subject in 13 (``« Vallée de l'Arve»``); a raw value with lines under
    78 characters is written as it is.
    """
    if subject.isascii():
        return Header(subject, header_name="Subject").encode()
    return Header(subject, "utf-8", header_name="Subject").encode()


def build_message(row: Row[Any] | Mapping[str, Any], mail_from: str) -> EmailMessage:
    m = row._mapping if isinstance(row, Row) else row
    msg = EmailMessage()
    msg["From"] = mail_from
    to = [r["address"] for r in m["recipients"] if not r.get("cc")]
    cc = [r["address"] for r in m["recipients"] if r.get("cc")]
    if to:
        msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg.set_raw("Subject", encoded_subject(m["subject"]))
    msg["Message-ID"] = m["message_id"]
    msg["Date"] = format_datetime(utc(m["created_at"]))
    msg["X-TI-Notification"] = m["notification"]
    if m["case_id"] is not None:
        msg["X-TI-Case"] = str(m["case_id"])
    msg.set_content(m["body_text"])
    msg.add_alternative(m["body_html"], subtype="html")
    return msg


def count_messages(
    conn: Connection, *, status: str | None = None, case_id: int | None = None
) -> int:
    q = select(func.count()).select_from(outbox)
    if status:
        q = q.where(outbox.c.status == status)
    if case_id is not None:
        q = q.where(outbox.c.case_id == case_id)
    return int(conn.execute(q).scalar_one())


def list_messages(
    conn: Connection,
    *,
    status: str | None = None,
    case_id: int | None = None,
    limit: int = 100,
    reader: Actor | None = None,
) -> list[dict[str, Any]]:
    """Outbox rows, oldest first. With ``reader``, only what it may see: the auditor and
    the national committee see every message; a candidate or a regional body only the
    messages addressed to it (not the committee's escalations, nor other bodies' mail)."""
    q = select(outbox).order_by(outbox.c.id)
    if status:
        q = q.where(outbox.c.status == status)
    if case_id is not None:
        q = q.where(outbox.c.case_id == case_id)
    if reader is None or reader.role in (AUDITOR, NATIONAL_COMMITTEE, SYSTEM):
        return [_public(r) for r in conn.execute(q.limit(limit)).all()]
    own = "candidate" if reader.role == CANDIDATE else f"{reader.role}:{reader.region}"
    mine = (r for r in conn.execute(q) if any(x["role"] == own for x in r.recipients))
    return [_public(r) for r, _ in zip(mine, range(limit), strict=False)]


def _public(row: Row[Any]) -> dict[str, Any]:
    m = row._mapping
    return {
        "id": m["id"],
        "message_id": m["message_id"],
        "notification": m["notification"],
        "case_id": m["case_id"],
        "event_seq": m["event_seq"],
        "timer_id": m["timer_id"],
        "to": [
            f"{r['role']} <{r['address']}>{' (cc)' if r.get('cc') else ''}" for r in m["recipients"]
        ],
        "subject": m["subject"],
        "status": m["status"],
        "attempts": m["attempts"],
        "claimed_by": m["claimed_by"] if m["status"] == "sending" else None,
        "lease_until": utc(m["lease_until"]).isoformat()
        if m["status"] == "sending" and m["lease_until"]
        else None,
        "next_attempt_at": utc(m["next_attempt_at"]).isoformat(),
        "sent_at": utc(m["sent_at"]).isoformat() if m["sent_at"] else None,
        "rejected": m["rejected"],
        "last_error": m["last_error"],
        "created_at": utc(m["created_at"]).isoformat(),
    }


def retry(conn: Connection, ids: Sequence[int], all_failed: bool, now: datetime) -> list[int]:
    """Put failed (or partly failed) messages back in the queue for their unsent recipients."""
    q = select(outbox.c.id, outbox.c.status, outbox.c.recipients, outbox.c.rejected)
    q = (
        q.where(outbox.c.id.in_(ids))
        if ids
        else q.where(outbox.c.status.in_(("failed", "partial")))
    )
    if not ids and not all_failed:
        return []
    done = []
    for row in conn.execute(q).all():
        if row.status not in ("failed", "partial"):
            continue
        again = [r["address"] for r in row.recipients if r["address"] in (row.rejected or {})]
        conn.execute(
            update(outbox)
            .where(outbox.c.id == row.id)
            .values(status="pending", remaining=again, rejected={}, next_attempt_at=now)
        )
        done.append(row.id)
    return done
