"""Dossiers of a DS procedure -> cases: one case per dossier, idempotent and resumable.

What each dossier becomes (every value written through the engine, in hash-chained
events stamped ``source.ds`` with the dossier number and its ``dateDerniereModification``):

- a new dossier (any state but ``sans_suite``): the case is created and submitted *at its
  ``dateDepot``*: the engine is used through a view whose clock reads that instant
  (:func:`engine_at`), so the filing-window rule is judged on the day the territory filed
  on DS, not on the day the sync ran, and the events carry that instant (an audit replay,
  which re-evaluates each rule at its event's instant, agrees). A dossier that breaks a
  rule keeps its case in ``draft`` and its refusals are recorded (``ds status``);
- a change while ``en_construction``: ``update`` at its ``dateDerniereModification``;
  a filed case is first taken back (``reopen``) and filed again (``submit``: the rules
  are checked again); a case refused before is filed again after the update;
- ``sans_suite`` or deleted on DS: the case is withdrawn.

A dossier whose ``dateDerniereModification`` and state were already applied is skipped, so
running the sync twice changes nothing. Each dossier is applied in its own transactions and
its row is marked applied last; the run's page cursor is kept, so an interrupted run resumes
at the page it reached and re-applies at most the dossier it was on.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ti_workflow.clock import SimulatedClock, as_utc
from ti_workflow.domain.actors import AUDITOR, CANDIDATE, EMAIL_RE, Actor
from ti_workflow.domain.candidacy import normalise, parse_candidacy
from ti_workflow.ds import store
from ti_workflow.ds.client import DsClient
from ti_workflow.ds.errors import DsError, MappingError
from ti_workflow.ds.mapping import Attachment, DsMapping, candidacy_data
from ti_workflow.engine import Engine
from ti_workflow.errors import GuardRefused, InvalidData, TiWorkflowError
from ti_workflow.files.errors import FileRefused
from ti_workflow.storage.database import read, transaction
from ti_workflow.storage.repository import StoredCase

SKEW = timedelta(minutes=5)
"""The next run asks for dossiers changed since the last one started, minus this margin
(clock skew between DS and us); dossiers seen again are skipped as already applied."""
FINAL = ("labelled", "not_selected", "withdrawn", "lapsed")
READER = Actor(AUDITOR)


def engine_at(engine: Engine, instant: datetime) -> Engine:
    """The same engine (database, catalog, hooks) with a clock that reads ``instant``:
    for a fact recorded when it happened on DS (a filing at its ``dateDepot``)."""
    view = copy.copy(engine)
    view.clock = SimulatedClock(instant)
    return view


def instant(text: str | None) -> datetime | None:
    """A DS ISO 8601 instant, in UTC (as stored: SQLite keeps no offset)."""
    return None if not text else as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


@dataclass
class SyncReport:
    pages: int = 0
    seen: int = 0
    created: int = 0
    updated: int = 0
    submitted: int = 0
    refused: int = 0
    withdrawn: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)
    resumed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "seen": self.seen,
            "created": self.created,
            "updated": self.updated,
            "submitted": self.submitted,
            "refused": self.refused,
            "withdrawn": self.withdrawn,
            "unchanged": self.unchanged,
            "problems": list(self.problems),
            "resumed": self.resumed,
        }


class Syncer:
    def __init__(
        self,
        engine: Engine,
        client: DsClient,
        mapping: DsMapping,
        procedure: int,
    ) -> None:
        self.engine = engine
        self.client = client
        self.mapping = mapping
        self.procedure = procedure

    # --- the run ----------------------------------------------------------------------

    def run(self, since: datetime | None = None) -> SyncReport:
        """Apply every dossier changed since ``since`` (default: where the last run ended),
        then every dossier deleted since the last run."""
        report = SyncReport()
        now = self.engine.clock.now()
        with transaction(self.engine.db) as conn:
            state = store.sync_row(conn, self.procedure)
            cursor = state.get("run_cursor")
            if since is None and state.get("run_started_at") is not None:
                report.resumed = True  # an interrupted run: take it up where it was
                run_since, started = state.get("run_since"), state["run_started_at"]
            else:
                run_since = since if since is not None else state.get("since")
                started, cursor = now, None
                store.save_sync(
                    conn,
                    self.procedure,
                    run_since=run_since,
                    run_started_at=started,
                    run_cursor=None,
                    run_max_seen=None,
                )
        for nodes, end, _more in self.client.dossiers(
            self.procedure, _iso(run_since), after=cursor
        ):
            report.pages += 1
            for node in nodes:
                report.seen += 1
                self._apply_safely(node, report)
            with transaction(self.engine.db) as conn:
                store.save_sync(conn, self.procedure, run_cursor=end)
        self._deleted(state.get("deleted_since"), now, report)
        with transaction(self.engine.db) as conn:
            store.save_sync(
                conn,
                self.procedure,
                since=started - SKEW,
                run_since=None,
                run_cursor=None,
                run_started_at=None,
                last_run_at=now,
                last_report=report.as_dict(),
            )
        return report

    def _deleted(self, since: datetime | None, now: datetime, report: SyncReport) -> None:
        for nodes, _end, _more in self.client.deleted_dossiers(self.procedure, _iso(since)):
            for node in nodes:
                self._delete(node, report)
        with transaction(self.engine.db) as conn:
            store.save_sync(conn, self.procedure, deleted_since=now - SKEW)

    # --- one dossier --------------------------------------------------------------------

    def _apply_safely(self, node: dict[str, Any], report: SyncReport) -> None:
        try:
            self._apply(node, report)
        except DsError:
            raise  # DS itself failed (outage, token): the run stops, resumable
        except TiWorkflowError as exc:  # this dossier only: recorded, the run goes on
            self._applied(node, [{"kind": exc.kind, "message": str(exc)}], report)

    def _apply(self, d: dict[str, Any], report: SyncReport) -> None:
        number, state = int(d["number"]), str(d["state"])
        modified = instant(d["dateDerniereModification"])
        assert modified is not None
        with read(self.engine.db) as conn:
            link = store.link_of_dossier(conn, number)
        if link and link.modified_at == modified and link.state == state:
            report.unchanged += 1
            return
        case = self._case(link)
        source = self._source(d)
        if state == "sans_suite":
            treated = instant(d.get("dateTraitement")) or modified
            self._withdraw(case, treated, source, report)
            self._applied(d, [], report)
            return
        try:
            data, attachments = candidacy_data(self.mapping, d)
            data = self._with_files(data, attachments)
            clean = normalise(parse_candidacy(data))
        except (MappingError, InvalidData) as exc:
            self._applied(d, [_data_problem(exc)], report)
            return
        except FileRefused as exc:
            self._applied(d, [{"kind": exc.kind, "message": str(exc)}], report)
            return
        if case is None:
            owner = str((d.get("usager") or {}).get("email") or "").strip().lower()
            if not EMAIL_RE.match(owner):
                problem = {"kind": "usager", "message": f"usager e-mail {owner!r} is not valid"}
                self._applied(d, [problem], report)
                return
            filed = instant(d["dateDepot"]) or modified
            try:
                case = engine_at(self.engine, filed).create_case(
                    self.mapping.workflow,
                    self.mapping.campaign,
                    clean,
                    Actor(CANDIDATE, email=owner),
                    source=source,
                )
            except GuardRefused as exc:
                self._applied(d, [_refusal(exc)], report)
                return
            report.created += 1
            problems = self._submit(case, filed, source, report)
            self._applied(d, problems, report)
            return
        problems = []
        changed = case.data != clean
        if case.state in FINAL:
            pass  # a closed case takes nothing more from DS
        elif state != "en_construction":
            if changed:
                problems.append(
                    {
                        "kind": "not_imported",
                        "message": f"the dossier changed on DS while {state}: its new values "
                        "are not imported (the case is under review)",
                    }
                )
        elif changed or (case.state == "draft" and case.last_seq == 1):
            # Never filed (a run stopped between the creation and the filing): filed at its
            # dateDepot, as it would have been; a change: at its dateDerniereModification.
            at = case.updated_at if not changed else max(modified, case.updated_at)
            actor = Actor(CANDIDATE, email=case.owner_email)
            if changed and case.state == "submitted":
                case = engine_at(self.engine, at).fire(case.id, "reopen", actor, source=source).case
            if changed and case.state == "draft":
                case = engine_at(self.engine, at).update_data(case.id, clean, actor, source=source)
                report.updated += 1
            if case.state == "draft":
                problems = self._submit(case, at, source, report)
            elif changed:
                problems.append(
                    {
                        "kind": "not_imported",
                        "message": f"the dossier changed on DS while its case is {case.state}",
                    }
                )
        self._applied(d, problems, report)

    def _submit(
        self, case: StoredCase, at: datetime, source: dict[str, Any], report: SyncReport
    ) -> list[dict[str, Any]]:
        actor = Actor(CANDIDATE, email=case.owner_email)
        try:
            engine_at(self.engine, at).fire(case.id, "submit", actor, source=source)
        except GuardRefused as exc:
            report.refused += 1
            return [_refusal(exc)]
        report.submitted += 1
        return []

    def _withdraw(
        self, case: StoredCase | None, at: datetime, source: dict[str, Any], report: SyncReport
    ) -> None:
        if case is None or case.state in FINAL:
            return
        actor = Actor(CANDIDATE, email=case.owner_email)
        at = max(at, case.updated_at)
        engine_at(self.engine, at).fire(case.id, "withdraw", actor, source=source)
        report.withdrawn += 1

    def _delete(self, node: dict[str, Any], report: SyncReport) -> None:
        number = int(node["number"])
        deleted = instant(node["dateSupression"])
        assert deleted is not None
        with read(self.engine.db) as conn:
            link = store.link_of_dossier(conn, number)
        if link is None or link.deleted_at is not None:
            return
        source = {
            "ds": {
                "procedure": self.procedure,
                "dossier": number,
                "date_supression": node["dateSupression"],
                "reason": node.get("reason"),
                "imported_at": self.engine.clock.now().isoformat(),
            }
        }
        self._withdraw(self._case(link), deleted, source, report)
        with transaction(self.engine.db) as conn:
            store.save_link(
                conn,
                number,
                {"deleted_at": deleted, "state": "supprime", "synced_at": self.engine.clock.now()},
            )

    # --- helpers ------------------------------------------------------------------------

    def _case(self, link: store.Link | None) -> StoredCase | None:
        if link is None or link.case_id is None:
            return None
        return self.engine.get(link.case_id, READER)

    def _source(self, d: dict[str, Any]) -> dict[str, Any]:
        return {
            "ds": {
                "procedure": self.procedure,
                "dossier": int(d["number"]),
                "id": d["id"],
                "state": d["state"],
                "date_depot": d.get("dateDepot"),
                "date_derniere_modification": d["dateDerniereModification"],
                "imported_at": self.engine.clock.now().isoformat(),
            }
        }

    def _with_files(self, data: dict[str, Any], attachments: list[Attachment]) -> dict[str, Any]:
        """Each letter's PDF fetched, checked against DS's size and MD5, and put in the file
        store (refused there if it is no PDF or over 10 MiB); its reference is kept in
        ``letters_of_intent[i].file``, so the hash-chained event covers its content."""
        letters = data.get("letters_of_intent") or []
        for a in attachments:
            blob = self.client.download(a.url, a.checksum, a.size, a.filename)
            letters[a.letter]["file"] = self.engine.files.put(blob, name=a.filename).as_ref()
        return data

    def _applied(
        self, d: dict[str, Any], problems: list[dict[str, Any]], report: SyncReport
    ) -> None:
        with transaction(self.engine.db) as conn:
            store.save_link(
                conn,
                int(d["number"]),
                {
                    "procedure": self.procedure,
                    "dossier_id": d["id"],
                    "state": d["state"],
                    "date_depot": instant(d.get("dateDepot")),
                    "modified_at": instant(d["dateDerniereModification"]),
                    "problems": problems,
                    "synced_at": self.engine.clock.now(),
                },
            )
        if problems:
            report.problems += [f"dossier n° {d['number']}: {_summary(p)}" for p in problems]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _refusal(exc: GuardRefused) -> dict[str, Any]:
    return {
        "kind": "refused",
        "trigger": exc.trigger,
        "rules": [r.as_dict() for r in exc.rules],
        "message": "; ".join(r.message_fr for r in exc.rules),
    }


def _data_problem(exc: MappingError | InvalidData) -> dict[str, Any]:
    if isinstance(exc, InvalidData):
        return {"kind": "invalid_data", "message": "; ".join(str(e) for e in exc.errors)}
    return {"kind": "mapping", "message": "; ".join(exc.errors)}


def _summary(problem: dict[str, Any]) -> str:
    return f"{problem['kind']}: {problem.get('message', '')}"
