"""Definition versions: what changed between two, and moving in-flight cases to another.

A case stays pinned to the version it was created with. Moving it is an explicit,
audited act: one ``migrate`` event per case (payload ``from_version``,
``to_version``), hash-chained like any other, written with the case's new
``definition_version`` in the same transaction under ``version = expected``.
Replay follows the change. A move to a version where the case's state does not
exist is refused, and then nothing moves at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from ti_workflow.audit.replay import MIGRATE
from ti_workflow.audit.store import cases_t
from ti_workflow.definitions.loader import load_definition
from ti_workflow.domain.actors import NATIONAL_COMMITTEE, SYSTEM, Actor
from ti_workflow.domain.definition import Definition, Transition
from ti_workflow.domain.events import GENESIS, Event
from ti_workflow.engine import Engine
from ti_workflow.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidData,
    NotFound,
    TiWorkflowError,
)
from ti_workflow.storage.repository import StoredCase, insert_events

MIGRATING_ROLES = (NATIONAL_COMMITTEE, SYSTEM)

_MIGRATE_CASE = (
    update(cases_t)
    .where(cases_t.c.id == bindparam("case_id"), cases_t.c.version == bindparam("expected"))
    .values(
        definition_version=bindparam("to_version"),
        version=bindparam("new_version"),
        last_seq=bindparam("last_seq"),
        head_hash=bindparam("head_hash"),
        updated_at=bindparam("updated_at"),
    )
)


class MigrationRefused(TiWorkflowError):
    kind = "migration_refused"

    def __init__(self, to_version: str, refusals: list[dict[str, Any]]) -> None:
        self.to_version = to_version
        self.refusals = refusals
        listed = "\n".join(f"  - case {r['case_id']}: {r['reason']}" for r in refusals)
        super().__init__(
            f"migration to {to_version[:12]} refused for {len(refusals)} case(s), nothing was "
            f"moved / migration refusée, aucun dossier déplacé:\n{listed}"
        )

    def details(self) -> list[dict[str, str | None]]:
        return [{"case_id": str(r["case_id"]), "message": r["reason"]} for r in self.refusals]


# --- diff ---------------------------------------------------------------------------


def resolve_definition(engine: Engine | None, ref: str) -> Definition:
    """A YAML file, or a stored version (its full hash or a prefix of at least 6 characters)."""
    path = Path(ref)
    if ref.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise NotFound("workflow file", ref)
        return load_definition(path)
    if engine is None:
        raise NotFound("workflow file", ref)
    if len(ref) < 6 or any(ch not in "0123456789abcdef" for ch in ref.lower()):
        raise InvalidData(
            "definition version",
            [
                FieldError(
                    "VERSION",
                    f"{ref!r} is neither a YAML file nor a version hash prefix (at least 6 "
                    f"hex characters); stored versions: {_known(engine)}",
                )
            ],
        )
    matches = [d for v, d in engine.catalog.definitions.items() if v.startswith(ref.lower())]
    if not matches:
        raise NotFound("definition version", f"{ref} (stored: {_known(engine)})")
    if len(matches) > 1:
        raise InvalidData(
            "definition version",
            [
                FieldError(
                    "VERSION", f"{ref!r} matches {len(matches)} versions; give more characters"
                )
            ],
        )
    return matches[0]


def _known(engine: Engine) -> str:
    return ", ".join(f"{d.name}@{v[:12]}" for v, d in sorted(engine.catalog.definitions.items()))


def _transition_view(t: Transition) -> dict[str, Any]:
    view = asdict(t)
    view.pop("trigger")
    view["payload"] = [asdict(f) for f in t.payload]
    return view


def diff(old: Definition, new: Definition) -> dict[str, Any]:
    """Every difference that changes behaviour: states, transitions, roles, guards, effects."""
    old_states = {s.name: s for s in old.states}
    new_states = {s.name: s for s in new.states}
    changes: list[dict[str, Any]] = []
    for name in sorted(old_states.keys() - new_states.keys()):
        changes.append({"what": "state removed", "name": name})
    for name in sorted(new_states.keys() - old_states.keys()):
        changes.append({"what": "state added", "name": name})
    for name in sorted(old_states.keys() & new_states.keys()):
        if old_states[name] != new_states[name]:
            changes.append(
                {
                    "what": "state changed",
                    "name": name,
                    "old": asdict(old_states[name]),
                    "new": asdict(new_states[name]),
                }
            )
    old_t = {(t.trigger, t.sources): t for t in old.transitions}
    new_t = {(t.trigger, t.sources): t for t in new.transitions}
    for key in sorted(old_t.keys() - new_t.keys()):
        changes.append({"what": "transition removed", "name": _tname(key)})
    for key in sorted(new_t.keys() - old_t.keys()):
        changes.append(
            {"what": "transition added", "name": _tname(key), "new": _transition_view(new_t[key])}
        )
    for key in sorted(old_t.keys() & new_t.keys()):
        a, b = _transition_view(old_t[key]), _transition_view(new_t[key])
        for attr in a:
            if a[attr] != b[attr]:
                changes.append(
                    {
                        "what": f"transition {attr} changed",
                        "name": _tname(key),
                        "old": a[attr],
                        "new": b[attr],
                    }
                )
    for attr in (
        "name",
        "initial",
        "form",
        "create_roles",
        "editable_in",
        "timers",
        "notifications",
    ):
        if getattr(old, attr) != getattr(new, attr):
            changes.append(
                {
                    "what": f"{attr} changed",
                    "name": attr,
                    "old": getattr(old, attr),
                    "new": getattr(new, attr),
                }
            )
    return {
        "old": {"workflow": old.name, "version": old.version, "source": old.source},
        "new": {"workflow": new.name, "version": new.version, "source": new.source},
        "identical": not changes,
        "changes": changes,
    }


def _tname(key: tuple[str, tuple[str, ...]]) -> str:
    return f"{key[0]} from {'|'.join(key[1])}"


# --- migrate -------------------------------------------------------------------------


@dataclass
class MigrationReport:
    to_version: str
    workflow: str
    dry_run: bool
    moves: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_migration(
    engine: Engine, to: str, case_ids: list[int] | None = None
) -> tuple[Definition, list[StoredCase], MigrationReport]:
    target = resolve_definition(engine, to)
    if target.version not in engine.catalog.definitions:
        raise NotFound(
            "stored definition version",
            f"{target.version[:12]} (run `ti-workflow init` with that file first)",
        )
    with engine.db.connect() as conn:
        query = select(cases_t).where(cases_t.c.workflow == target.name).order_by(cases_t.c.id)
        if case_ids:
            query = query.where(cases_t.c.id.in_(case_ids))
        rows = [StoredCase.from_row(r) for r in conn.execute(query)]
    if case_ids:
        missing = sorted(set(case_ids) - {c.id for c in rows})
        if missing:
            raise NotFound(f"{target.name} case", ", ".join(map(str, missing)))
    report = MigrationReport(target.version, target.name, dry_run=True)
    movable = []
    for case in rows:
        current = engine.catalog.definition(case.definition_version)
        if case.definition_version == target.version or current.state(case.state).final:
            continue
        entry = {
            "case_id": case.id,
            "title": case.title,
            "state": case.state,
            "from_version": case.definition_version,
            "to_version": target.version,
        }
        if case.state not in target.state_names:
            entry["reason"] = (
                f"state {case.state!r} does not exist in version {target.short_version} "
                f"(its states: {', '.join(target.state_names)}) / l'état {case.state!r} "
                "n'existe pas dans la version cible"
            )
            report.refusals.append(entry)
            continue
        old_out = {t.trigger for t in current.outgoing(case.state)}
        new_out = {t.trigger for t in target.outgoing(case.state)}
        entry["triggers_added"] = sorted(new_out - old_out)
        entry["triggers_removed"] = sorted(old_out - new_out)
        report.moves.append(entry)
        movable.append(case)
    return target, movable, report


def migrate(
    engine: Engine,
    to: str,
    actor: Actor,
    dry_run: bool = False,
    case_ids: list[int] | None = None,
) -> MigrationReport:
    if actor.role not in MIGRATING_ROLES:
        raise Forbidden(
            actor.label,
            "migrate cases",
            f"only {', '.join(MIGRATING_ROLES)} may move cases between versions",
        )
    target, movable, report = plan_migration(engine, to, case_ids)
    report.dry_run = dry_run
    if dry_run or not movable:
        return report
    if report.refusals:
        raise MigrationRefused(target.version, report.refusals)
    now = engine.clock.now()
    with engine.db.begin() as conn:
        for case in movable:
            _move(conn, case, target, actor, now)
    return report


def _move(conn: Connection, case: StoredCase, target: Definition, actor: Actor, now: Any) -> None:
    event = Event(
        case_id=case.id,
        seq=case.last_seq + 1,
        trigger=MIGRATE,
        source=case.state,
        dest=case.state,
        actor=actor.label,
        role=actor.role,
        at=now,
        payload={"from_version": case.definition_version, "to_version": target.version},
        annotations={},
        definition_version=target.version,
        prev_hash=case.head_hash or GENESIS,
    )
    event = Event(**{**event.__dict__, "hash": event.compute_hash()})
    result = conn.execute(
        _MIGRATE_CASE,
        {
            "case_id": case.id,
            "expected": case.version,
            "to_version": target.version,
            "new_version": case.version + 1,
            "last_seq": event.seq,
            "head_hash": event.hash,
            "updated_at": now,
        },
    )
    if result.rowcount != 1:
        raise Conflict(case.id, case.version, None)
    insert_events(conn, case, [event])
