"""Loading an existing list of labelled territories (the November 2023 list) as territories
whose history starts on the campaign's ``announcement_on`` date, so that a deployment can
start after the campaign. All or nothing; a second import of the same list changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert
from stdnum.fr import siren as siren_number

from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.reference import Referential
from ti_workflow.domain.text import text_problem
from ti_workflow.errors import FieldError, InvalidData
from ti_workflow.territories import store, writes
from ti_workflow.territories.errors import TerritoryRefused, double_membership

SHIPPED = "ti_2023_2027_liste20231114_membres.csv"
MEMBER_COLUMNS = ("id_ti", "lib_ti", "siren_groupement")
TERRITORY_COLUMNS = ("id_ti", "lib_ti", "sirens_groupements")
ANNOUNCEMENT = "announcement_on"
TERRITORY_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class Listed:
    id: str
    name: str
    line: int
    members: dict[str, int] = field(default_factory=dict)
    """SIREN -> line of the file."""


@dataclass(frozen=True)
class ImportReport:
    file: str
    campaign: str
    history_starts_on: date
    created: tuple[str, ...]
    unchanged: tuple[str, ...]
    differing: tuple[str, ...]
    """Already in the database with another name or perimeter (amended since): kept as is."""
    territories: int
    memberships: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "campaign": self.campaign,
            "history_starts_on": self.history_starts_on.isoformat(),
            "territories_in_file": self.territories,
            "memberships_in_file": self.memberships,
            "created": len(self.created),
            "unchanged": len(self.unchanged),
            "differing": list(self.differing),
        }


def shipped_list() -> str:
    return (resources.files("ti_workflow.data") / SHIPPED).read_text(encoding="utf-8")


def read_text(path: Path | None) -> tuple[str, str]:
    if path is None:
        return f"(shipped) {SHIPPED}", shipped_list()
    try:
        return str(path), path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        problem = FieldError("FILE", f"cannot read {path}: {reason}")
        raise InvalidData("territory list", [problem]) from None


def parse_list(name: str, text: str, reference: Referential) -> dict[str, Listed]:
    """Check every line (ids, names, SIRENs valid and known, no groupement in two territories)
    and report every problem with its line."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    per_member = all(c in columns for c in MEMBER_COLUMNS)
    if not per_member and not all(c in columns for c in TERRITORY_COLUMNS):
        raise InvalidData(
            "territory list",
            [
                FieldError(
                    f"{name}: line 1",
                    f"expected the columns {', '.join(MEMBER_COLUMNS)} (one line per groupement) "
                    f"or {', '.join(TERRITORY_COLUMNS)} (';'-separated SIRENs); got "
                    f"{', '.join(columns) or 'nothing'}",
                )
            ],
        )
    errors: list[FieldError] = []
    listed: dict[str, Listed] = {}
    owner: dict[str, tuple[str, int]] = {}
    for line, row in enumerate(reader, start=2):
        where = f"{name}: line {line}"
        tid, tname = (row.get("id_ti") or "").strip(), (row.get("lib_ti") or "").strip()
        if not tid or len(tid) > 40:
            errors.append(FieldError(f"{where}: id_ti", "a territory id of 1 to 40 characters"))
            continue
        if not tname:
            errors.append(FieldError(f"{where}: lib_ti", "the territory's name is empty"))
            continue
        bad = [(c, p) for c, v in (("id_ti", tid), ("lib_ti", tname)) if (p := text_problem(v))]
        if bad or not TERRITORY_ID_RE.match(tid):
            errors += [FieldError(f"{where}: {c}", p) for c, p in bad]
            if not bad:
                errors.append(
                    FieldError(f"{where}: id_ti", f"{tid!r}: letters, digits, '-' and '_' only")
                )
            continue
        tname = unicodedata.normalize("NFC", tname)
        entry = listed.setdefault(tid, Listed(tid, tname, line))
        if entry.name != tname:
            errors.append(
                FieldError(
                    f"{where}: lib_ti",
                    f"territory {tid} is named {entry.name!r} on line {entry.line}, not {tname!r}",
                )
            )
        raw = row.get("siren_groupement") if per_member else row.get("sirens_groupements")
        column = "siren_groupement" if per_member else "sirens_groupements"
        for siren in (s.strip() for s in (raw or "").split(";")):
            if not siren_number.is_valid(siren):
                errors.append(
                    FieldError(f"{where}: {column}", f"{siren!r} is not a valid SIREN (9 digits)")
                )
            elif reference.groupement(siren) is None:
                errors.append(
                    FieldError(
                        f"{where}: {column}",
                        f"SIREN {siren} is not an EPCI à fiscalité propre nor a Grand Paris EPT "
                        f"(2023 reference data)",
                    )
                )
            elif siren in owner and owner[siren][0] != tid:
                other, first = owner[siren]
                errors.append(
                    FieldError(
                        f"{where}: {column}",
                        f"groupement {siren} is already in territory {other} (line {first}): "
                        f"no groupement may be in two territories (FAQ 2.1)",
                    )
                )
            elif siren in entry.members:
                errors.append(
                    FieldError(
                        f"{where}: {column}",
                        f"groupement {siren} is listed twice for {tid} "
                        f"(line {entry.members[siren]})",
                    )
                )
            else:
                owner[siren] = (tid, line)
                entry.members[siren] = line
    if not listed and not errors:
        errors.append(FieldError(name, "the file lists no territory"))
    if errors:
        raise InvalidData("territory list", errors)
    return listed


