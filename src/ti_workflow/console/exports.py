"""Exports of the console's lists: the cases and the regional opinions, as CSV or XLSX.

* The same filters as the list (state, region, campaign, text, sort), every page.
* The same scope as the list: the engine's (a region exports the cases that concern it,
  a candidate its own), and the opinion grid's (a region's rows only for a regional body,
  the other body's opinion as "rendu" only; no opinion export for candidates).
* French headers and labels (states from the workflow file, bodies, opinions, regions);
  instants in Paris time (``22/09/2023 23:59`` in CSV, a date cell in XLSX).
* CSV: UTF-8 with a byte order mark (spreadsheet software then reads the accents),
  comma-separated, or semicolon-separated with ``separateur=point-virgule`` (what a
  spreadsheet in French expects).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from ti_workflow.clock import PARIS
from ti_workflow.console import fr
from ti_workflow.console.pages import (
    SORTS,
    WORKFLOW,
    due_date,
    opinion_grid,
    shown_state,
    state_label,
)
from ti_workflow.console.web import engine_of, signed_in, templates
from ti_workflow.domain.actors import CANDIDATE, REGIONAL_ROLES, Actor
from ti_workflow.engine import Engine
from ti_workflow.errors import NotFound
from ti_workflow.storage.repository import CASE_ORDERS, StoredCase

router = APIRouter(include_in_schema=False)
BATCH = 500
SEPARATORS = {"virgule": ",", "point-virgule": ";"}
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
Value = str | int | datetime | None
Short = Annotated[str, Query(max_length=100)]


def paris_text(value: datetime | None) -> str:
    return value.astimezone(PARIS).strftime("%d/%m/%Y %H:%M") if value else ""


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


class Filters:
    """The list's filters, checked as the list checks them (unknown values are ignored)."""

    def __init__(self, engine: Engine, etat: str, region: str, campagne: str, q: str, tri: str):
        definition = engine.catalog.current_definition(WORKFLOW)
        self.state = etat if etat in {s.name for s in definition.states} else None
        self.region = region if region in engine.catalog.reference.regions else None
        self.campaign = campagne if campagne in engine.catalog.campaigns else None
        self.text = q.strip() or None
        self.order = tri if tri in SORTS and tri in CASE_ORDERS else "id"

    def cases(self, engine: Engine, actor: Actor) -> Iterator[StoredCase]:
        offset = 0
        while True:
            found, total = engine.list_cases(
                actor,
                workflow=WORKFLOW,
                state=self.state,
                campaign=self.campaign,
                region=self.region,
                text=self.text,
                limit=BATCH,
                offset=offset,
                order=self.order,
            )
            yield from found
            offset += BATCH
            if offset >= total or not found:
                return


def case_table(
    engine: Engine, actor: Actor, filters: Filters
) -> tuple[list[str], list[list[Value]]]:
    regions = engine.catalog.reference.regions
    campaigns = {c.id: c.name for c in engine.catalog.campaigns.values()}
    candidate = actor.role == CANDIDATE
    headers = ["N°", "Territoire", "État", "Campagne", "Régions concernées"]
    if not candidate:
        headers += ["Avis régionaux", "Échéance des avis"]
    headers += ["Créé le", "Modifié le"]
    rows: list[list[Value]] = []
    for case in filters.cases(engine, actor):
        state = shown_state(engine, actor.role, case)
        row: list[Value] = [
            case.id,
            case.title or "(sans nom)",
            state_label(engine.catalog.definition(case.definition_version), state),
            campaigns.get(case.campaign_id, case.campaign_id),
            ", ".join(regions.get(r, r) for r in case.regions),
        ]
        if not candidate:
            row += [
                _opinion_summary(engine, case, actor),
                due_date(engine, case) if case.state == "regional_review" else None,
            ]
        row += [case.created_at, case.updated_at]
        rows.append(row)
    return headers, rows


def _opinion_summary(engine: Engine, case: StoredCase, actor: Actor) -> str:
    parts = []
    for region in opinion_grid(engine, case, actor.role, actor.region):
        if actor.role in REGIONAL_ROLES and region["code"] != actor.region:
            continue
        for b in region["bodies"]:
            said = _said(b)
            parts.append(f"{region['name']}, {fr.role(b['body'])} : {said}")
    return fr.typography(" ; ".join(parts))


def _said(body: dict[str, Any]) -> str:
    if not body["given"]:
        return "en attente"
    if not body["shown"]:
        return "rendu"
    return fr.OPINIONS.get(body["opinion"] or "", "rendu").lower()


