"""The procedure's fields mapped to the candidacy form: data (``workflows/ds/*.yaml``), not code.

Each entry names a DS field by its ``champDescriptorId`` (``id``), its label (checked
against the procedure, so a reused id is noticed), its kind (the descriptor type without
``ChampDescriptor``: ``Text``, ``Epci``, ``Repetition``...) and where its value goes in
the candidacy file (``to``). A repetition block maps its row's fields the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ti_workflow.ds.errors import MappingError

TEXT_KINDS = ("Text", "Textarea", "Email")
CHAMP_TYPES = {
    "Text": "TextChamp",
    "Textarea": "TextChamp",
    "Email": "TextChamp",
    "Epci": "EpciChamp",
    "DropDownList": "DropDownListChamp",
    "Date": "DateChamp",
    "Checkbox": "CheckboxChamp",
    "YesNo": "YesNoChamp",
    "PieceJustificative": "PieceJustificativeChamp",
    "Repetition": "RepetitionChamp",
}
"""Kind (descriptor ``__typename`` minus ``ChampDescriptor``) -> the champ's ``__typename``."""

SCALAR_TARGETS: dict[str, tuple[str, ...]] = {
    "territory_name": TEXT_KINDS,
    "contact_email": TEXT_KINDS,
    "perimeter.single_member_justification": TEXT_KINDS,
    "perimeter.metropole_justification": TEXT_KINDS,
    "governance.extended_governance_justification": TEXT_KINDS,
}
ROW_TARGETS: dict[str, dict[str, tuple[str, ...]]] = {
    "perimeter.members": {"siren": ("Epci",)},
    "governance.members": {
        "name": TEXT_KINDS,
        "role": ("DropDownList",),
        "organisation": TEXT_KINDS,
    },
    "letters_of_intent": {
        "signatory": TEXT_KINDS,
        "organisation": TEXT_KINDS,
        "date": ("Date",),
        "file": ("PieceJustificative",),
    },
    "action_plan": {
        "title": TEXT_KINDS,
        "priority": ("DropDownList",),
        "summary": TEXT_KINDS,
        "already_started": ("Checkbox", "YesNo"),
    },
}
CHOICES = {
    ("governance.members", "role"): ("elected", "industrial"),
    ("action_plan", "priority"): ("ecological_transition", "innovation", "skills", "land"),
}


@dataclass(frozen=True)
class FieldMap:
    id: str
    label: str
    kind: str
    to: str
    values: Mapping[str, str] = field(default_factory=dict)
    """DropDownList: each option's French label -> the form's code."""
    row: tuple[FieldMap, ...] = ()


@dataclass(frozen=True)
class DsMapping:
    source: str
    campaign: str
    workflow: str
    decision_timer: str
    fields: tuple[FieldMap, ...]

    def all_fields(self) -> list[tuple[FieldMap, FieldMap | None]]:
        """Every mapped field with its repetition block (None at the top level)."""
        found: list[tuple[FieldMap, FieldMap | None]] = []
        for f in self.fields:
            found.append((f, None))
            found += [(r, f) for r in f.row]
        return found


