"""Case pages: lists and queues, the candidacy form, the case, actions, audit views.

Each route asks the engine as the signed-in person and renders one template; the rules
a page shows are the engine's ``Rule`` objects (French message and FAQ section).
"""

from __future__ import annotations

import io
import math
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ti_workflow.audit.export import export
from ti_workflow.audit.snapshot import parse_at, state_at
from ti_workflow.audit.verify import verify
from ti_workflow.console import diagram, forms, fr
from ti_workflow.console.auth import Session
from ti_workflow.console.web import engine_of, page, posted, redirect, signed_in, write
from ti_workflow.domain.actors import (
    AUDITOR,
    CANDIDATE,
    NATIONAL_COMMITTEE,
)
from ti_workflow.domain.definition import Definition
from ti_workflow.domain.payload import declared_fields
from ti_workflow.engine import Engine, TriggerOption
from ti_workflow.errors import CreateRefused, GuardRefused, InvalidData, NotFound
from ti_workflow.files import MAX_BYTES, FileRefused, read_for_case
from ti_workflow.mail import outbox
from ti_workflow.storage.database import read
from ti_workflow.storage.repository import CASE_ORDERS, StoredCase

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
WORKFLOW = "candidacy"
CaseId = Annotated[int, "case"]
READERS = (AUDITOR, NATIONAL_COMMITTEE)
SECTIONS = {
    "perimeter": "perimetre",
    "governance": "gouvernance",
    "letter": "lettres",
    "action": "plan",
    "window": "identite",
}
SORTS = {
    "id": "N° croissant",
    "-id": "N° décroissant",
    "title": "Territoire (A → Z)",
    "-title": "Territoire (Z → A)",
    "state": "État",
    "-updated": "Dernière modification",
}


def section_of(code: str) -> str:
    """The form section (anchor) a failed rule belongs to, from its code's prefix."""
    return SECTIONS.get(code.split("_", 1)[0], "identite")


# --- shared views ------------------------------------------------------------------------


def regions_named(engine: Engine, codes: tuple[str, ...] | list[str]) -> list[dict[str, str]]:
    ref = engine.catalog.reference
    return [{"code": c, "name": ref.region_name(c)} for c in codes]


def opinion_grid(
    engine: Engine, case: StoredCase, actor_role: str, region: str | None
) -> list[dict[str, Any]]:
    """Per region, each body's opinion: content for the committee, the auditor and the body
    itself; only "given / awaited" for the candidate and the other body (documented)."""
    given = case.facts.get("opinions") or {}
    rows = []
    for r in regions_named(engine, case.regions):
        bodies = []
        for body in fr.BODIES:
            found = (given.get(r["code"]) or {}).get(body)
            own = actor_role == body and region == r["code"]
            show = actor_role in READERS or own
            bodies.append(
                {
                    "body": body,
                    "given": found is not None,
                    "opinion": found.get("opinion") if found and show else None,
                    "reasons": found.get("reasons") if found and show else None,
                    "at": found.get("at") if found else None,
                    "shown": show,
                }
            )
        rows.append({**r, "bodies": bodies})
    return rows


def due_date(engine: Engine, case: StoredCase) -> datetime | None:
    campaign = engine.catalog.campaign(case.campaign_id)
    return next((t.due for t in campaign.timers if t.name == "regional_review_deadline"), None)


def members_named(engine: Engine, sirens: list[str]) -> list[dict[str, Any]]:
    ref = engine.catalog.reference
    found = []
    for siren in sirens:
        g = ref.groupement(siren)
        found.append(
            {
                "siren": siren,
                "name": g.name if g else None,
                "nature": g.nature if g else None,
                "departments": list(g.departments) if g else [],
                "regions": [ref.region_name(x) for x in g.regions] if g else [],
                "metropole": bool(g and g.is_metropole),
            }
        )
    return found


def returned(engine: Engine, session: Session, case: StoredCase) -> dict[str, Any] | None:
    """The committee's last return for completion of a draft: when, and its reason."""
    if case.state != "draft":
        return None
    for event in reversed(engine.history(case.id, session.user.actor)):
        if event.trigger == "return_for_completion":
            return {"at": event.at, "reason": (event.payload.get("reason") or "").rstrip(". ")}
        if event.trigger == "create":
            break
    return None


DECIDED = ("labelled", "not_selected")


