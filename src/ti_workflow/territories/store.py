"""Effective-dated reads of territories (statements prepared once; writes in ``writes.py``).

A fact holds on day D when ``valid_from <= D < valid_to`` (``valid_to`` NULL: still in
force). Writes never rewrite a period: a change closes the rows in force on its
effective date and opens new ones, so every past answer stays exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    func,
    inspect,
    or_,
    select,
    union_all,
)

from ti_workflow.errors import NotFound
from ti_workflow.storage.database import SchemaOutdated
from ti_workflow.storage.tables import CaseRow, CommuneRow
from ti_workflow.territories.tables import (
    TerritoryCommuneRow,
    TerritoryContactRow,
    TerritoryGovernanceRow,
    TerritoryMemberRow,
    TerritoryNameRow,
    TerritoryRow,
)

territories_t: Table = TerritoryRow.__table__  # type: ignore[attr-defined]
names_t: Table = TerritoryNameRow.__table__  # type: ignore[attr-defined]
members_t: Table = TerritoryMemberRow.__table__  # type: ignore[attr-defined]
tcommunes_t: Table = TerritoryCommuneRow.__table__  # type: ignore[attr-defined]
governance_t: Table = TerritoryGovernanceRow.__table__  # type: ignore[attr-defined]
communes_t: Table = CommuneRow.__table__  # type: ignore[attr-defined]
contacts_t: Table = TerritoryContactRow.__table__  # type: ignore[attr-defined]
cases_t: Table = CaseRow.__table__  # type: ignore[attr-defined]
DATED = (names_t, members_t, tcommunes_t, governance_t)


def in_force(table: Table, day: date | Any) -> ColumnElement[bool]:
    return and_(table.c.valid_from <= day, or_(table.c.valid_to.is_(None), table.c.valid_to > day))


@dataclass(frozen=True)
class Period:
    """One dated fact: a member, a commune, a name, a governance."""

    value: Any
    valid_from: date
    valid_to: date | None
    case_id: int | None
    ended_by_case_id: int | None = None

    def as_dict(self, key: str) -> dict[str, Any]:
        return {
            key: self.value,
            "valid_from": self.valid_from.isoformat(),
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "case_id": self.case_id,
            "ended_by_case_id": self.ended_by_case_id,
        }


@dataclass(frozen=True)
class Territory:
    id: str
    campaign_id: str
    labelled_on: date
    source: str
    case_id: int | None


@dataclass(frozen=True)
class Snapshot:
    """A territory as it stood on one day."""

    territory: Territory
    day: date
    name: str | None
    members: tuple[Period, ...]
    communes: tuple[Period, ...] = ()
    """``value`` is ``(code_insee, mode)``: ``include`` or ``exclude``."""
    governance: list[dict[str, Any]] = field(default_factory=list)
    governance_justification: str | None = None

    @property
    def labelled(self) -> bool:
        return self.territory.labelled_on <= self.day

    @property
    def sirens(self) -> list[str]:
        return [p.value for p in self.members]


def _period(row: Any, value: Any) -> Period:
    return Period(value, row.valid_from, row.valid_to, row.case_id, row.ended_by_case_id)


def check_tables(db: Engine) -> None:
    """A database initialised before this package existed: say what to do."""
    with db.connect() as conn:
        if not inspect(conn).has_table("territories"):
            raise SchemaOutdated(
                f"the database {db.url!r} has no territory tables: run `ti-workflow init`"
            )


def load_territory(conn: Connection, territory_id: str) -> Territory:
    row = conn.execute(select(territories_t).where(territories_t.c.id == territory_id)).first()
    if row is None:
        raise NotFound("territory", territory_id)
    return Territory(row.id, row.campaign_id, row.labelled_on, row.source, row.case_id)


def find_territory(conn: Connection, territory_id: str) -> Territory | None:
    try:
        return load_territory(conn, territory_id)
    except NotFound:
        return None


# Statements built once: building and keying a statement costs more than running it.
_TID: BindParameter[str] = bindparam("tid")
_DAY: BindParameter[date] = bindparam("day")
_IN_FORCE = {
    table.name: select(table)
    .where(table.c.territory_id == _TID, in_force(table, _DAY))
    .order_by(table.c.id)
    for table in DATED
}
_CHANGES = union_all(
    *(select(t.c.valid_from.label("day")).where(t.c.territory_id == _TID) for t in DATED),
    *(select(t.c.valid_to.label("day")).where(t.c.territory_id == _TID) for t in DATED),
).subquery()
_LAST_CHANGE = select(func.max(_CHANGES.c.day))
_NAME_ON = (
    select(names_t.c.name)
    .where(names_t.c.territory_id == _TID, in_force(names_t, _DAY))
    .order_by(names_t.c.id.desc())
)
_SIRENS: BindParameter[list[str]] = bindparam("sirens", expanding=True)
_MEMBERS_ON = (
    select(members_t)
    .where(members_t.c.siren.in_(_SIRENS), in_force(members_t, _DAY))
    .order_by(members_t.c.valid_from, members_t.c.id)
)
_MEMBERS_FROM = (
    select(members_t)
    .where(
        members_t.c.siren.in_(_SIRENS),
        or_(members_t.c.valid_to.is_(None), members_t.c.valid_to > _DAY),
    )
    .order_by(members_t.c.valid_from, members_t.c.id)
)


def snapshot(conn: Connection, territory: Territory, day: date) -> Snapshot:
    tid = territory.id

    def rows(table: Table) -> Sequence[Any]:
        return conn.execute(_IN_FORCE[table.name], {"tid": tid, "day": day}).all()

    name_rows = rows(names_t)
    gov_rows = rows(governance_t)
    return Snapshot(
        territory=territory,
        day=day,
        name=name_rows[-1].name if name_rows else None,
        members=tuple(_period(r, r.siren) for r in sorted(rows(members_t), key=lambda r: r.siren)),
        communes=tuple(_period(r, (r.code_insee, r.mode)) for r in rows(tcommunes_t)),
        governance=list(gov_rows[-1].members) if gov_rows else [],
        governance_justification=gov_rows[-1].justification if gov_rows else None,
    )


def history(conn: Connection, territory_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every period of every fact of the territory, oldest first."""

    def rows(table: Table) -> Sequence[Any]:
        query = select(table).where(table.c.territory_id == territory_id)
        return conn.execute(query.order_by(table.c.valid_from, table.c.id)).all()

    return {
        "names": [_period(r, r.name).as_dict("name") for r in rows(names_t)],
        "members": [_period(r, r.siren).as_dict("siren") for r in rows(members_t)],
        "communes": [
            {**_period(r, r.code_insee).as_dict("code_insee"), "mode": r.mode}
            for r in rows(tcommunes_t)
        ],
        "governance": [
            {**_period(r, r.members).as_dict("members"), "justification": r.justification}
            for r in rows(governance_t)
        ],
        "contacts": contact_history(conn, territory_id),
    }


