"""Send the DS outbox: claimed with a lease, each row's dossier read first, then written.

Never lost: a row stays until DS confirms (or refuses for good); a network error, a
timeout, 429 or 5xx puts it back with exponential backoff, like mail. Never done twice:
before writing, the dossier's state (and its messages) are read on DS, so a decision that
DS applied although its answer was lost is seen as done and not written again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, select, update

from ti_workflow.clock import Clock
from ti_workflow.ds import store
from ti_workflow.ds.client import DsClient
from ti_workflow.ds.errors import DsQueryRefused, DsRefused, DsUnavailable
from ti_workflow.mail.dispatch import backoff, claim

MAX_ATTEMPTS = 12

MUTATIONS = {
    "instruct": ("dossier_passer_en_instruction", "dossierPasserEnInstruction"),
    "accept": ("dossier_accepter", "dossierAccepter"),
    "refuse": ("dossier_refuser", "dossierRefuser"),
    "message": ("dossier_envoyer_message", "dossierEnvoyerMessage"),
    "reopen": ("dossier_repasser_en_construction", "dossierRepasserEnConstruction"),
}
TARGET = {"accept": "accepte", "refuse": "refuse"}
CLOSED = ("accepte", "refuse", "sans_suite")


class Permanent(Exception):
    """DS will not take this row as it is (its state, a validation error): it fails."""


@dataclass
class PushReport:
    claimed: int = 0
    sent: int = 0
    already: int = 0
    failed: int = 0
    retrying: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "sent": self.sent,
            "already_done": self.already,
            "failed": self.failed,
            "retrying": self.retrying,
            "errors": list(self.errors),
        }


class Pusher:
    def __init__(self, db: Engine, client: DsClient, instructeur_id: str, clock: Clock) -> None:
        self.db = db
        self.client = client
        self.instructeur_id = instructeur_id
        self.clock = clock

    def push_due(self, limit: int = 200) -> PushReport:
        report = PushReport()
        rows = claim(self.db, self.clock.now(), limit, table=store.ds_outbox)
        report.claimed = len(rows)
        for index, row in enumerate(rows):
            try:
                outcome = self._send(row)
            except (Permanent, DsQueryRefused) as exc:  # this row only (e.g. a deleted dossier)
                self._record(
                    row.id, status="failed", last_error=str(exc), attempts=row.attempts + 1
                )
                report.failed += 1
                report.errors.append(f"dossier n° {row.dossier_number}: {exc}")
            except DsUnavailable as exc:
                # DS is down: this row and the rest of the batch wait for the next pass.
                for waiting in rows[index:]:
                    self._retry(waiting, str(exc), report, counted=waiting is row)
                break
            except DsRefused as exc:  # the token or procedure: nothing will pass until fixed
                for waiting in rows[index:]:
                    self._retry(waiting, str(exc), report, counted=waiting is row)
                raise
            else:
                done, note = outcome
                self._record(
                    row.id,
                    status="sent",
                    outcome=note,
                    sent_at=self.clock.now(),
                    attempts=row.attempts + 1,
                    last_error=None,
                )
                if done:
                    report.sent += 1
                else:
                    report.already += 1
        return report

    # --- one row ------------------------------------------------------------------------

    def _send(self, row: Row[Any]) -> tuple[bool, str]:
        """(written now?, what happened). The dossier's state on DS decides."""
        dossier = self.client.dossier_state(row.dossier_number)
        state = dossier["state"]
        op = row.operation
        if op == "instruct":
            if state != "en_construction":
                return False, f"already {state} on DS"
            self._mutate("instruct", dossier, {})
            return True, "en_instruction"
        if op in TARGET:
            target = TARGET[op]
            if state == target:
                return False, f"already {state} on DS"
            if state in CLOSED:
                raise Permanent(f"the dossier is {state} on DS: the decision was not written")
            if state == "en_construction":
                self._mutate("instruct", dossier, {})
            extra = {"motivation": row.motivation} if row.motivation else {}
            self._mutate(op, dossier, extra)
            return True, target
        if op == "message":
            sent = any(m.get("body") == row.motivation for m in dossier.get("messages") or [])
            if not sent:
                self._mutate("message", dossier, {"body": row.motivation or ""})
            if state == "en_instruction":
                self._mutate("reopen", dossier, {})
                return True, "message sent, en_construction"
            return not sent, "message sent" if not sent else "message already on DS"
        raise Permanent(f"unknown operation {op!r}")

    def _mutate(self, op: str, dossier: dict[str, Any], extra: dict[str, Any]) -> None:
        name, field_name = MUTATIONS[op]
        values = {"dossierId": dossier["id"], "instructeurId": self.instructeur_id, **extra}
        payload = self.client.mutate(name, field_name, values)
        errors = [str(e.get("message")) for e in payload.get("errors") or []]
        if errors:
            raise Permanent(f"{field_name} refused by DS: {'; '.join(errors)}")

    # --- outcomes -----------------------------------------------------------------------

    def _retry(self, row: Row[Any], error: str, report: PushReport, counted: bool) -> None:
        attempts = row.attempts + (1 if counted else 0)
        if attempts >= MAX_ATTEMPTS:
            self._record(row.id, status="failed", attempts=attempts, last_error=error)
            report.failed += 1
        else:
            self._record(
                row.id,
                status="pending",
                attempts=attempts,
                last_error=error,
                next_attempt_at=self.clock.now() + (backoff(attempts) if counted else timedelta()),
            )
            report.retrying += 1
        if counted:
            report.errors.append(f"dossier n° {row.dossier_number}: {error}")

    def _record(self, row_id: int, **values: Any) -> None:
        with self.db.begin() as conn:
            conn.execute(
                update(store.ds_outbox)
                .where(store.ds_outbox.c.id == row_id)
                .values(lease_until=None, **values)
            )


def retry_failed(db: Engine, ids: list[int], now: datetime) -> list[int]:
    """Put failed rows back in the queue (after the operator fixed the cause on DS)."""
    t = store.ds_outbox
    with db.begin() as conn:
        found = [
            r.id
            for r in conn.execute(select(t.c.id).where(t.c.id.in_(ids), t.c.status == "failed"))
        ]
        if found:
            conn.execute(
                update(t)
                .where(t.c.id.in_(found))
                .values(status="pending", next_attempt_at=now, attempts=0)
            )
    return found
