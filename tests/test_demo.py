"""``make demo``: the 2023 campaign on real territories ends as the programme's timetable says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_walks_the_2023_campaign(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/demo.db"
    result = subprocess.run(
        [sys.executable, "-m", "ti_workflow.cli", "--db", db, "demo", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = {r["story"]: r for r in json.loads(result.stdout)}
    assert {story: r["state"] for story, r in report.items()} == {
        "interregional": "labelled",
        "single_epci": "labelled",
        "metropole": "labelled",
        "returned_then_labelled": "labelled",
        "not_selected": "not_selected",
        "withdrawn": "withdrawn",
        "late": "lapsed",
        "opinion_missing": "labelled",
        "binome_per_intercommunality": "labelled",
    }
    # FAQ 4.1 line 200: labelled with one binôme per intercommunality, then followed up.
    per_epci = report["binome_per_intercommunality"]
    assert per_epci["governance_mode"] == "per_intercommunality"
    assert report["interregional"]["governance_mode"] == "territory"
    assert any(n.startswith("binôme follow-up (FAQ 4.1)") for n in per_epci["notes"])
    # FAQ 3.1 line 160: a five-year action without phases warns at submission.
    assert any("60\u00a0mois" in n for n in per_epci["notes"])
    assert not any("follow-up" in n for n in report["interregional"]["notes"])
    assert len(report["interregional"]["regions"]) >= 2
    assert len(report["single_epci"]["members"]) == 1
    assert any("(METRO)" in m or "(MET69)" in m for m in report["metropole"]["members"])
    late = report["late"]
    assert (
        "refused at 23/09/2023 00:00:00" in late["notes"][0]
        and "22/09/2023 inclus" in late["notes"][0]
    )
    assert [s["trigger"] for s in late["path"]] == ["create", "lapse"]
    closing = report["opinion_missing"]["path"][-2]
    assert closing["trigger"] == "close_regional_review" and closing["missing_opinions"]
    # every submission happened inside the window (Paris time)
    for r in report.values():
        for step in r["path"]:
            if step["trigger"] == "submit":
                assert "2023-06-23" <= step["at"][:10] <= "2023-09-22"