def history_start(campaign: Campaign) -> date:
    value = campaign.parameters.get(ANNOUNCEMENT)
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        raise InvalidData(
            "campaign",
            [
                FieldError(
                    f"{campaign.source or campaign.id}: parameters.{ANNOUNCEMENT}",
                    f"the import dates territories from the campaign's announcement: set "
                    f"{ANNOUNCEMENT} (a date such as 2023-11-14), got {value!r}",
                )
            ],
        )
    return value


def _as_labelled(conn: Connection, t: store.Territory) -> tuple[str | None, list[str]]:
    snap = store.snapshot(conn, t, t.labelled_on)
    return snap.name, snap.sirens


def import_territories(
    conn: Connection,
    campaign: Campaign,
    file: str,
    listed: dict[str, Listed],
    now: datetime,
) -> ImportReport:
    day = history_start(campaign)
    writes.lock_memberships(conn)
    created: list[str] = []
    unchanged: list[str] = []
    differing: list[str] = []
    new: list[Listed] = []
    on_day = {t.id: (name, sirens) for t, name, sirens in store.list_territories(conn, day)}
    for entry in listed.values():
        t = store.find_territory(conn, entry.id) if entry.id not in on_day else None
        if entry.id not in on_day and t is None:
            new.append(entry)
            continue
        # labelled after the announcement: compare it as it began
        name, sirens = on_day[entry.id] if t is None else _as_labelled(conn, t)
        same = name == entry.name and set(sirens) == set(entry.members)
        (unchanged if same else differing).append(entry.id)
    new_ids = {e.id for e in new}
    owner = {s: e.id for e in new for s in e.members}
    clashes = [
        double_membership(m.siren, owner[m.siren], m.territory_id, m.valid_from.isoformat())
        for m in store.memberships(conn, owner, from_=day)
        if m.territory_id not in new_ids
    ]
    if clashes:
        raise TerritoryRefused(f"import of {file}", clashes)
    if new:
        dated = {"valid_from": day, "case_id": None}
        conn.execute(
            insert(store.territories_t),
            [
                {
                    "id": e.id,
                    "campaign_id": campaign.id,
                    "labelled_on": day,
                    "source": "import",
                    "case_id": None,
                    "created_at": now,
                }
                for e in new
            ],
        )
        conn.execute(
            insert(store.names_t), [{"territory_id": e.id, "name": e.name, **dated} for e in new]
        )
        conn.execute(
            insert(store.members_t),
            [{"territory_id": e.id, "siren": s, **dated} for e in new for s in e.members],
        )
        created = [e.id for e in new]
    return ImportReport(
        file=file,
        campaign=campaign.id,
        history_starts_on=day,
        created=tuple(created),
        unchanged=tuple(unchanged),
        differing=tuple(differing),
        territories=len(listed),
        memberships=sum(len(e.members) for e in listed.values()),
    )