def load_mapping(path: Path) -> DsMapping:
    """Read and check a mapping file; every problem is listed with its place."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError([f"{path}: cannot read ({exc.strerror})"]) from None
    except yaml.YAMLError as exc:
        raise MappingError([f"{path}: not valid YAML ({exc})"]) from None
    errors: list[str] = []
    if not isinstance(document, dict):
        raise MappingError([f"{path}: expected a mapping at the top level"])
    for key in ("campaign", "workflow", "decision_timer"):
        if not isinstance(document.get(key), str):
            errors.append(f"{path}: {key}: required (text)")
    raw_fields = document.get("champs")
    if not isinstance(raw_fields, list):
        raise MappingError([*errors, f"{path}: champs: expected a list of fields"])
    fields = []
    seen_targets: set[str] = set()
    seen_ids: set[str] = set()
    for i, raw in enumerate(raw_fields):
        where = f"{path}: champs[{i}]"
        parsed = _field(raw, where, errors, None)
        if parsed is None:
            continue
        if parsed.to in seen_targets:
            errors.append(f"{where}.to: {parsed.to!r} is mapped twice")
        seen_targets.add(parsed.to)
        for f in (parsed, *parsed.row):
            if f.id in seen_ids:
                errors.append(f"{where}: champ id {f.id!r} is mapped twice")
            seen_ids.add(f.id)
        fields.append(parsed)
    if "territory_name" not in seen_targets:
        errors.append(f"{path}: champs: no field is mapped to territory_name (required)")
    if errors:
        raise MappingError(errors)
    return DsMapping(
        source=str(path),
        campaign=document["campaign"],
        workflow=document["workflow"],
        decision_timer=document["decision_timer"],
        fields=tuple(fields),
    )


def _field(raw: Any, where: str, errors: list[str], block: str | None) -> FieldMap | None:
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected a mapping with id, label, type, to")
        return None
    unknown = set(raw) - {"id", "label", "type", "to", "values", "row"}
    if unknown:
        errors.append(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    missing = [k for k in ("id", "label", "type", "to") if not isinstance(raw.get(k), str)]
    if missing:
        errors.append(f"{where}: {', '.join(missing)}: required (text)")
        return None
    kind, to = raw["type"], raw["to"]
    if kind not in CHAMP_TYPES:
        errors.append(f"{where}.type: {kind!r} is not one of {', '.join(CHAMP_TYPES)}")
        return None
    if block is None:
        allowed = SCALAR_TARGETS.get(to) or (("Repetition",) if to in ROW_TARGETS else None)
        targets = [*SCALAR_TARGETS, *ROW_TARGETS]
    else:
        allowed = ROW_TARGETS[block].get(to)
        targets = list(ROW_TARGETS[block])
    if allowed is None:
        errors.append(f"{where}.to: {to!r} is not one of {', '.join(targets)}")
        return None
    if kind not in allowed:
        errors.append(
            f"{where}.type: {to!r} takes a field of type {' or '.join(allowed)}, not {kind!r}"
        )
        return None
    values: dict[str, str] = {}
    if kind == "DropDownList":
        raw_values = raw.get("values")
        codes = CHOICES.get((block or "", to), ())
        if not isinstance(raw_values, dict) or not raw_values:
            errors.append(f"{where}.values: required: each option's label -> one of {codes}")
        else:
            for label, code in raw_values.items():
                if code not in codes:
                    errors.append(
                        f"{where}.values[{label!r}]: {code!r} is not one of {', '.join(codes)}"
                    )
            values = {str(k): str(v) for k, v in raw_values.items()}
    row: list[FieldMap] = []
    if kind == "Repetition":
        raw_row = raw.get("row")
        if not isinstance(raw_row, list) or not raw_row:
            errors.append(f"{where}.row: required: the block's fields")
        else:
            for j, sub in enumerate(raw_row):
                parsed = _field(sub, f"{where}.row[{j}]", errors, to)
                if parsed is not None:
                    row.append(parsed)
    return FieldMap(raw["id"], raw["label"], kind, to, values, tuple(row))


@dataclass(frozen=True)
class Attachment:
    """A file a dossier carries for a letter of intent: where it goes and how to fetch it."""

    letter: int
    filename: str
    content_type: str
    checksum: str
    size: int
    url: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "letter": self.letter,
            "filename": self.filename,
            "content_type": self.content_type,
            "checksum": self.checksum,
            "size": self.size,
        }


def candidacy_data(
    mapping: DsMapping, dossier: Mapping[str, Any]
) -> tuple[dict[str, Any], list[Attachment]]:
    """The candidacy file a dossier's fields make (before the form's own checks), and the
    letters' files to fetch. A drop-down label the mapping does not know is an error."""
    champs = {c["champDescriptorId"]: c for c in dossier.get("champs") or []}
    errors: list[str] = []
    data: dict[str, Any] = {"perimeter": {}, "governance": {}}
    attachments: list[Attachment] = []
    for f in mapping.fields:
        champ = champs.get(f.id)
        if f.kind == "Repetition":
            rows = []
            for row in (champ or {}).get("rows") or []:
                values = {c["champDescriptorId"]: c for c in row.get("champs") or []}
                item: dict[str, Any] = {}
                for sub in f.row:
                    item[sub.to] = _value(
                        sub, values.get(sub.id), f"{f.label} / {sub.label}", errors
                    )
                if any(v not in (None, "", [], False) for v in item.values()):
                    rows.append(item)
            _place(data, f.to, _rows(f.to, rows, attachments))
        else:
            _place(data, f.to, _value(f, champ, f.label, errors))
    if errors:
        raise MappingError(errors)
    if not data.get("contact_email"):
        data["contact_email"] = str((dossier.get("usager") or {}).get("email") or "")
    return data, attachments


def _rows(to: str, rows: list[dict[str, Any]], attachments: list[Attachment]) -> list[Any]:
    if to == "perimeter.members":
        return [r["siren"] for r in rows if r.get("siren")]
    if to != "letters_of_intent":
        return rows
    letters = []
    for i, r in enumerate(rows):
        found = r.pop("file", None) or []
        if len(found) > 1:
            raise MappingError(
                [f"letter of intent n° {i + 1} has {len(found)} files: one signed PDF per letter"]
            )
        for file in found:
            attachments.append(
                Attachment(
                    letter=i,
                    filename=str(file["filename"]),
                    content_type=str(file.get("contentType") or ""),
                    checksum=str(file["checksum"]),
                    size=int(file["byteSizeBigInt"]),
                    url=str(file["url"]),
                )
            )
        letters.append(r)
    return letters


def _value(f: FieldMap, champ: Mapping[str, Any] | None, label: str, errors: list[str]) -> Any:
    if champ is None:
        return _empty(f)
    expected = CHAMP_TYPES[f.kind]
    if champ.get("__typename") != expected:
        errors.append(
            f"« {label} » ({f.id}) is a {champ.get('__typename')} on DS, the mapping expects "
            f"{expected}"
        )
        return None
    if f.kind in TEXT_KINDS:
        text = champ.get("value")
        text = (text if text is not None else champ.get("stringValue")) or ""
        return text.strip() or _empty(f)
    if f.kind == "Epci":
        return ((champ.get("epci") or {}).get("code") or "").strip()
    if f.kind == "DropDownList":
        chosen = (champ.get("value") or "").strip()
        if not chosen:
            return None
        if chosen not in f.values:
            known = ", ".join(f"« {k} »" for k in f.values)
            errors.append(
                f"« {label} »: the option « {chosen} » is not in the mapping (known: {known})"
            )
            return None
        return f.values[chosen]
    if f.kind == "Date":
        return champ.get("date")
    if f.kind == "Checkbox":
        return bool(champ.get("checked"))
    if f.kind == "YesNo":
        return bool(champ.get("yes"))
    if f.kind == "PieceJustificative":
        return list(champ.get("files") or [])
    return None


def _empty(f: FieldMap) -> Any:
    if f.to in ("territory_name", "contact_email", "name", "organisation", "signatory"):
        return ""
    if f.to in ("title", "summary"):
        return ""
    return None


def _place(data: dict[str, Any], to: str, value: Any) -> None:
    head, _, tail = to.partition(".")
    if tail:
        data.setdefault(head, {})[tail] = value
    else:
        data[head] = value
