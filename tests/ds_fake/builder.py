"""Dossiers and the procedure's revision for the fake DS, built from the mapping file (so a
test that edits the mapping, or the procedure, shows what the connector notices)."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from files_support import minimal_pdf
from ti_workflow.ds.mapping import DsMapping, FieldMap, load_mapping

ROOT = Path(__file__).resolve().parents[2]
MAPPING_FILE = ROOT / "workflows" / "ds" / "ti-2023-2027.yaml"
MAPPING = load_mapping(MAPPING_FILE)
_IDS = itertools.count(1)

PDF = minimal_pdf()


def by_target(mapping: DsMapping = MAPPING) -> dict[str, FieldMap]:
    """``territory_name``, ``governance.members``, ``governance.members.role``..."""
    found: dict[str, FieldMap] = {}
    for f in mapping.fields:
        found[f.to] = f
        for sub in f.row:
            found[f"{f.to}.{sub.to}"] = sub
    return found


FIELDS = by_target()


def _champ_id() -> str:
    return base64.b64encode(f"Champ-{next(_IDS)}".encode()).decode()


def descriptors(mapping: DsMapping = MAPPING) -> list[dict[str, Any]]:
    """The active revision that matches the mapping exactly (every field required)."""

    def one(f: FieldMap) -> dict[str, Any]:
        d: dict[str, Any] = {
            "__typename": f"{f.kind}ChampDescriptor",
            "id": f.id,
            "label": f.label,
            "description": None,
            "required": f.to not in OPTIONAL,
        }
        if f.kind == "DropDownList":
            d["options"] = list(f.values)
        if f.kind == "Repetition":
            d["champDescriptors"] = [one(s) for s in f.row]
        return d

    return [one(f) for f in mapping.fields]


OPTIONAL = {
    "perimeter.single_member_justification",
    "perimeter.metropole_justification",
    "governance.extended_governance_justification",
    "summary",
    "already_started",
    "date",
}


def text(target: str, value: str | None) -> dict[str, Any]:
    f = FIELDS[target]
    return {
        "__typename": "TextChamp",
        "id": _champ_id(),
        "champDescriptorId": f.id,
        "label": f.label,
        "stringValue": value,
        "value": value,
    }


def dropdown(target: str, label: str | None) -> dict[str, Any]:
    f = FIELDS[target]
    return {
        "__typename": "DropDownListChamp",
        "id": _champ_id(),
        "champDescriptorId": f.id,
        "label": f.label,
        "stringValue": label,
        "value": label,
    }


def epci(target: str, code: str, name: str = "") -> dict[str, Any]:
    f = FIELDS[target]
    return {
        "__typename": "EpciChamp",
        "id": _champ_id(),
        "champDescriptorId": f.id,
        "label": f.label,
        "stringValue": name,
        "epci": {"code": code, "name": name or code},
    }


def day(target: str, value: date | None) -> dict[str, Any]:
    f = FIELDS[target]
    return {
        "__typename": "DateChamp",
        "id": _champ_id(),
        "champDescriptorId": f.id,
        "label": f.label,
        "stringValue": value.isoformat() if value else None,
        "date": value.isoformat() if value else None,
    }


def yes_no(target: str, value: bool) -> dict[str, Any]:
    f = FIELDS[target]
    return {
        "__typename": "YesNoChamp",
        "id": _champ_id(),
        "champDescriptorId": f.id,
        "label": f.label,
        "stringValue": "Oui" if value else "Non",
        "value": value,
    }


def files(target: str, found: Sequence[dict[str, Any]]) -> dict[str, Any]:
    f = FIELDS[target]
    return {
        "__typename": "PieceJustificativeChamp",
        "id": _champ_id(),
        "champDescriptorId": f.id,
        "label": f.label,
        "stringValue": ", ".join(x["filename"] for x in found),
        "files": list(found),
    }


def repetition(target: str, rows: Sequence[Sequence[dict[str, Any]]]) -> dict[str, Any]:
    f = FIELDS[target]
    return {
        "__typename": "RepetitionChamp",
        "id": _champ_id(),
        "champDescriptorId": f.id,
        "label": f.label,
        "stringValue": None,
        "rows": [{"id": _champ_id(), "champs": list(r)} for r in rows],
    }


def champs(
    add_file: Callable[[bytes, str], dict[str, Any]],
    *,
    name: str = "Vallée de l'Arve",
    email: str = "ti@arve.example.org",
    members: Sequence[str] = ("200000172", "200033116"),
    governance: Sequence[tuple[str, str, str]] = (
        ("Mme Élue", "Élu", "CC Faucigny-Glières"),
        ("M. Industriel", "Industriel", "Décolletage SA"),
    ),
    # FAQ 4.5: letters from the binôme's elected and industrial members.
    letters: Sequence[tuple[str, str]] = (
        ("Mme Élue", "CC Faucigny-Glières"),
        ("M. Industriel", "Décolletage SA"),
    ),
    letter: bytes = PDF,
    # FAQ 3.1: several actions, each with a few descriptive elements.
    actions: Sequence[tuple[str, str]] = (
        ("Campus des métiers", "Compétences"),
        ("Zone d'activités requalifiée", "Foncier"),
    ),
) -> list[dict[str, Any]]:
    """The champs of a complete, valid candidacy (as ``conftest.candidacy()``)."""
    return [
        text("territory_name", name),
        text("contact_email", email),
        repetition(
            "perimeter.members", [[epci("perimeter.members.siren", code)] for code in members]
        ),
        text("perimeter.single_member_justification", None),
        repetition(
            "governance.members",
            [
                [
                    text("governance.members.name", who),
                    dropdown("governance.members.role", role),
                    text("governance.members.organisation", org),
                ]
                for who, role, org in governance
            ],
        ),
        repetition(
            "letters_of_intent",
            [
                [
                    text("letters_of_intent.signatory", who),
                    text("letters_of_intent.organisation", org),
                    day("letters_of_intent.date", date(2023, 7, 1)),
                    files("letters_of_intent.file", [add_file(letter, f"lettre-{i + 1}.pdf")]),
                ]
                for i, (who, org) in enumerate(letters)
            ],
        ),
        repetition(
            "action_plan",
            [
                [
                    text("action_plan.title", title),
                    dropdown("action_plan.priority", priority),
                    text("action_plan.summary", f"{title} : description sommaire"),
                    yes_no("action_plan.already_started", False),
                ]
                for title, priority in actions
            ],
        ),
    ]


def replace_text(champs_: list[dict[str, Any]], target: str, value: str) -> None:
    for c in champs_:
        if c["champDescriptorId"] == FIELDS[target].id:
            c["value"] = c["stringValue"] = value
            return
    raise KeyError(target)


def at(text_: str) -> datetime:
    from conftest import paris

    return paris(text_)