def contact(conn: Connection, territory: Territory) -> dict[str, Any] | None:
    """Who files for the territory: the address the Délégation set last, else (a territory
    labelled through the workflow) its candidacy's contact."""
    row = conn.execute(
        select(contacts_t)
        .where(contacts_t.c.territory_id == territory.id, contacts_t.c.ended_at.is_(None))
        .order_by(contacts_t.c.id.desc())
    ).first()
    if row is not None:
        return {
            "email": row.email,
            "source": "set",
            "set_by": row.set_by,
            "set_at": row.set_at.isoformat(),
            "reason": row.reason,
        }
    if territory.case_id is None:
        return None
    data = conn.execute(select(cases_t.c.data).where(cases_t.c.id == territory.case_id)).scalar()
    email = (data or {}).get("contact_email")
    return {"email": email, "source": "candidacy", "case_id": territory.case_id} if email else None


def contact_history(conn: Connection, territory_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(contacts_t)
        .where(contacts_t.c.territory_id == territory_id)
        .order_by(contacts_t.c.id)
    ).all()
    return [
        {
            "email": r.email,
            "set_by": r.set_by,
            "set_at": r.set_at.isoformat(),
            "reason": r.reason,
            "ended_at": r.ended_at.isoformat() if r.ended_at else None,
        }
        for r in rows
    ]


def last_change_on(conn: Connection, territory_id: str) -> date | None:
    """The latest date on which any fact of the territory started or ended."""
    value = conn.execute(_LAST_CHANGE, {"tid": territory_id}).scalar()
    return date.fromisoformat(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Membership:
    territory_id: str
    name: str | None
    siren: str
    valid_from: date
    valid_to: date | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "territory_id": self.territory_id,
            "name": self.name,
            "siren": self.siren,
            "valid_from": self.valid_from.isoformat(),
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
        }


