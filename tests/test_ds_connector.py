"""The Démarches Simplifiées connector against a fake DS served over real HTTP (issue 17).

The fake (tests/ds_fake) serves the subset of DS's published GraphQL schema the connector
uses, with keyset cursors, updatedSince, file downloads and the mutations' state rules.
FAQ 1.2 (line 72): candidacies are filed "à travers un formulaire accessible sur le site
Démarches Simplifiées"; FAQ 1.3 (line 93): territories are notified "via la plateforme
Démarches simplifiées" when the map is announced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse, validate
from sqlalchemy import delete, func, select

from conftest import AUDITOR, COMMITTEE, SYSTEM, give_all_opinions, paris
from ds_fake.builder import MAPPING, PDF, champs, descriptors, replace_text
from ds_fake.server import SCHEMA, Dossier, FakeDs, Fault
from ti_workflow.audit.verify import verify
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.ds import client as ds_client
from ti_workflow.ds import store
from ti_workflow.ds.errors import DsRefused, DsUnavailable
from ti_workflow.ds.install import Connector, connector_of
from ti_workflow.engine import SOURCE, Engine
from ti_workflow.settings import Settings
from ti_workflow.storage.tables import EventRow

TOKEN = "test-token-ds"
PROCEDURE = 4242
INSTRUCTEUR = "SW5zdHJ1Y3RldXItMQ=="
QUERIES = Path(ds_client.__file__).parent / "queries"
events_t = EventRow.__table__  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ds_client, "BACKOFF", 0.01)


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeDs]:
    ds = FakeDs(
        token=TOKEN,
        procedure=PROCEDURE,
        instructeur_id=INSTRUCTEUR,
        descriptors=descriptors(),
        now=clock.now,
    )
    ds.start()
    yield ds
    ds.stop()


def ds_settings(url: str, fake: FakeDs, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db_url": url,
        "ds_url": fake.graphql_url,
        "ds_token": TOKEN,
        "ds_procedure": PROCEDURE,
        "ds_instructeur_id": INSTRUCTEUR,
        "ds_timeout": 1.0,
    }
    values.update(overrides)
    return Settings(**values)


def open_connector(
    url: str, fake: FakeDs, clock: SimulatedClock, files: Path, **overrides: Any
) -> Connector:
    engine = open_engine(ds_settings(url, fake, files_dir=files, **overrides), clock)
    with engine.db.begin() as conn:  # PostgreSQL's database is shared by the session's tests
        for table in (store.ds_outbox, store.dossiers, store.sync_state):
            conn.execute(delete(table))
    return connector_of(engine)


@pytest.fixture
def connector(
    db_url: str, fake: FakeDs, clock: SimulatedClock, tmp_path: Path
) -> Iterator[Connector]:
    """The connector on SQLite and on PostgreSQL (its tables hold the sync state)."""
    found = open_connector(db_url, fake, clock, tmp_path / "files")
    yield found
    found.engine.db.dispose()


def file_dossier(fake: FakeDs, number: int, filed: datetime, **kw: Any) -> Dossier:
    email = kw.pop("usager", f"ti{number}@example.org")
    dossier = Dossier(
        number=number,
        state="en_construction",
        date_depot=filed,
        modified=filed,
        email=email,
        champs=champs(fake.add_file, email=email, **kw),
    )
    fake.put(dossier)
    return dossier


def events(engine: Engine, case_id: int) -> list[Any]:
    return engine.history(case_id, AUDITOR)


def event_count(engine: Engine) -> int:
    with engine.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events_t)).scalar_one())


def links(engine: Engine) -> dict[int, store.Link]:
    with engine.db.connect() as conn:
        return {link.number: link for link in store.links(conn)}


# --- the queries ---------------------------------------------------------------------


def test_every_operation_is_one_valid_operation_of_the_schema() -> None:
    files = sorted(QUERIES.glob("*.graphql"))
    assert len(files) == 9
    for path in files:
        document = parse(path.read_text(encoding="utf-8"))
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        assert len(operations) == 1, path.name
        assert validate(SCHEMA, document) == [], path.name


def test_a_wrong_field_would_be_caught_by_the_schema() -> None:
    """The check above can fail: a field DS does not have is reported."""
    broken = (QUERIES / "dossier_state.graphql").read_text().replace("state", "etat")
    assert [e.message for e in validate(SCHEMA, parse(broken))] == [
        "Cannot query field 'etat' on type 'Dossier'. Did you mean 'state'?"
    ]


# --- sync ------------------------------------------------------------------------------


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_200_dossiers_over_several_pages_become_200_filed_cases_once(
    db: str,
    request: pytest.FixtureRequest,
    fake: FakeDs,
    clock: SimulatedClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    url = str(request.getfixturevalue("sqlite_url" if db == "sqlite" else "pg_url"))
    monkeypatch.setattr(ds_client, "PAGE_SIZE", 70)
    connector = open_connector(url, fake, clock, tmp_path / "files")
    engine = connector.engine
    try:
        start = paris("2023-07-01T09:00:00")
        for n in range(1, 201):
            file_dossier(fake, 1000 + n, start + timedelta(minutes=n))
        report = connector.sync()
        assert (report.pages, report.seen, report.created, report.submitted) == (3, 200, 200, 200)
        found = links(engine)
        assert sorted(found) == [1000 + n for n in range(1, 201)]
        case_ids = {link.case_id for link in found.values()}
        assert len(case_ids) == 200 and None not in case_ids
        cases, total = engine.list_cases(AUDITOR, workflow="candidacy", limit=500)
        assert total == 200 and {c.state for c in cases} == {"submitted"}
        one = found[1007]
        assert one.case_id is not None
        history = events(engine, one.case_id)
        assert [e.trigger for e in history] == ["create", "submit"]
        filed = start + timedelta(minutes=7)
        assert {e.at for e in history} == {filed}
        assert history[1].annotations[SOURCE]["ds"]["dossier"] == 1007
        assert history[1].annotations[SOURCE]["ds"]["date_derniere_modification"] == (
            filed.isoformat()
        )
        written = event_count(engine)
        again = connector.sync()  # since the last run: nothing new
        assert again.seen == 0 and event_count(engine) == written
        everything = connector.sync(since=paris("2023-01-01T00:00:00"))
        assert everything.seen == 200 and everything.unchanged == 200
        assert event_count(engine) == written and len(links(engine)) == 200
    finally:
        engine.db.dispose()


def test_filing_is_judged_at_its_date_depot_not_at_the_sync(
    connector: Connector, fake: FakeDs, clock: SimulatedClock
) -> None:
    """FAQ 1.2 (line 72): filing open "du 23 juin 2023 au 22 septembre 2023 inclus". A dossier
    filed on 22/09 at 23:00 and read on 25/09 is filed; one filed on 23/09 is refused."""
    clock.set(paris("2023-09-25T10:00:00"))
    in_time = paris("2023-09-22T23:00:00")
    file_dossier(fake, 1, in_time)
    file_dossier(fake, 2, paris("2023-09-23T08:00:00"))
    report = connector.sync()
    assert (report.created, report.submitted) == (1, 1)
    found = links(connector.engine)
    assert found[1].case_id is not None and found[2].case_id is None
    submit = events(connector.engine, found[1].case_id)[-1]
    assert (submit.trigger, submit.at) == ("submit", in_time)
    [problem] = found[2].problems
    assert [r["code"] for r in problem["rules"]] == ["window_closed"]
    assert "22/09/2023 inclus" in problem["message"]
    # The audit re-evaluates each rule at its event's instant: the imported history holds.
    assert verify(connector.engine).findings == []


def test_an_edit_between_two_syncs_updates_the_case_and_files_it_again(
    connector: Connector, fake: FakeDs, clock: SimulatedClock
) -> None:
    file_dossier(fake, 7, paris("2023-07-01T10:00:00"))
    connector.sync()
    case_id = links(connector.engine)[7].case_id
    assert case_id is not None
    edited = paris("2023-07-03T10:05:00")  # after the first sync (10:00)
    fake.edit(7, lambda d: replace_text(d.champs, "territory_name", "Arve et Giffre"), edited)
    clock.set(paris("2023-07-03T10:10:00"))
    report = connector.sync()
    assert (report.seen, report.updated, report.submitted) == (1, 1, 1)
    case = connector.engine.get(case_id, AUDITOR)
    assert (case.state, case.data["territory_name"]) == ("submitted", "Arve et Giffre")
    latest = events(connector.engine, case_id)[2:]
    assert [e.trigger for e in latest] == ["reopen", "update", "submit"]
    for e in latest:
        ds = e.annotations[SOURCE]["ds"]
        assert (ds["dossier"], ds["date_derniere_modification"], e.at) == (
            7,
            edited.isoformat(),
            edited,
        )
    assert latest[1].payload["data"]["territory_name"] == "Arve et Giffre"
    written = event_count(connector.engine)
    assert connector.sync(since=paris("2023-07-01T00:00:00")).unchanged == 1
    assert event_count(connector.engine) == written
    assert verify(connector.engine).findings == []


def test_a_rule_breaking_dossier_is_recorded_with_its_refusals_until_corrected(
    connector: Connector, fake: FakeDs, clock: SimulatedClock
) -> None:
    """FAQ 4.1: a governance without an industrialist is refused, not silently accepted."""
    file_dossier(fake, 9, paris("2023-07-01T10:00:00"), governance=[("Mme Élue", "Élu", "CC")])
    report = connector.sync()
    assert (report.created, report.submitted, report.refused) == (1, 0, 1)
    link = links(connector.engine)[9]
    assert link.case_id is not None
    assert connector.engine.get(link.case_id, AUDITOR).state == "draft"
    [problem] = link.problems
    # FAQ 4.5 too: the industrialist's letter matches no member of the governance.
    assert {(r["code"], r["faq"]) for r in problem["rules"]} == {
        ("governance_no_industrial", "4.1"),
        ("letter_of_intent_no_industrial", "4.5"),
    }
    assert "au moins un industriel" in report.problems[0]

    def add_industrialist(d: Dossier) -> None:
        d.champs[:] = champs(fake.add_file, email=d.email)

    fake.edit(9, add_industrialist, paris("2023-07-03T11:00:00"))
    clock.set(paris("2023-07-03T11:30:00"))
    report = connector.sync()
    assert (report.updated, report.submitted) == (1, 1)
    link = links(connector.engine)[9]
    assert link.problems == []
    assert connector.engine.get(link.case_id or 0, AUDITOR).state == "submitted"


def test_data_that_does_not_fit_the_form_is_recorded_and_the_others_go_on(
    connector: Connector, fake: FakeDs
) -> None:
    file_dossier(fake, 11, paris("2023-07-01T10:00:00"), actions=[("Musée", "Tourisme")])
    file_dossier(fake, 12, paris("2023-07-01T11:00:00"), members=["12345"])
    file_dossier(fake, 13, paris("2023-07-01T12:00:00"))
    report = connector.sync()
    assert (report.seen, report.created) == (3, 1)
    found = links(connector.engine)
    assert found[11].case_id is None and found[12].case_id is None
    assert "« Tourisme » is not in the mapping" in found[11].problems[0]["message"]
    assert "a SIREN is exactly 9 digits" in found[12].problems[0]["message"]
    assert found[13].case_id is not None and found[13].problems == []


def test_deleted_and_sans_suite_dossiers_are_withdrawn(
    connector: Connector, fake: FakeDs, clock: SimulatedClock
) -> None:
    file_dossier(fake, 21, paris("2023-07-01T10:00:00"))
    file_dossier(fake, 22, paris("2023-07-01T11:00:00"))
    connector.sync()
    deleted_at = paris("2023-07-04T08:00:00")
    fake.delete(21, deleted_at)

    def sans_suite(d: Dossier) -> None:
        d.state = "sans_suite"
        d.treated = paris("2023-07-04T09:00:00")

    fake.edit(22, sans_suite, paris("2023-07-04T09:00:00"))
    clock.set(paris("2023-07-04T10:00:00"))
    report = connector.sync()
    assert report.withdrawn == 2
    found = links(connector.engine)
    for number in (21, 22):
        case = connector.engine.get(found[number].case_id or 0, AUDITOR)
        assert case.state == "withdrawn"
    last = events(connector.engine, found[21].case_id or 0)[-1]
    assert (last.trigger, last.at) == ("withdraw", deleted_at)
    assert last.annotations[SOURCE]["ds"]["date_supression"] == deleted_at.isoformat()
    written = event_count(connector.engine)
    connector.sync(since=paris("2023-06-01T00:00:00"))
    assert event_count(connector.engine) == written
    assert verify(connector.engine).findings == []  # withdraw events with their source


def test_an_outage_in_the_middle_of_a_sync_resumes_without_loss_or_duplicate(
    connector: Connector, fake: FakeDs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ds_client, "PAGE_SIZE", 10)
    for n in range(1, 31):
        file_dossier(fake, n, paris("2023-07-01T08:00:00") + timedelta(minutes=n))
    fake.faults.append(Fault("DossiersPage", status=500, times=50, skip=1))
    with pytest.raises(DsUnavailable, match="HTTP 500"):
        connector.sync()
    assert len(links(connector.engine)) == 10
    # A timeout on the next page is retried within the run; the run resumes at page 2.
    fake.faults[:] = [Fault("DossiersPage", delay_before=1.5, times=1)]
    report = connector.sync()
    assert report.resumed and report.seen == 20 and report.created == 20
    found = links(connector.engine)
    assert sorted(found) == list(range(1, 31))
    assert len({link.case_id for link in found.values()}) == 30
    _, total = connector.engine.list_cases(AUDITOR, limit=1)
    assert total == 30


def test_a_run_stopped_between_creation_and_filing_files_the_case_once_at_its_date(
    connector: Connector, fake: FakeDs, clock: SimulatedClock
) -> None:
    filed = paris("2023-09-22T20:00:00")
    dossier = file_dossier(fake, 5, filed)
    dossier.modified = paris("2023-09-24T08:00:00")  # e.g. an instructeur's message
    clock.set(paris("2023-09-25T10:00:00"))  # read after the window closed

    def crash(_conn: Any, change: Any) -> None:
        if any(e.trigger == "submit" for e in change.events):
            raise RuntimeError("process killed")

    connector.engine.hooks.append(crash)
    with pytest.raises(RuntimeError):
        connector.sync()
    connector.engine.hooks.remove(crash)
    case_id = links(connector.engine)[5].case_id or 0
    assert connector.engine.get(case_id, AUDITOR).state == "draft"
    report = connector.sync()
    assert report.resumed and (report.created, report.submitted) == (0, 1)
    history = events(connector.engine, case_id)
    assert [(e.trigger, e.at) for e in history] == [("create", filed), ("submit", filed)]
    _, total = connector.engine.list_cases(AUDITOR, limit=1)
    assert total == 1


def test_429_and_a_timeout_are_retried_within_the_run(connector: Connector, fake: FakeDs) -> None:
    file_dossier(fake, 6, paris("2023-07-01T10:00:00"))
    fake.faults += [
        Fault("DossiersPage", status=429, times=2),
        Fault("download", status=503, times=1),
        Fault("DeletedDossiersPage", delay_before=1.5, times=1),
    ]
    report = connector.sync()
    assert (report.created, report.submitted) == (1, 1)
    assert all(f.times == 0 for f in fake.faults)


def test_a_refused_token_is_a_clear_error_and_changes_nothing(
    sqlite_url: str, fake: FakeDs, clock: SimulatedClock, tmp_path: Path
) -> None:
    file_dossier(fake, 1, paris("2023-07-01T10:00:00"))
    connector = open_connector(sqlite_url, fake, clock, tmp_path, ds_token="expired")
    try:
        with pytest.raises(DsRefused, match=r"refused the token \(401\).*TI_WORKFLOW_DS_TOKEN"):
            connector.sync()
        assert links(connector.engine) == {}
        assert connector.engine.list_cases(AUDITOR)[1] == 0
    finally:
        connector.engine.db.dispose()


def test_a_wrong_procedure_number_is_named(
    sqlite_url: str, fake: FakeDs, clock: SimulatedClock, tmp_path: Path
) -> None:
    connector = open_connector(sqlite_url, fake, clock, tmp_path, ds_procedure=99)
    try:
        with pytest.raises(DsRefused, match=r"procedure n° 99"):
            connector.sync()
    finally:
        connector.engine.db.dispose()


def test_a_damaged_letter_stops_the_run_before_its_dossier_is_imported(
    connector: Connector, fake: FakeDs
) -> None:
    dossier = file_dossier(fake, 31, paris("2023-07-01T10:00:00"))
    key = next(iter(fake.files))
    fake.files[key] = PDF.replace(b"1.4", b"1.7")  # same size, other content
    with pytest.raises(DsUnavailable, match="arrived damaged"):
        connector.sync()
    assert links(connector.engine) == {}
    fake.files[key] = PDF
    assert connector.sync().created == 1
    assert dossier.number in links(connector.engine)


def test_letters_are_stored_with_their_checked_content_and_a_non_pdf_is_refused(
    connector: Connector, fake: FakeDs
) -> None:
    """FAQ 4.5: the signed letters of intent; each PDF is kept, its SHA-256 in the event."""
    file_dossier(fake, 33, paris("2023-07-01T10:00:00"))
    file_dossier(fake, 34, paris("2023-07-01T11:00:00"), letter=b"PK\x03\x04 not a pdf")
    report = connector.sync()
    assert report.created == 1
    found = links(connector.engine)
    case = connector.engine.get(found[33].case_id or 0, AUDITOR)
    letters = case.data["letters_of_intent"]
    assert [letter["file"]["name"] for letter in letters] == ["lettre-1.pdf", "lettre-2.pdf"]
    for letter in letters:
        assert letter["file"]["sha256"] == hashlib.sha256(PDF).hexdigest()
        assert connector.engine.files.path(letter["file"]["sha256"]).read_bytes() == PDF
    assert found[34].case_id is None
    assert found[34].problems[0]["kind"] == "file_refused"


# --- back to DS --------------------------------------------------------------------------


def national_review(connector: Connector, fake: FakeDs, numbers: list[int]) -> list[int]:
    for n in numbers:
        file_dossier(fake, n, paris("2023-07-01T10:00:00") + timedelta(hours=n))
    connector.sync()
    found = links(connector.engine)
    ids = [found[n].case_id or 0 for n in numbers]
    for case_id in ids:
        connector.engine.fire(case_id, "start_regional_review", SYSTEM)
        give_all_opinions(connector.engine, case_id)
    return ids


def test_review_start_and_decisions_reach_ds_once_at_the_announcement(
    connector: Connector, fake: FakeDs, clock: SimulatedClock
) -> None:
    """FAQ 1.3 (line 93): territories are notified via DS when the map is announced
    (campaign parameter announcement_on, timer decision_announcement at 10:00)."""
    labelled, rejected = national_review(connector, fake, [41, 42])
    clock.set(paris("2023-10-31T10:00:00"))
    report = connector.push()
    assert report.sent == 2
    assert {fake.dossiers[n].state for n in (41, 42)} == {"en_instruction"}
    connector.engine.fire(labelled, "label", COMMITTEE)
    connector.engine.fire(rejected, "reject", COMMITTEE, {"reason": "Périmètre trop restreint"})
    assert connector.push().claimed == 0  # not before the announcement
    assert {fake.dossiers[n].state for n in (41, 42)} == {"en_instruction"}
    clock.set(paris("2023-11-14T10:00:00"))
    # DS applies the acceptance but its answer is lost (the client times out).
    fake.faults.append(Fault("DossierAccepter", delay_after=1.5))
    report = connector.push()
    assert (report.sent, report.retrying) == (0, 2)
    assert fake.dossiers[41].state == "accepte"
    clock.set(paris("2023-11-14T11:00:00"))
    report = connector.push()
    assert (report.already, report.sent, report.failed) == (1, 1, 0)
    assert fake.dossiers[42].state == "refuse"
    assert fake.dossiers[42].motivation == "Périmètre trop restreint"
    assert [a for a in fake.applied if a[0] in ("dossierAccepter", "dossierRefuser")] == [
        ("dossierAccepter", 41),
        ("dossierRefuser", 42),
    ]
    assert connector.push().claimed == 0


def test_a_ds_outage_during_a_push_keeps_the_decision_queued(
    connector: Connector, fake: FakeDs, clock: SimulatedClock
) -> None:
    [case_id] = national_review(connector, fake, [51])
    clock.set(paris("2023-11-14T10:00:00"))
    connector.push()  # en instruction
    connector.engine.fire(case_id, "label", COMMITTEE)
    fake.faults.append(Fault("DossierState", status=500, times=50))
    report = connector.push()
    assert (report.sent, report.retrying) == (0, 1) and "HTTP 500" in report.errors[0]
    assert fake.dossiers[51].state == "en_instruction"
    fake.faults.clear()
    assert connector.push().claimed == 0  # backoff: not yet
    clock.set(paris("2023-11-14T10:05:00"))
    assert connector.push().sent == 1
    assert fake.dossiers[51].state == "accepte"


def test_a_return_for_completion_is_one_message_on_ds_and_the_new_filing_comes_back(
    connector: Connector, fake: FakeDs, clock: SimulatedClock
) -> None:
    file_dossier(fake, 61, paris("2023-07-01T10:00:00"))
    connector.sync()
    case_id = links(connector.engine)[61].case_id or 0
    connector.engine.fire(
        case_id, "return_for_completion", COMMITTEE, {"reason": "Lettre d'intention illisible"}
    )
    fake.faults.append(Fault("DossierEnvoyerMessage", delay_after=1.5))
    assert connector.push().retrying == 1
    clock.set(paris("2023-07-03T11:00:00"))
    assert connector.push().already == 1
    [message] = fake.dossiers[61].messages
    assert "renvoyée pour complément\u00a0: Lettre d'intention illisible" in message["body"]
    assert [a for a in fake.applied if a[0] == "dossierEnvoyerMessage"] == [
        ("dossierEnvoyerMessage", 61)
    ]
    # The message changed the dossier on DS; nothing the territory did: the case waits.
    assert connector.sync().submitted == 0
    assert connector.engine.get(case_id, AUDITOR).state == "draft"
    edited = paris("2023-07-04T09:00:00")
    fake.edit(61, lambda d: replace_text(d.champs, "territory_name", "Arve"), edited)
    clock.set(paris("2023-07-04T10:00:00"))
    report = connector.sync()
    assert (report.updated, report.submitted) == (1, 1)
    assert connector.engine.get(case_id, AUDITOR).state == "submitted"


def test_a_decision_ds_cannot_take_fails_with_ds_words(
    connector: Connector, fake: FakeDs, clock: SimulatedClock
) -> None:
    [case_id] = national_review(connector, fake, [71])
    clock.set(paris("2023-11-14T10:00:00"))
    connector.push()
    connector.engine.fire(case_id, "label", COMMITTEE)
    fake.dossiers[71].state = "sans_suite"  # an instructeur closed it on DS meanwhile
    report = connector.push()
    assert report.failed == 1 and "sans_suite on DS" in report.errors[0]
    assert [a for a in fake.applied if a[0] == "dossierAccepter"] == []


def test_a_dossier_deleted_on_ds_fails_its_row_alone(
    connector: Connector, fake: FakeDs, clock: SimulatedClock
) -> None:
    national_review(connector, fake, [91, 92])
    fake.delete(91, paris("2023-10-01T09:00:00"))
    clock.set(paris("2023-10-01T10:00:00"))
    report = connector.push()
    assert (report.sent, report.failed) == (1, 1)
    assert "Dossier not found" in report.errors[0]
    assert fake.dossiers[92].state == "en_instruction"


def test_the_subset_schema_agrees_with_ds_published_schema() -> None:
    """Every type, field, argument and enum value of the subset has the same type in DS's
    ``app/graphql/schema.graphql`` (set TI_WORKFLOW_DS_SCHEMA to a copy of it)."""
    import os

    from graphql import GraphQLEnumType, build_schema

    path = os.environ.get("TI_WORKFLOW_DS_SCHEMA")
    if not path:
        pytest.skip("TI_WORKFLOW_DS_SCHEMA is not set (a copy of DS's schema.graphql)")
    real = build_schema(Path(path).read_text(encoding="utf-8"))
    problems = []
    for name, mine in SCHEMA.type_map.items():
        if name.startswith("__"):
            continue
        theirs = real.type_map.get(name)
        if theirs is None or type(theirs) is not type(mine):
            problems.append(f"type {name}")
            continue
        if isinstance(mine, GraphQLEnumType):
            problems += [f"{name}.{v}" for v in mine.values if v not in theirs.values]  # type: ignore[attr-defined]
            continue
        for field_name, f in getattr(mine, "fields", {}).items():
            other = theirs.fields.get(field_name)  # type: ignore[attr-defined]
            if other is None or str(other.type) != str(f.type):
                problems.append(f"{name}.{field_name}: {f.type}")
                continue
            for arg, a in getattr(f, "args", {}).items():
                if arg not in other.args or str(other.args[arg].type) != str(a.type):
                    problems.append(f"{name}.{field_name}({arg})")
    assert problems == []


def test_the_scheduler_job_syncs(connector: Connector, fake: FakeDs, clock: SimulatedClock) -> None:
    from ti_workflow.scheduling.jobs import JOBS, JobContext

    file_dossier(fake, 81, paris("2023-07-01T10:00:00"))
    now = clock.now()
    outcome = JOBS["ds_sync"](JobContext(connector.engine, "ti-2023-2027", "ds", now, now, False))
    assert outcome["created"] == 1
    assert MAPPING.workflow == "candidacy"
