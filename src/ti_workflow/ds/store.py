"""Reads and writes of the connector's tables (SQLAlchemy Core; SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, inspect, select, update

from ti_workflow.ds.tables import DsDossierRow, DsOutboxRow, DsSyncRow
from ti_workflow.storage.database import SchemaOutdated
from ti_workflow.storage.repository import utc

dossiers = DsDossierRow.__table__  # type: ignore[attr-defined]
sync_state = DsSyncRow.__table__  # type: ignore[attr-defined]
ds_outbox = DsOutboxRow.__table__  # type: ignore[attr-defined]


def check_tables(db: Engine) -> None:
    with db.connect() as conn:
        if not inspect(conn).has_table("ds_dossiers"):
            raise SchemaOutdated(
                "the database has no Démarches Simplifiées tables: run `ti-workflow init`"
            )


@dataclass(frozen=True)
class Link:
    number: int
    procedure: int
    dossier_id: str
    case_id: int | None
    state: str
    modified_at: datetime | None
    deleted_at: datetime | None
    problems: list[dict[str, Any]]


def _link(row: Any) -> Link:
    m = row._mapping
    return Link(
        number=int(m["number"]),
        procedure=int(m["procedure"]),
        dossier_id=m["dossier_id"],
        case_id=m["case_id"],
        state=m["state"],
        modified_at=_utc(m["modified_at"]),
        deleted_at=_utc(m["deleted_at"]),
        problems=list(m["problems"] or []),
    )


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def link_of_dossier(conn: Connection, number: int) -> Link | None:
    row = conn.execute(select(dossiers).where(dossiers.c.number == number)).first()
    return None if row is None else _link(row)


def link_of_case(conn: Connection, case_id: int) -> Link | None:
    row = conn.execute(select(dossiers).where(dossiers.c.case_id == case_id)).first()
    return None if row is None else _link(row)


def links(conn: Connection, procedure: int | None = None) -> list[Link]:
    q = select(dossiers).order_by(dossiers.c.number)
    if procedure is not None:
        q = q.where(dossiers.c.procedure == procedure)
    return [_link(r) for r in conn.execute(q).all()]


def save_link(conn: Connection, number: int, values: dict[str, Any]) -> None:
    """Insert or update a dossier's row (one writer per dossier: the sync)."""
    if conn.execute(select(dossiers.c.number).where(dossiers.c.number == number)).first():
        conn.execute(update(dossiers).where(dossiers.c.number == number).values(**values))
    else:
        conn.execute(insert(dossiers).values(**{"number": number, "problems": [], **values}))


def sync_row(conn: Connection, procedure: int) -> dict[str, Any]:
    row = conn.execute(select(sync_state).where(sync_state.c.procedure == procedure)).first()
    if row is None:
        conn.execute(insert(sync_state).values(procedure=procedure, last_report={}))
        return {"procedure": procedure, "last_report": {}}
    return {k: (_utc(v) if isinstance(v, datetime) else v) for k, v in row._mapping.items()}


def save_sync(conn: Connection, procedure: int, **values: Any) -> None:
    conn.execute(update(sync_state).where(sync_state.c.procedure == procedure).values(**values))
