"""Who receives what: addresses per role and region, from a YAML directory file.

Every address is checked when the file is read (no CR/LF, a plain ``local@domain``),
so nothing that could inject a header or truncate an envelope ever reaches the outbox.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ti_workflow.definitions.loader import read_yaml, yaml_problem
from ti_workflow.domain.actors import EMAIL_RE, REGIONAL_ROLES
from ti_workflow.mail.errors import InvalidDirectory

MAX_ADDRESS = 254
REGION_KEY = re.compile(r"^\d{2,3}$")
DREETS = "dreets"
"""The regional directorate (DREETS; DEETS overseas) the SGAR gives its opinion with (FAQ 1.3,
"en lien avec les DREETS"): no role of its own, copied on what the State services receive."""
BODIES = (*REGIONAL_ROLES, DREETS)
"""What the directory holds per region: the two bodies that give opinions, and the DREETS."""
PLACEHOLDER = "{region}"
"""The one placeholder of a default address pattern (no attribute or index access)."""


def address_problem(address: object) -> str | None:
    """Why ``address`` may not be used as a recipient, or None if it may."""
    if not isinstance(address, str):
        return f"not an address: {address!r}"
    if any(ch in address for ch in "\r\n\0"):
        return f"line break or NUL in address {address!r} (header injection)"
    if len(address) > MAX_ADDRESS or not EMAIL_RE.match(address):
        return f"not a valid e-mail address: {address!r}"
    return None


@dataclass(frozen=True)
class Recipient:
    role: str
    address: str
    cc: bool = False
    """Copied (``Cc:``) rather than addressed (``To:``)."""

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"role": self.role, "address": self.address}
        if self.cc:
            found["cc"] = True
        return found


@dataclass(frozen=True)
class Directory:
    national_committee: tuple[str, ...] = ()
    regions: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    default_patterns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = ""

    def uncovered(self, regions: Mapping[str, str], concerned: Iterable[str]) -> list[str]:
        """What this directory gets wrong about the reference regions (code -> name): a code
        that is no region, and, among the regions a groupement (so a case) can concern, one
        with no address for a body and no default pattern: it would never be asked."""
        errors = [
            f"{self.source}: regions.{code}: not a region of the reference data"
            for code in sorted(self.regions)
            if code not in regions
        ]
        for body in BODIES:
            if self.default_patterns.get(body):
                continue
            missing = [
                f"{code} ({regions.get(code, code)})"
                for code in sorted(set(concerned))
                if not self.regions.get(code, {}).get(body)
            ]
            if missing:
                errors.append(
                    f"{self.source}: regions: no {body} address for {', '.join(missing)}, and "
                    f"no regions.default.{body} pattern (every region a case can concern needs "
                    f"an address for each of {', '.join(BODIES)})"
                )
        return errors

    def regional(self, region: str, body: str) -> tuple[str, ...]:
        explicit = self.regions.get(region, {}).get(body)
        if explicit:
            return explicit
        return tuple(p.replace(PLACEHOLDER, region) for p in self.default_patterns.get(body, ()))


def load_directory(path: Path) -> Directory:
    file = str(path)
    try:
        document = read_yaml(path) or {}
    except OSError as exc:
        raise InvalidDirectory([f"{file}: cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise InvalidDirectory([f"{file}: {yaml_problem(exc)}"]) from None
    return parse_directory(document, file)


def parse_directory(document: Any, file: str) -> Directory:
    errors: list[str] = []

    def addresses(value: Any, where: str, pattern: bool = False) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            probe = item
            if pattern and isinstance(item, str):
                rest = item.replace(PLACEHOLDER, "")
                if "{" in rest or "}" in rest:
                    errors.append(
                        f"{file}: {where}[{i}]: {item!r} is not a pattern: write the region "
                        "code as {region}, and nothing else in braces"
                    )
                    continue
                probe = item.replace(PLACEHOLDER, "84")
            problem = address_problem(probe)
            if problem:
                errors.append(f"{file}: {where}[{i}]: {problem}")
            else:
                out.append(str(item))
        return tuple(out)

    if not isinstance(document, dict):
        raise InvalidDirectory([f"{file}: must be a mapping (national_committee:, regions:)"])
    for key in document:
        if key not in ("national_committee", "regions"):
            errors.append(f"{file}: {key}: unknown key (allowed: national_committee, regions)")
    national = addresses(document.get("national_committee", []), "national_committee")
    if not national:
        errors.append(f"{file}: national_committee: at least one address is required")
    regions: dict[str, dict[str, tuple[str, ...]]] = {}
    defaults: dict[str, tuple[str, ...]] = {}
    raw_regions = document.get("regions") or {}
    if not isinstance(raw_regions, dict):
        errors.append(f"{file}: regions: must map a region code (or default) to its bodies")
        raw_regions = {}
    for code, bodies in raw_regions.items():
        code = str(code)
        if code != "default" and not REGION_KEY.match(code):
            errors.append(f"{file}: regions.{code}: an INSEE region code (84) or 'default'")
            continue
        if not isinstance(bodies, dict):
            errors.append(f"{file}: regions.{code}: map {'/'.join(BODIES)} to lists")
            continue
        target: dict[str, tuple[str, ...]] = {}
        for body, value in bodies.items():
            if body not in BODIES:
                errors.append(
                    f"{file}: regions.{code}.{body}: unknown body (allowed: {', '.join(BODIES)})"
                )
                continue
            target[body] = addresses(value, f"regions.{code}.{body}", pattern=code == "default")
        if code == "default":
            defaults = target
        else:
            regions[code] = target
    if errors:
        raise InvalidDirectory(errors)
    return Directory(national, regions, defaults, file)
