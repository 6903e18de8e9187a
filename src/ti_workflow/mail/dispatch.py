"""Send the outbox over SMTP with aiosmtplib: one connection per batch, retries, no loss.

A batch is *claimed* first (status ``sending``, the sender's ``host:pid`` and a lease,
committed), then sent; outcomes are committed every ``FLUSH_EVERY`` messages and at the
end of the batch. A sender that dies mid-batch leaves its claimed rows to be taken
again: at once by the next sender of the same host (the holder's process is gone), when
the lease expires otherwise (at-least-once delivery: the Message-ID fixed at enqueue time
lets a mail system drop the rare duplicate).
Connect errors, timeouts, 4xx replies and 4xx recipient refusals are retried with
exponential backoff; 5xx replies are permanent and keep the server's words.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

import aiosmtplib
from aiosmtplib import (
    SMTPException,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
)
from sqlalchemy import Engine, Row, Table, and_, or_, select, update

from ti_workflow.clock import Clock
from ti_workflow.mail.outbox import build_message, outbox
from ti_workflow.scheduling import lock
from ti_workflow.scheduling.lock import this_process
from ti_workflow.settings import Settings
from ti_workflow.storage.database import is_sqlite

LEASE = timedelta(minutes=5)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
MAX_ATTEMPTS = 12
FLUSH_EVERY = 50
"""Outcomes are committed every FLUSH_EVERY messages and at the end of a batch: a crash
re-sends at most that many (same Message-ID), it never loses one."""
TRANSIENT = (SMTPException, OSError, TimeoutError)


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    partial: int = 0
    failed: int = 0
    retrying: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DispatchReport) -> None:
        for name in ("claimed", "sent", "partial", "failed", "retrying"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, 4 min... capped at one hour."""
    delay: timedelta = BACKOFF_BASE * (2 ** max(attempts - 1, 0))
    return min(delay, BACKOFF_MAX)


def release_dead_claims(db: Engine, now: datetime) -> list[str]:
    """Messages claimed by a sender of this host that no longer exists are due again now."""
    return lock.release_dead_claims(db, outbox, "sending", now)


def claim(
    db: Engine, now: datetime, limit: int, holder: str | None = None, table: Table = outbox
) -> list[Row[Any]]:
    """Take the due rows of an outbox (this one, or another sent the same way: Démarches
    Simplifiées calls) for one lease; on PostgreSQL concurrent senders skip each other's."""
    c = table.c
    due = or_(
        and_(c.status == "pending", c.next_attempt_at <= now),
        and_(c.status == "sending", c.lease_until < now),
    )
    q = select(table).where(due).order_by(c.next_attempt_at, c.id).limit(limit)
    if not is_sqlite(db):
        q = q.with_for_update(skip_locked=True)
    values: dict[str, Any] = {"status": "sending", "lease_until": now + LEASE}
    if "claimed_by" in c:
        values["claimed_by"] = holder
    with db.begin() as conn:
        rows = list(conn.execute(q).all())
        if rows:
            conn.execute(update(table).where(c.id.in_([r.id for r in rows])).values(**values))
    return rows


