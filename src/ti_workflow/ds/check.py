"""``ds check-mapping``: the mapping file against the procedure's active revision on DS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ti_workflow.ds.mapping import DsMapping, FieldMap

SUFFIX = "ChampDescriptor"
NEVER_FILLED = ("HeaderSection", "Explication")
"""Descriptors that carry no value (section titles, explanations)."""


@dataclass(frozen=True)
class Problem:
    kind: str
    """``unmapped_required``, ``missing``, ``type_mismatch``, ``label_mismatch``,
    ``unknown_option``."""
    field_id: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "field_id": self.field_id, "message": self.message}


def check_mapping(mapping: DsMapping, demarche: Mapping[str, Any]) -> list[Problem]:
    revision = demarche.get("activeRevision") or {}
    top = list(revision.get("champDescriptors") or [])
    descriptors: dict[str, tuple[dict[str, Any], str | None]] = {}
    for d in top:
        descriptors[d["id"]] = (d, None)
        for sub in d.get("champDescriptors") or []:
            descriptors[sub["id"]] = (sub, d["id"])
    problems: list[Problem] = []
    mapped = {f.id for f, _ in mapping.all_fields()}
    for f, block in mapping.all_fields():
        found = descriptors.get(f.id)
        where = f"« {f.label} » ({f.id}, mapped to {_target(f, block)})"
        if found is None:
            problems.append(
                Problem("missing", f.id, f"{where} no longer exists in the active revision")
            )
            continue
        descriptor, parent = found
        kind = str(descriptor.get("__typename", "")).removesuffix(SUFFIX)
        if kind != f.kind:
            problems.append(
                Problem("type_mismatch", f.id, f"{where} is a {kind} field on DS, not {f.kind}")
            )
        if descriptor.get("label") != f.label:
            problems.append(
                Problem(
                    "label_mismatch",
                    f.id,
                    f"{where} is labelled « {descriptor.get('label')} » on DS",
                )
            )
        expected_parent = block.id if block else None
        if parent != expected_parent:
            problems.append(
                Problem("type_mismatch", f.id, f"{where} is not in the same repetition block on DS")
            )
        if f.kind == "DropDownList" and kind == f.kind:
            for option in descriptor.get("options") or []:
                if option not in f.values:
                    problems.append(
                        Problem(
                            "unknown_option",
                            f.id,
                            f"{where}: the option « {option} » has no code in the mapping",
                        )
                    )
    for field_id, (descriptor, parent) in descriptors.items():
        kind = str(descriptor.get("__typename", "")).removesuffix(SUFFIX)
        if field_id in mapped or kind in NEVER_FILLED or not descriptor.get("required"):
            continue
        if parent is not None and parent not in mapped:
            continue  # reported with its block
        problems.append(
            Problem(
                "unmapped_required",
                field_id,
                f"the required field « {descriptor.get('label')} » ({field_id}, {kind}) is "
                "not mapped: its answers would be lost",
            )
        )
    return problems


def _target(f: FieldMap, block: FieldMap | None) -> str:
    return f"{block.to}[].{f.to}" if block else f.to
