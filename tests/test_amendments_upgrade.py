"""A database whose amendments were filed under the first amendment workflows (opinions
alone approve; a national acknowledgement of a major change) keeps opening, and its honest
log keeps verifying, once the Délégation's decision step exists (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import AUDITOR, COMMITTEE, SYSTEM, EngineFactory, candidacy, paris
from territories_helpers import (
    ANNEMASSE,
    ARDECHE,
    ARVE,
    TARENTAISE,
    all_favourable,
    amendment,
    decide_favourably,
    file_amendment,
    import_shipped,
)
from ti_workflow.audit.verify import verify
from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.domain.rules import FORMS
from ti_workflow.settings import Settings

BEFORE = Path(__file__).parent / "data" / "workflows_before_delegation"


def test_cases_of_the_first_amendment_workflows_still_verify(
    make_engine: EngineFactory, db_url: str, clock: SimulatedClock, tmp_path: Path
) -> None:
    current = Settings().workflows_dir
    old = tmp_path / "workflows"
    shutil.copytree(current, old)
    for f in BEFORE.iterdir():
        shutil.copy(f, old / f.name)
    clock.set(paris("2024-03-01T10:00:00"))
    engine = open_engine(Settings(db_url=db_url, workflows_dir=old), clock)
    try:
        import_shipped(engine)
        marginal = file_amendment(engine, amendment(ARDECHE, add=[TARENTAISE]))
        assert all_favourable(engine, marginal) == "approved"  # the opinions alone, then
        major = file_amendment(engine, amendment(ARVE, add=[ANNEMASSE], effective_on="2024-04-01"))
        assert all_favourable(engine, major) == "regional_review"
        acknowledged = engine.fire(
            major, "acknowledge_major_change", COMMITTEE, {"reason": "pris acte"}
        )
        assert acknowledged.case.state == "approved"
        pending = file_amendment(
            engine, amendment(ARDECHE, new_name="Ardèche Drôme", effective_on="2024-05-01")
        )
    finally:
        engine.db.dispose()

    engine = make_engine(db_url)  # today's workflow files: the old versions are past ones
    report = verify(engine)
    assert report.ok, [str(f) for f in report.findings]
    assert engine.get(major, AUDITOR).facts["major_change_acknowledged"]["reason"] == "pris acte"
    # a case still open under the first version follows it; a new case takes the new steps
    assert engine.get(pending, SYSTEM).state == "regional_review"
    # files recorded before members had an e-mail stay in their normalised form
    recorded = FORMS["candidacy"].parse(candidacy())
    assert "email" not in recorded["governance"]["members"][0]
    assert FORMS["candidacy"].parse(recorded) == recorded
    renamed = file_amendment(engine, amendment(ARVE, new_name="Arve", effective_on="2024-09-01"))
    assert decide_favourably(engine, renamed) == "approved"
    report = verify(engine)
    assert report.ok, [str(f) for f in report.findings]
