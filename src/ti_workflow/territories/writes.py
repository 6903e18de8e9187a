"""Writes of territories: a change closes the rows in force on its effective date and opens
new ones (never an update of a period's content), under one lock on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select
from sqlalchemy import update as sql_update

from ti_workflow.territories.store import (
    contacts_t,
    governance_t,
    in_force,
    members_t,
    names_t,
    territories_t,
)

TERRITORY_LOCK = 0x7465_7272  # "terr": one advisory lock for every change of membership


def lock_memberships(conn: Connection) -> None:
    """Serialise membership changes so two approvals cannot both take one groupement.

    SQLite already serialises writers (``BEGIN IMMEDIATE``); PostgreSQL's read committed
    would let two transactions check, then both insert. The lock ends with the transaction.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(TERRITORY_LOCK)))


_INSERT_MEMBER = insert(members_t)


def create_territory(
    conn: Connection,
    *,
    territory_id: str,
    campaign_id: str,
    labelled_on: date,
    source: str,
    case_id: int | None,
    name: str,
    members: Sequence[str],
    governance: list[dict[str, Any]] | None,
    justification: str | None,
    now: datetime,
) -> None:
    conn.execute(
        insert(territories_t),
        {
            "id": territory_id,
            "campaign_id": campaign_id,
            "labelled_on": labelled_on,
            "source": source,
            "case_id": case_id,
            "created_at": now,
        },
    )
    dated = {"territory_id": territory_id, "valid_from": labelled_on, "case_id": case_id}
    conn.execute(insert(names_t), {"name": name, **dated})
    if members:
        conn.execute(_INSERT_MEMBER, [{"siren": s, **dated} for s in members])
    if governance is not None:
        conn.execute(
            insert(governance_t), {"members": governance, "justification": justification, **dated}
        )


def close(
    conn: Connection, table: Table, territory_id: str, day: date, case_id: int, **match: Any
) -> int:
    """End, on ``day``, the rows of ``table`` in force that day (and match ``match``)."""
    where = [table.c.territory_id == territory_id, in_force(table, day)]
    where += [table.c[k] == v for k, v in match.items()]
    result = conn.execute(
        sql_update(table).where(*where).values(valid_to=day, ended_by_case_id=case_id)
    )
    return int(result.rowcount)


def open_row(
    conn: Connection, table: Table, territory_id: str, day: date, case_id: int, **values: Any
) -> None:
    conn.execute(
        insert(table).values(territory_id=territory_id, valid_from=day, case_id=case_id, **values)
    )


def set_contact(
    conn: Connection,
    territory_id: str,
    email: str,
    *,
    by: str,
    now: datetime,
    reason: str | None = None,
) -> None:
    """The address that files for the territory from now on; the previous one is closed."""
    conn.execute(
        sql_update(contacts_t)
        .where(contacts_t.c.territory_id == territory_id, contacts_t.c.ended_at.is_(None))
        .values(ended_at=now)
    )
    conn.execute(
        insert(contacts_t).values(
            territory_id=territory_id, email=email, set_by=by, set_at=now, reason=reason
        )
    )