def opinion_table(
    engine: Engine, actor: Actor, filters: Filters
) -> tuple[list[str], list[list[Value]]]:
    if actor.role == CANDIDATE:
        raise NotFound("page", "export des avis")
    headers = [
        "N° du dossier",
        "Territoire",
        "État du dossier",
        "Région",
        "Instance",
        "Avis",
        "Motifs",
        "Rendu le",
        "Échéance des avis",
    ]
    rows: list[list[Value]] = []
    for case in filters.cases(engine, actor):
        if not case.facts.get("opinions") and case.state != "regional_review":
            continue  # no opinion asked yet (draft, submitted) or never asked
        state = state_label(engine.catalog.definition(case.definition_version), case.state)
        due = due_date(engine, case) if case.state == "regional_review" else None
        for region in opinion_grid(engine, case, actor.role, actor.region):
            if actor.role in REGIONAL_ROLES and region["code"] != actor.region:
                continue
            if filters.region and region["code"] != filters.region:
                continue
            for b in region["bodies"]:
                opinion = fr.OPINIONS.get(b["opinion"] or "", "") if b["shown"] else ""
                rows.append(
                    [
                        case.id,
                        case.title or "(sans nom)",
                        state,
                        region["name"],
                        fr.role(b["body"]),
                        opinion or _said(b).capitalize(),
                        (b["reasons"] or "") if b["shown"] else "",
                        _instant(b["at"]),
                        due,
                    ]
                )
    return headers, rows


# --- writers ------------------------------------------------------------------------------


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Value) -> str | int:
    """A cell as text; a text a spreadsheet would run as a formula (a territory name typed
    by a candidate, ``=HYPERLINK(…)``) gets a leading apostrophe and stays text."""
    if isinstance(value, datetime):
        return paris_text(value)
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(headers: Sequence[str], rows: Sequence[Sequence[Value]], separator: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=separator, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(title: str, headers: Sequence[str], rows: Sequence[Sequence[Value]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for line, row in enumerate(rows, start=2):
        for column, v in enumerate(row, start=1):
            cell = sheet.cell(line, column)
            cell.value = v.astimezone(PARIS).replace(tzinfo=None) if isinstance(v, datetime) else v
            if isinstance(v, str):
                cell.data_type = "s"  # never a formula, whatever the text starts with
    for column, header in enumerate(headers, start=1):
        letter = get_column_letter(column)
        sheet.column_dimensions[letter].width = min(max(len(header) + 4, 14), 60)
        if header.endswith((" le", "Échéance des avis")):
            for cell in sheet[letter][1:]:
                cell.number_format = "dd/mm/yyyy hh:mm"
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def download(
    name: str,
    fmt: str,
    separator: str,
    title: str,
    table: tuple[list[str], list[list[Value]]],
) -> Response:
    headers, rows = table
    if fmt == "xlsx":
        body = to_xlsx(title, headers, rows)
    else:
        body = to_csv(headers, rows, SEPARATORS.get(separator, ","))
    return Response(
        body,
        media_type=FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


@router.get("/exports/{what}.{fmt}")
def export_list(
    request: Request,
    what: str,
    fmt: str,
    etat: Short = "",
    region: Annotated[str, Query(max_length=3)] = "",
    campagne: Short = "",
    q: Annotated[str, Query(max_length=200)] = "",
    tri: Annotated[str, Query(max_length=20)] = "id",
    separateur: Annotated[str, Query(max_length=20)] = "virgule",
) -> Response:
    session = signed_in(request)
    if fmt not in FORMATS or what not in ("dossiers", "avis"):
        raise NotFound("page", f"{what}.{fmt}")
    engine = engine_of(request)
    actor = session.user.actor
    filters = Filters(engine, etat, region, campagne, q, tri)
    if what == "dossiers":
        return download("dossiers", fmt, separateur, "Dossiers", case_table(engine, actor, filters))
    return download(
        "avis", fmt, separateur, "Avis régionaux", opinion_table(engine, actor, filters)
    )


def export_links(query: dict[str, str], role: str) -> list[dict[str, str]]:
    """The download links shown under a list (with its filters)."""
    query_string = urlencode({k: v for k, v in query.items() if v})
    suffix = f"?{query_string}" if query_string else ""
    joiner = "&" if query_string else "?"
    links = [
        {"label": "Dossiers — tableur (XLSX)", "href": f"/exports/dossiers.xlsx{suffix}"},
        {"label": "Dossiers — CSV", "href": f"/exports/dossiers.csv{suffix}"},
        {
            "label": "Dossiers — CSV point-virgule",
            "href": f"/exports/dossiers.csv{suffix}{joiner}separateur=point-virgule",
        },
    ]
    if role != CANDIDATE:
        links += [
            {"label": "Avis régionaux — tableur (XLSX)", "href": f"/exports/avis.xlsx{suffix}"},
            {"label": "Avis régionaux — CSV", "href": f"/exports/avis.csv{suffix}"},
        ]
    return links


templates.env.globals["export_links"] = export_links