class Dispatcher:
    def __init__(self, db: Engine, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.sender = parseaddr(settings.mail_from)[1] or settings.mail_from
        self._outcomes: list[tuple[int, dict[str, Any]]] = []
        self.holder = this_process()

    def send_due(self, batch: int = 200, limit: int | None = None) -> DispatchReport:
        """Send the messages due now, batch after batch (sync entry point): every one, or
        at most ``limit`` of them."""
        return asyncio.run(self._send_due(batch, limit))

    async def _send_due(self, batch: int, limit: int | None) -> DispatchReport:
        total = DispatchReport()
        release_dead_claims(self.db, self.clock.now())
        while limit is None or total.claimed < limit:
            size = batch if limit is None else min(batch, limit - total.claimed)
            report = await self.send_batch(size)
            total.add(report)
            if report.claimed < size:
                break
        return total

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout,
            use_tls=s.smtp_tls == "tls",
            start_tls=s.smtp_tls == "starttls",
            username=s.smtp_username,
            password=s.smtp_password,
        )
        await smtp.connect()
        return smtp

    async def send_batch(self, batch: int = 200) -> DispatchReport:
        report = DispatchReport()
        now = self.clock.now()
        rows = claim(self.db, now, batch, self.holder)
        report.claimed = len(rows)
        if not rows:
            return report
        smtp: aiosmtplib.SMTP | None = None
        try:
            for index, row in enumerate(rows):
                if smtp is None or not smtp.is_connected:
                    try:
                        smtp = await self._connect()
                    except TRANSIENT as exc:
                        # The server is unreachable: the rest of the batch waits too.
                        error = f"cannot connect to SMTP: {_describe(exc)}"
                        for waiting in rows[index:]:
                            self._transient(waiting, error, report)
                        smtp = None
                        break
                if await self._send_one(smtp, row, report):
                    # The server stopped answering in time: the rest of the batch waits for
                    # the next pass, rather than each message waiting out the timeout.
                    error = "not tried: the SMTP server timed out on the previous message"
                    for waiting in rows[index + 1 :]:
                        self._transient(waiting, error, report)
                    break
        finally:
            self._flush()
            if smtp is not None and smtp.is_connected:
                try:
                    await smtp.quit()
                except TRANSIENT:
                    smtp.close()
        return report

    async def _send_one(self, smtp: aiosmtplib.SMTP, row: Row[Any], report: DispatchReport) -> bool:
        """Send one message; True if the server timed out (the batch should stop)."""
        remaining = list(row.remaining)
        try:
            message = build_message(row, self.settings.mail_from)
        except (ValueError, TypeError) as exc:  # a stored row no SMTP server could take
            reply = f"cannot build the message: {exc}"
            self._finish(row, {a: reply for a in remaining}, [], report, reply)
            return False
        try:
            refused, _ = await smtp.send_message(message, sender=self.sender, recipients=remaining)
        except SMTPRecipientsRefused as exc:
            refused = {r.recipient: SMTPResponse(r.code, r.message) for r in exc.recipients}
        except SMTPResponseException as exc:
            reply = f"{exc.code} {exc.message}"
            if exc.code >= 500:
                self._finish(row, {a: reply for a in remaining}, [], report, reply)
            else:
                self._transient(row, reply, report)
            return False
        except TRANSIENT as exc:
            self._transient(row, _describe(exc), report)
            smtp.close()
            return isinstance(exc, TimeoutError)
        permanent = {a: f"{r.code} {r.message}" for a, r in refused.items() if r.code >= 500}
        again = [a for a in remaining if a in refused and refused[a].code < 500]
        note = "; ".join(f"{a}: {r.code} {r.message}" for a, r in refused.items()) or None
        self._finish(row, permanent, again, report, note)
        return False

    def _finish(
        self,
        row: Row[Any],
        permanent: dict[str, str],
        again: list[str],
        report: DispatchReport,
        note: str | None,
    ) -> None:
        now = self.clock.now()
        rejected = {**(row.rejected or {}), **permanent}
        attempts = row.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "lease_until": None,
            "claimed_by": None,
            "last_error": note,
        }
        if again and attempts < MAX_ATTEMPTS:
            values.update(
                status="pending",
                remaining=again,
                rejected=rejected,
                next_attempt_at=now + backoff(attempts),
            )
            report.retrying += 1
        else:
            if again:
                rejected.update({a: f"gave up after {attempts} attempts: {note}" for a in again})
            delivered = [r for r in row.recipients if r["address"] not in rejected]
            status = "sent" if not rejected else ("partial" if delivered else "failed")
            values.update(status=status, remaining=[], rejected=rejected)
            if delivered:
                values["sent_at"] = now
            setattr(report, status, getattr(report, status) + 1)
        self._record(row.id, values)

    def _transient(self, row: Row[Any], error: str, report: DispatchReport) -> None:
        now = self.clock.now()
        attempts = row.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "lease_until": None,
            "claimed_by": None,
            "last_error": error,
        }
        if attempts >= MAX_ATTEMPTS:
            rejected = {a: f"gave up after {attempts} attempts: {error}" for a in row.remaining}
            values.update(status="failed", rejected={**(row.rejected or {}), **rejected})
            report.failed += 1
        else:
            values.update(status="pending", next_attempt_at=now + backoff(attempts))
            report.retrying += 1
        report.errors.append(f"message {row.id}: {error}")
        self._record(row.id, values)

    def _record(self, row_id: int, values: dict[str, Any]) -> None:
        self._outcomes.append((row_id, values))
        if len(self._outcomes) >= FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        """Write the outcomes so far in one transaction (one fsync for many messages)."""
        if not self._outcomes:
            return
        with self.db.begin() as conn:
            for row_id, values in self._outcomes:
                conn.execute(update(outbox).where(outbox.c.id == row_id).values(**values))
        self._outcomes.clear()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
