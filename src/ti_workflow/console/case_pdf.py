"""A case's file as a PDF, made on the server with reportlab (pure pip wheel, no system
library; weasyprint would need Pango and friends from the system).

What it holds follows the case page's scope: everyone who may see the case gets the form
and the state; opinions with their content for the committee, the auditor and the body
that gave one ("rendu" for the others); the decision and the timeline (each event with
Paris time, actor, step, hash, and whether the chain verifies) for the committee and the
auditor, as on the console's timeline page.

The standard PDF fonts cover Latin-1/Windows-1252: French text prints as is; the narrow
no-break space (not in that set) is printed as a no-break space.
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ti_workflow.audit.verify import verify
from ti_workflow.console import fr
from ti_workflow.console.pages import (
    READERS,
    members_named,
    opinion_grid,
    regions_named,
    shown_state,
    state_label,
)
from ti_workflow.console.web import engine_of, signed_in
from ti_workflow.engine import Engine

router = APIRouter(include_in_schema=False)
STYLES = getSampleStyleSheet()
BODY = ParagraphStyle("tiw-body", parent=STYLES["BodyText"], fontSize=9.5, leading=12)
SMALL = ParagraphStyle("tiw-small", parent=BODY, fontSize=7.5, leading=9)
HASH = ParagraphStyle("tiw-hash", parent=SMALL, fontName="Courier", fontSize=6.5, leading=8)


def printable(text: Any) -> str:
    """Text for a Paragraph: escaped markup, characters the standard fonts can print."""
    value = fr.typography(str(text if text is not None else "")).replace(fr.NNBSP, fr.NBSP)
    value = value.encode("cp1252", errors="replace").decode("cp1252")
    return escape(value)


def para(text: Any, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(printable(text), style)


def table(rows: list[list[Any]], widths: list[float]) -> Table:
    cells = [[c if isinstance(c, Paragraph) else para(c, SMALL) for c in row] for row in rows]
    made = Table(cells, colWidths=widths, repeatRows=1)
    made.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e3e3fd")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return made


def build(engine: Engine, case_id: int, role: str, region: str | None, actor: Any) -> bytes:
    case = engine.get(case_id, actor)  # NotFound outside the person's scope
    definition = engine.catalog.definition(case.definition_version)
    data = case.data
    reader = role in READERS
    story: list[Any] = [
        para(
            f"Candidature n°{fr.NBSP}{case.id} : {case.title or '(sans nom)'}",
            STYLES["Title"],
        ),
        para(f"Territoires d'industrie — dossier édité le {fr.when(engine.clock.now())}"),
        para(f"État : {state_label(definition, shown_state(engine, role, case))}"),
        para(
            "Régions concernées : "
            + (", ".join(r["name"] for r in regions_named(engine, case.regions)) or "aucune")
        ),
        para(f"Campagne : {engine.catalog.campaign(case.campaign_id).name}"),
        Spacer(1, 4 * mm),
        para("Le dossier", STYLES["Heading2"]),
        para(f"Contact : {data.get('contact_email') or '—'}"),
        para("Périmètre", STYLES["Heading3"]),
    ]
    members = members_named(engine, list((data.get("perimeter") or {}).get("members", [])))
    story += [
        para(
            f"{m['name'] or 'SIREN inconnu du référentiel'} — SIREN {m['siren']}"
            + (f" — {fr.NATURES.get(m['nature'], m['nature'])}" if m["nature"] else "")
            + (f" — {', '.join(m['regions'])}" if m["regions"] else "")
        )
        for m in members
    ] or [para("Aucune intercommunalité.")]
    for key, label in (
        ("single_member_justification", "Justification (une seule intercommunalité)"),
        ("metropole_justification", "Justification (métropole)"),
    ):
        if (data.get("perimeter") or {}).get(key):
            story.append(para(f"{label} : {data['perimeter'][key]}"))
    story.append(para("Gouvernance", STYLES["Heading3"]))
    governance = (data.get("governance") or {}).get("members") or []
    story += [
        para(
            f"{g.get('name')} — {fr.GOVERNANCE_ROLES.get(g.get('role'), g.get('role') or '')}"
            + (f", {g['organisation']}" if g.get("organisation") else "")
        )
        for g in governance
    ] or [para("Aucun membre.")]
    story.append(para("Lettres d'intention", STYLES["Heading3"]))
    for letter in data.get("letters_of_intent") or []:
        line = f"{letter.get('signatory')}, {letter.get('organisation') or ''}"
        if letter.get("date"):
            line += f" — {fr.fr_date(letter['date'])}"
        story.append(para(line))
        if letter.get("file"):
            f = letter["file"]
            story.append(para(f"Fichier {f.get('name')} — SHA-256 {f.get('sha256')}", HASH))
    story.append(para("Plan d'action", STYLES["Heading3"]))
    for n, action in enumerate(data.get("action_plan") or [], start=1):
        priority = fr.PRIORITIES.get(action.get("priority") or "", "priorité non précisée")
        started = " (déjà engagée)" if action.get("already_started") else ""
        story.append(para(f"{n}. {action.get('title')} — {priority}{started}"))
        if action.get("summary"):
            story.append(para(action["summary"], SMALL))

    grid = opinion_grid(engine, case, role, region)
    if grid:
        story += [Spacer(1, 4 * mm), para("Avis d'opportunité régionaux", STYLES["Heading2"])]
        rows: list[list[Any]] = [["Région", "Instance", "Avis", "Motifs", "Rendu le"]]
        for r in grid:
            for b in r["bodies"]:
                if not b["given"]:
                    said = "En attente"
                elif not b["shown"]:
                    said = "Rendu"
                else:
                    said = fr.OPINIONS.get(b["opinion"] or "", "Rendu")
                rows.append(
                    [
                        r["name"],
                        fr.role(b["body"]),
                        said,
                        b["reasons"] or "",
                        fr.when(b["at"]) if b["at"] else "—",
                    ]
                )
        story.append(table(rows, [35 * mm, 40 * mm, 22 * mm, 48 * mm, 35 * mm]))

    if reader:
        decision = case.facts.get("decision")
        story += [Spacer(1, 4 * mm), para("Décision nationale", STYLES["Heading2"])]
        if decision:
            word = "Labellisé" if decision.get("decision") == "labelled" else "Non retenu"
            text = f"{word} le {fr.when(decision.get('at'))}"
            if decision.get("reason"):
                text += f" — motif : {decision['reason']}"
            story.append(para(text))
        else:
            story.append(para("Pas encore de décision."))
        story += _timeline(engine, case_id, actor, definition)
    doc = io.BytesIO()
    SimpleDocTemplate(
        doc,
        pagesize=A4,
        title=f"Candidature n°{fr.NBSP}{case.id}",
        author="Territoires d'industrie",
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
    ).build(story)
    return doc.getvalue()


def _timeline(engine: Engine, case_id: int, actor: Any, definition: Any) -> list[Any]:
    events = engine.history(case_id, actor)
    report = verify(engine, case_id)
    bad = {f.seq for f in report.findings}
    labels = {s.name: s.label_fr or s.name for s in definition.states}
    steps = {t.trigger: t.label_fr for t in definition.transitions} | fr.SPECIAL_STEPS
    regions = dict(engine.catalog.reference.regions)
    rows: list[list[Any]] = [["N°", "Date (Paris)", "Qui", "Étape", "État", "Empreinte"]]
    previous = None
    for e in events:
        linked = previous is None or e.prev_hash == previous
        ok = "" if linked and e.seq not in bad else " — CHAÎNE ROMPUE"
        rows.append(
            [
                str(e.seq),
                fr.when(e.at),
                fr.actor(e.actor, regions),
                steps.get(e.trigger, e.trigger),
                labels.get(e.dest, e.dest),
                para(e.hash + ok, HASH),
            ]
        )
        previous = e.hash
    verdict = (
        "La chaîne d'empreintes de ce dossier est vérifiée."
        if not report.findings
        else f"La chaîne d'empreintes présente {len(report.findings)} anomalie(s)."
    )
    return [
        Spacer(1, 4 * mm),
        para("Historique", STYLES["Heading2"]),
        para(verdict),
        table(rows, [9 * mm, 30 * mm, 32 * mm, 34 * mm, 25 * mm, 50 * mm]),
    ]


@router.get("/candidatures/{case_id}/dossier.pdf")
def case_pdf(request: Request, case_id: int) -> Response:
    session = signed_in(request)
    user = session.user
    body = build(engine_of(request), case_id, user.role, user.region, user.actor)
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="dossier-{case_id}.pdf"'},
    )