def name_on(conn: Connection, territory_id: str, day: date) -> str | None:
    row = conn.execute(_NAME_ON, {"tid": territory_id, "day": day}).first()
    return row.name if row else None


def memberships(
    conn: Connection, sirens: Iterable[str], *, on: date | None = None, from_: date | None = None
) -> list[Membership]:
    """Memberships of these groupements in force on a day, or at any time from a day on."""
    sirens = list(sirens)
    if not sirens or (on is None) == (from_ is None):
        return []
    query = _MEMBERS_ON if on is not None else _MEMBERS_FROM
    out = []
    for r in conn.execute(query, {"sirens": sirens, "day": on or from_}).all():
        day = on or max(r.valid_from, from_ or r.valid_from)
        out.append(
            Membership(
                r.territory_id, name_on(conn, r.territory_id, day), r.siren, r.valid_from,
                r.valid_to,
            )
        )  # fmt: skip
    return out


def communes_info(conn: Connection, codes: Iterable[str]) -> dict[str, dict[str, Any]]:
    codes = list(codes)
    if not codes:
        return {}
    rows = conn.execute(select(communes_t).where(communes_t.c.code_insee.in_(codes))).all()
    return {
        r.code_insee: {"name": r.name, "epci_siren": r.epci_siren, "region": r.region} for r in rows
    }


def communes_included_elsewhere(
    conn: Connection, sirens: Iterable[str], territory_id: str, day: date
) -> dict[str, str]:
    """Communes of these groupements included on their own in another territory from ``day``
    on: INSEE code -> territory id."""
    sirens = list(sirens)
    if not sirens:
        return {}
    query = (
        select(tcommunes_t.c.code_insee, tcommunes_t.c.territory_id)
        .join(communes_t, communes_t.c.code_insee == tcommunes_t.c.code_insee)
        .where(
            communes_t.c.epci_siren.in_(sirens),
            tcommunes_t.c.mode == "include",
            tcommunes_t.c.territory_id != territory_id,
            or_(tcommunes_t.c.valid_to.is_(None), tcommunes_t.c.valid_to > day),
        )
    )
    return {r.code_insee: r.territory_id for r in conn.execute(query).all()}


def commune_holders(conn: Connection, code: str, epci: str | None, day: date) -> list[str]:
    """Territories holding a commune on a day: included on its own, or through its groupement
    unless excluded."""
    included = conn.execute(
        select(tcommunes_t.c.territory_id).where(
            tcommunes_t.c.code_insee == code,
            tcommunes_t.c.mode == "include",
            in_force(tcommunes_t, day),
        )
    ).scalars()
    holders = set(included)
    if epci:
        for m in memberships(conn, [epci], on=day):
            excluded = conn.execute(
                select(tcommunes_t.c.id).where(
                    tcommunes_t.c.territory_id == m.territory_id,
                    tcommunes_t.c.code_insee == code,
                    tcommunes_t.c.mode == "exclude",
                    in_force(tcommunes_t, day),
                )
            ).first()
            if excluded is None:
                holders.add(m.territory_id)
    return sorted(holders)


def list_territories(
    conn: Connection, day: date, campaign: str | None = None
) -> list[tuple[Territory, str | None, list[str]]]:
    """Territories labelled on or before ``day``, with their name and members that day."""
    query = select(territories_t).where(territories_t.c.labelled_on <= day)
    query = query.order_by(territories_t.c.id)
    if campaign:
        query = query.where(territories_t.c.campaign_id == campaign)
    tids = {r.id: r for r in conn.execute(query).all()}
    names: dict[str, str] = {}
    for r in conn.execute(select(names_t).where(in_force(names_t, day)).order_by(names_t.c.id)):
        names[r.territory_id] = r.name
    members: dict[str, list[str]] = {}
    for r in conn.execute(select(members_t).where(in_force(members_t, day))).all():
        members.setdefault(r.territory_id, []).append(r.siren)
    return [
        (
            Territory(r.id, r.campaign_id, r.labelled_on, r.source, r.case_id),
            names.get(tid),
            sorted(members.get(tid, [])),
        )
        for tid, r in tids.items()
    ]
