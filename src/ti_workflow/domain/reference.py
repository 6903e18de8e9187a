"""The administrative reference data the rules need: groupements (EPCI, EPT) and regions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

METROPOLE_NATURES = frozenset({"METRO", "MET69"})


@dataclass(frozen=True)
class Groupement:
    """An EPCI à fiscalité propre or a Grand Paris EPT, known by its SIREN."""

    siren: str
    name: str
    nature: str
    departments: tuple[str, ...]
    regions: tuple[str, ...]
    population: int = 0

    @property
    def is_metropole(self) -> bool:
        return self.nature in METROPOLE_NATURES


@dataclass(frozen=True)
class Referential:
    groupements: Mapping[str, Groupement]
    regions: Mapping[str, str]

    @classmethod
    def of(cls, groupements: Iterable[Groupement], regions: Mapping[str, str]) -> Referential:
        return cls({g.siren: g for g in groupements}, dict(regions))

    def groupement(self, siren: str) -> Groupement | None:
        return self.groupements.get(siren)

    def region_name(self, code: str) -> str:
        return self.regions.get(code, code)

    def regions_of(self, sirens: Iterable[str]) -> tuple[str, ...]:
        """The regions concerned by a perimeter (FAQ 2.5): the union over its known members."""
        found: set[str] = set()
        for siren in sirens:
            g = self.groupements.get(siren)
            if g is not None:
                found.update(g.regions)
        return tuple(sorted(found))