def shown_state(engine: Engine, role: str, case: StoredCase) -> str:
    """The state a person is shown. The candidate learns the national decision when it is
    announced (FAQ 1.3, the campaign's ``decision_announcement``), as the mail does:
    until then a decided case shows as in national selection to its candidate."""
    if role != CANDIDATE or case.state not in DECIDED:
        return case.state
    campaign = engine.catalog.campaign(case.campaign_id)
    due = next((t.due for t in campaign.timers if t.name == "decision_announcement"), None)
    if due is None or engine.clock.now() >= due:
        return case.state
    return "national_review"


def state_label(definition: Definition, state: str) -> str:
    return definition.state(state).label_fr or state


def usable(options: list[TriggerOption]) -> list[TriggerOption]:
    """The actions of the person's role (a role refusal means: not theirs to take)."""
    return [o for o in options if o.refusal is None]


# --- lists --------------------------------------------------------------------------------


@router.get("/candidatures", response_class=HTMLResponse)
def cases(
    request: Request,
    etat: Annotated[str, Query(max_length=50)] = "",
    region: Annotated[str, Query(max_length=3)] = "",
    campagne: Annotated[str, Query(max_length=100)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    tri: Annotated[str, Query(max_length=20)] = "id",
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    session = signed_in(request)
    engine = engine_of(request)
    actor = session.user.actor
    definition = engine.catalog.current_definition(WORKFLOW)
    states = {s.name: s.label_fr for s in definition.states}
    regions = dict(sorted(engine.catalog.reference.regions.items()))
    campaigns = {c.id: c.name for c in engine.catalog.campaigns.values()}
    tri = tri if tri in SORTS and tri in CASE_ORDERS else "id"
    found, total = engine.list_cases(
        actor,
        workflow=WORKFLOW,
        state=etat if etat in states else None,
        campaign=campagne if campagne in campaigns else None,
        region=region if region in regions else None,
        text=q.strip() or None,
        limit=PAGE_SIZE,
        offset=(page_no - 1) * PAGE_SIZE,
        order=tri,
    )
    pages = max(math.ceil(total / PAGE_SIZE), 1)
    rows = [
        {
            "case": c,
            "state_name": shown_state(engine, actor.role, c),
            "state": state_label(
                engine.catalog.definition(c.definition_version), shown_state(engine, actor.role, c)
            ),
            "regions": [regions.get(r, r) for r in c.regions],
            "opinions": opinion_grid(engine, c, actor.role, actor.region),
            "due": due_date(engine, c) if c.state == "regional_review" else None,
        }
        for c in found
    ]
    query = {"etat": etat, "region": region, "campagne": campagne, "q": q, "tri": tri}
    return page(
        request,
        "pages/cases.html",
        session=session,
        rows=rows,
        total=total,
        page_no=page_no,
        pages=pages,
        states=states,
        regions=regions,
        campaigns=campaigns,
        sorts=SORTS,
        query=query,
        query_string="&".join(f"{k}={v}" for k, v in query.items() if v),
        my_region=regions.get(actor.region or ""),
    )


# --- the candidacy form -------------------------------------------------------------------


def open_campaign(engine: Engine) -> Any:
    now = engine.clock.now()
    campaigns = sorted(engine.catalog.campaigns.values(), key=lambda c: c.opens_on)
    live = [c for c in campaigns if now <= c.closes_at]
    return (live or campaigns)[0]


def countdown(engine: Engine, campaign: Any) -> dict[str, Any]:
    now = engine.clock.now()
    return {
        "closes_at": campaign.closes_at,
        "open": campaign.opens_at <= now <= campaign.closes_at,
        "before": now < campaign.opens_at,
        "opens_at": campaign.opens_at,
        "left": fr.remaining(campaign.closes_at - now) if now <= campaign.closes_at else None,
        "seconds": max(int((campaign.closes_at - now).total_seconds()), 0),
    }


@router.get("/candidatures/nouvelle", response_class=HTMLResponse)
def new_case(request: Request) -> HTMLResponse:
    session = signed_in(request)
    if session.user.role != CANDIDATE:
        raise NotFound("page", "nouvelle")
    engine = engine_of(request)
    campaign = open_campaign(engine)
    return page(
        request,
        "pages/case_new.html",
        session=session,
        data={"territory_name": "", "contact_email": session.user.email or ""},
        errors={},
        campaign=campaign,
        clock=countdown(engine, campaign),
    )


@router.post("/candidatures/nouvelle", response_class=HTMLResponse)
async def create_case(request: Request) -> Response:
    session, form = await posted(request)
    if session.user.role != CANDIDATE:
        raise NotFound("page", "nouvelle")
    engine = engine_of(request)
    campaign = open_campaign(engine)
    got = forms.parse(form)
    data = {**forms.blank(), **{k: got.data[k] for k in ("territory_name", "contact_email")}}
    errors = {k: v for k, v in got.errors.items() if k in ("territory_name", "contact_email")}
    rules: list[Any] = []
    if not errors:
        try:
            case = await write(
                request,
                lambda: engine.create_case(WORKFLOW, campaign.id, data, session.user.actor),
            )
            return redirect(f"/candidatures/{case.id}/modifier")
        except CreateRefused as exc:
            rules = list(exc.rules)
    return await run_in_threadpool(
        lambda: page(
            request,
            "pages/case_new.html",
            status=422,
            session=session,
            data=data,
            errors=errors,
            rules=rules,
            campaign=campaign,
            clock=countdown(engine, campaign),
        )
    )


def _editable(engine: Engine, session: Session, case_id: int) -> StoredCase | None:
    case = engine.get(case_id, session.user.actor)
    definition = engine.catalog.definition(case.definition_version)
    if session.user.role != CANDIDATE or case.state not in definition.editable_in:
        return None
    return case


def _edit_page(
    request: Request,
    session: Session,
    case: StoredCase,
    data: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
    search: str = "",
) -> HTMLResponse:
    engine = engine_of(request)
    options = {o.trigger: o for o in engine.available_triggers(case.id, session.user.actor)}
    submit = options.get("submit")
    rules = list(submit.failed_rules) if submit else []
    members = members_named(engine, data["perimeter"]["members"])
    ref = engine.catalog.reference
    campaign = engine.catalog.campaign(case.campaign_id)
    return page(
        request,
        "pages/case_edit.html",
        status=status,
        session=session,
        case=case,
        data=data,
        errors=errors,
        rules=[{"rule": r, "section": section_of(r.code)} for r in rules],
        submit_allowed=bool(submit and submit.allowed),
        members=members,
        regions=regions_named(engine, ref.regions_of(data["perimeter"]["members"])),
        needs_single=len(set(data["perimeter"]["members"])) == 1,
        needs_metropole=any(m["metropole"] for m in members),
        needs_extended=len(data["governance"]["members"]) > 2,
        results=members_named(engine, [g.siren for g in forms.search(ref, search)])
        if search
        else [],
        search=search,
        priorities=fr.PRIORITIES,
        governance_roles=fr.GOVERNANCE_ROLES,
        clock=countdown(engine, campaign),
        returned=returned(engine, session, case),
    )


@router.get("/candidatures/{case_id}/modifier", response_class=HTMLResponse)
def edit_case(request: Request, case_id: int) -> Response:
    session = signed_in(request)
    case = _editable(engine_of(request), session, case_id)
    if case is None:
        return redirect(f"/candidatures/{case_id}")
    data = {**forms.blank(), **case.data}
    return _edit_page(request, session, case, data, {})


@router.post("/candidatures/{case_id}/modifier", response_class=HTMLResponse)
async def save_case(request: Request, case_id: int) -> Response:
    session, form = await posted(request)
    engine = engine_of(request)
    case = await run_in_threadpool(_editable, engine, session, case_id)
    if case is None:
        return redirect(f"/candidatures/{case_id}")
    got = forms.parse(form)
    for letter, row in zip(got.data["letters_of_intent"], got.letter_rows, strict=True):
        upload = form.get(f"loi-{row}-fichier")
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        content = await upload.read(MAX_BYTES + 1)
        try:
            stored = await run_in_threadpool(engine.files.put, content, name=upload.filename)
        except FileRefused as exc:
            got.errors[f"loi-{row}-fichier"] = exc.message_fr
            continue
        letter["file"] = stored.as_ref()
    await form.close()  # the uploads' temporary files
    if got.errors:
        return await run_in_threadpool(
            _edit_page, request, session, case, got.data, got.errors, 422, got.search
        )
    version = str(form.get("version") or "")
    expected = int(version) if version.isdigit() else None
    try:
        case = await write(
            request,
            lambda: engine.update_data(case_id, got.data, session.user.actor, expected),
        )
    except InvalidData as exc:
        errors = {"identite": "; ".join(e.location for e in exc.errors)}
        return await run_in_threadpool(
            _edit_page, request, session, case, got.data, errors, 422, got.search
        )
    if got.action == "rechercher" or (got.action == "enregistrer" and got.search):
        return await run_in_threadpool(
            _edit_page, request, session, case, case.data, {}, 200, got.search
        )
    anchor = {"ajouter": "perimetre", "retirer": "perimetre"}.get(got.action, "enregistre")
    if form.get("retirer"):
        anchor = "perimetre"
    return redirect(f"/candidatures/{case_id}/modifier?enregistre=1#{anchor}")


@router.get("/referentiel/groupements", response_class=HTMLResponse)
def groupements(
    request: Request, recherche: Annotated[str, Query(max_length=100)] = ""
) -> HTMLResponse:
    session = signed_in(request)
    engine = engine_of(request)
    found = forms.search(engine.catalog.reference, recherche)
    return page(
        request,
        "pages/_groupements.html",
        session=session,
        results=members_named(engine, [g.siren for g in found]),
        search=recherche,
    )


# --- the case -----------------------------------------------------------------------------


def _mail(engine: Engine, session: Session, case_id: int) -> list[dict[str, Any]]:
    with read(engine.db) as conn:
        return outbox.list_messages(conn, case_id=case_id, limit=500, reader=session.user.actor)


@router.get("/candidatures/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request, case_id: int, fait: Annotated[str, Query(max_length=50)] = ""
) -> HTMLResponse:
    session = signed_in(request)
    engine = engine_of(request)
    actor = session.user.actor
    case = engine.get(case_id, actor)
    definition = engine.catalog.definition(case.definition_version)
    options = usable(engine.available_triggers(case_id, actor))
    done = next((t.label_fr for t in definition.transitions if t.trigger == fait), None)
    return page(
        request,
        "pages/case.html",
        session=session,
        case=case,
        state_name=shown_state(engine, actor.role, case),
        state=state_label(definition, shown_state(engine, actor.role, case)),
        regions=regions_named(engine, case.regions),
        opinions=opinion_grid(engine, case, actor.role, actor.region),
        options=[
            {
                "option": o,
                "rules": [{"rule": r, "section": section_of(r.code)} for r in o.failed_rules],
            }
            for o in options
        ],
        members=members_named(engine, list(case.data.get("perimeter", {}).get("members", []))),
        editable=actor.role == CANDIDATE and case.state in definition.editable_in,
        decision=case.facts.get("decision"),
        due=due_date(engine, case) if case.state == "regional_review" else None,
        mail=_mail(engine, session, case_id),
        reader=actor.role in READERS,
        done=done,
        returned=returned(engine, session, case),
        clock=countdown(engine, engine.catalog.campaign(case.campaign_id))
        if case.state == "draft"
        else None,
    )


def _action(
    engine: Engine, session: Session, case_id: int, trigger: str
) -> tuple[StoredCase, TriggerOption, Any]:
    case = engine.get(case_id, session.user.actor)
    option = next(
        (
            o
            for o in usable(engine.available_triggers(case_id, session.user.actor))
            if o.trigger == trigger
        ),
        None,
    )
    definition = engine.catalog.definition(case.definition_version)
    transition = definition.transition_from(trigger, case.state)
    if option is None or transition is None:
        raise NotFound("action", trigger)
    return case, option, transition


def action_fields(transition: Any) -> list[Any]:
    """What the action form asks: the transition's fields; the optional ``reason`` every
    transition accepts is asked only where it is required, or for a withdrawal."""
    return [
        f
        for f in declared_fields(transition)
        if f.name != "reason" or f.required or transition.trigger == "withdraw"
    ]


def _action_page(
    request: Request,
    session: Session,
    case: StoredCase,
    option: TriggerOption,
    transition: Any,
    values: dict[str, str],
    errors: dict[str, str],
    rules: list[Any],
    status: int = 200,
) -> HTMLResponse:
    engine = engine_of(request)
    definition = engine.catalog.definition(case.definition_version)
    fields = action_fields(transition)
    return page(
        request,
        "pages/action.html",
        status=status,
        session=session,
        case=case,
        option=option,
        state=state_label(definition, case.state),
        dest=state_label(definition, option.dest),
        fields=fields,
        values=values,
        errors=errors,
        rules=[{"rule": r, "section": section_of(r.code)} for r in (rules or option.failed_rules)],
        opinions=opinion_grid(engine, case, session.user.role, session.user.region),
        regions=regions_named(engine, case.regions),
    )


@router.get("/candidatures/{case_id}/actions/{trigger}", response_class=HTMLResponse)
def action_form(request: Request, case_id: int, trigger: str) -> HTMLResponse:
    session = signed_in(request)
    case, option, transition = _action(engine_of(request), session, case_id, trigger)
    values: dict[str, str] = {}
    if trigger == "give_opinion":  # the opinion given before, to replace it
        mine = ((case.facts.get("opinions") or {}).get(session.user.region or "") or {}).get(
            session.user.role
        )
        if mine:
            values = {"opinion": mine.get("opinion") or "", "reasons": mine.get("reasons") or ""}
    return _action_page(request, session, case, option, transition, values, {}, [])


@router.post("/candidatures/{case_id}/actions/{trigger}", response_class=HTMLResponse)
async def fire(request: Request, case_id: int, trigger: str) -> Response:
    session, form = await posted(request)
    engine = engine_of(request)
    case, option, transition = await run_in_threadpool(_action, engine, session, case_id, trigger)
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for f in action_fields(transition):
        raw = form.get(f.name)
        value = raw.strip() if isinstance(raw, str) else ""
        values[f.name] = value
        if not value:
            if f.required:
                errors[f.name] = (
                    "Indiquez le motif : il est obligatoire pour cette décision."
                    if f.name == "reason"
                    else "Ce champ est obligatoire."
                )
            continue
        if f.choices and value not in f.choices:
            errors[f.name] = "Choisissez une des réponses proposées."
        elif len(value) > f.max_length:
            errors[f.name] = f"Ce texte compte au plus {fr.number(f.max_length)} caractères."
    rules: list[Any] = []
    if not errors:
        payload = {k: v for k, v in values.items() if v}
        version = str(form.get("version") or "")
        expected = int(version) if version.isdigit() else None
        try:
            await write(
                request,
                lambda: engine.fire(case_id, trigger, session.user.actor, payload, expected),
            )
            return redirect(f"/candidatures/{case_id}?fait={trigger}")
        except GuardRefused as exc:
            rules = list(exc.rules)
    return await run_in_threadpool(
        _action_page, request, session, case, option, transition, values, errors, rules, 422
    )


# --- reading: diagram, mail, timeline, state at, export ----------------------------------


@router.get("/candidatures/{case_id}/parcours", response_class=HTMLResponse)
def path_page(request: Request, case_id: int) -> HTMLResponse:
    session = signed_in(request)
    engine = engine_of(request)
    case = engine.get(case_id, session.user.actor)
    events = engine.history(case_id, session.user.actor)
    definition = engine.catalog.definition(case.definition_version)
    labels = {s.name: s.label_fr or s.name for s in definition.states}
    current = shown_state(engine, session.user.role, case)
    if current != case.state:  # not yet announced to this candidate
        events = [e for e in events if e.dest not in DECIDED]
    taken = [e for e in events if e.source is not None and e.source != e.dest]
    return page(
        request,
        "pages/diagram.html",
        session=session,
        case=case,
        state_name=current,
        svg=diagram.svg(definition, events, current),
        path=[labels[definition.initial]] + [labels.get(e.dest, e.dest) for e in taken],
        steps=diagram.steps(definition, events),
        labels=labels,
        state=labels.get(current, current),
    )


@router.get("/candidatures/{case_id}/courriels", response_class=HTMLResponse)
def mail_page(request: Request, case_id: int) -> HTMLResponse:
    session = signed_in(request)
    engine = engine_of(request)
    case = engine.get(case_id, session.user.actor)
    return page(
        request, "pages/mail.html", session=session, case=case, mail=_mail(engine, session, case_id)
    )


def _reader(session: Session, case_id: int) -> None:
    if session.user.role not in READERS:
        raise NotFound("page", case_id)


def _filled(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_filled(v) for v in value.values())
    return bool(value)


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    names = {
        "territory_name": "nom du territoire",
        "contact_email": "contact",
        "perimeter": "périmètre",
        "governance": "gouvernance",
        "letters_of_intent": "lettres d'intention",
        "action_plan": "plan d'action",
    }
    if before is None:  # what the first version fills in
        return [n for k, n in names.items() if _filled(after.get(k))]
    return [n for k, n in names.items() if before.get(k) != after.get(k)]


@router.get("/candidatures/{case_id}/historique", response_class=HTMLResponse)
def timeline(request: Request, case_id: int) -> HTMLResponse:
    session = signed_in(request)
    _reader(session, case_id)
    engine = engine_of(request)
    case = engine.get(case_id, session.user.actor)
    events = engine.history(case_id, session.user.actor)
    report = verify(engine, case_id)
    bad = {f.seq for f in report.findings}
    definition = engine.catalog.definition(case.definition_version)
    labels = {s.name: s.label_fr or s.name for s in definition.states}
    triggers = {t.trigger: t.label_fr for t in definition.transitions} | fr.SPECIAL_STEPS
    regions = dict(engine.catalog.reference.regions)
    rows = []
    data: dict[str, Any] | None = None
    previous = None
    for e in events:
        what: list[str] = []
        if "data" in e.payload:
            verb = "Renseigné" if data is None else "Modifié"
            what = (
                [f"{verb} : {fr.fr_list(changes(data, e.payload['data']))}"]
                if changes(data, e.payload["data"])
                else ["Aucun changement du dossier"]
            )
            data = e.payload["data"]
        for key, label in (("opinion", "Avis"), ("reasons", "Motifs"), ("reason", "Motif")):
            if e.payload.get(key):
                value = fr.OPINIONS.get(e.payload[key], e.payload[key])
                what.append(f"{label} : {value}")
        linked = previous is None or e.prev_hash == previous
        rows.append(
            {
                "event": e,
                "actor": fr.actor(e.actor, regions),
                "role": fr.role(e.role),
                "step": triggers.get(e.trigger, e.trigger),
                "source": labels.get(e.source or "", ""),
                "dest": labels.get(e.dest, e.dest),
                "what": [fr.typography(w) for w in what],
                "ok": linked and e.seq not in bad,
            }
        )
        previous = e.hash
    return page(
        request,
        "pages/timeline.html",
        session=session,
        case=case,
        rows=rows,
        report=report,
        state=labels.get(case.state, case.state),
    )


@router.get("/candidatures/{case_id}/etat", response_class=HTMLResponse)
def case_at(
    request: Request, case_id: int, instant: Annotated[str, Query(max_length=40)] = ""
) -> HTMLResponse:
    session = signed_in(request)
    _reader(session, case_id)
    engine = engine_of(request)
    case = engine.get(case_id, session.user.actor)
    definition = engine.catalog.definition(case.definition_version)
    found = None
    error = None
    if instant:
        try:
            found = state_at(engine, case_id, parse_at(instant, "instant"))
        except InvalidData:
            error = "Indiquez une date et une heure valides, par exemple 2023-09-22T23:59."
    snapshot = found.case if found else None
    return page(
        request,
        "pages/state_at.html",
        status=422 if error else 200,
        session=session,
        case=case,
        instant=instant,
        error=error,
        found=found,
        snapshot=snapshot,
        state=state_label(definition, snapshot.state) if snapshot else None,
        regions=regions_named(engine, list(snapshot.regions)) if snapshot else [],
        members=members_named(
            engine, list((snapshot.data.get("perimeter") or {}).get("members", []))
        )
        if snapshot
        else [],
        default=fr.paris_input(engine.clock.now()),
    )


@router.get("/candidatures/{case_id}/lettres/{sha256}")
def letter_file(request: Request, case_id: int, sha256: str) -> Response:
    """A letter of intent, to those who may read the case; always as a download."""
    session = signed_in(request)
    stored, data = read_for_case(engine_of(request), session.user.actor, case_id, sha256)
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.name)}",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/candidatures/{case_id}/export")
def case_export(request: Request, case_id: int) -> Response:
    session = signed_in(request)
    _reader(session, case_id)
    engine = engine_of(request)
    engine.get(case_id, session.user.actor)
    out = io.StringIO()
    export(engine, out, "jsonl", case_id)
    return Response(
        out.getvalue(),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="dossier-{case_id}.jsonl"'},
    )
