"""Build the console's map layers from the ANCT GeoJSON files (run by hand, not at install).

    python scripts/simplify_geo.py /work/shared/data/geo src/ti_workflow/data/geo

Douglas-Peucker on each ring (hand-written: a GIS dependency would not earn its place for
one build step), coordinates rounded to 3 decimals (about 100 m), rings that collapse
dropped. Only the properties the map needs are kept. Input licence: Licence Ouverte 2.0
(ANCT); see ``src/ti_workflow/data/geo/PROVENANCE.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

Point = tuple[float, float]
LAYERS = {
    # output name: (input file, tolerance in degrees, properties kept {output: input})
    "regions.geojson": (
        "regions_anct_4326.geojson",
        0.02,
        {"code": "insee_reg", "name": "lib_reg"},
    ),
    "departements.geojson": (
        "departements_anct_4326.geojson",
        0.015,
        {"code": "insee_dep", "name": "lib_dep", "region": "insee_reg"},
    ),
    "territoires_2023.geojson": (
        "ti_2023_2027_20231114_anct_4326.geojson",
        0.006,
        {"id": "id_territoire", "name": "lib_territoire"},
    ),
}


def _distance(p: Point, a: Point, b: Point) -> float:
    """Distance from p to the segment a-b (plane approximation: fine at these tolerances)."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    if dx == 0 and dy == 0:
        return float(((p[0] - a[0]) ** 2 + (p[1] - a[1]) ** 2) ** 0.5)
    t = max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (dx * dx + dy * dy)))
    x, y = a[0] + t * dx, a[1] + t * dy
    return float(((p[0] - x) ** 2 + (p[1] - y) ** 2) ** 0.5)


def douglas_peucker(points: list[Point], tolerance: float) -> list[Point]:
    """Iterative (no recursion limit on long coastlines)."""
    if len(points) < 3:
        return points
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        worst, index = 0.0, -1
        for i in range(first + 1, last):
            d = _distance(points[i], points[first], points[last])
            if d > worst:
                worst, index = d, i
        if index >= 0 and worst > tolerance:
            keep[index] = True
            stack += [(first, index), (index, last)]
    return [p for p, k in zip(points, keep, strict=True) if k]


def ring(coords: list[list[float]], tolerance: float) -> list[list[float]] | None:
    points = [(float(x), float(y)) for x, y, *_ in coords]
    # A closed ring: split it in two halves so the first and last points stay anchored.
    middle = len(points) // 2
    kept = douglas_peucker(points[: middle + 1], tolerance)[:-1]
    kept += douglas_peucker(points[middle:], tolerance)
    out: list[list[float]] = []
    for x, y in kept:
        q = [round(x, 3), round(y, 3)]
        if not out or out[-1] != q:
            out.append(q)
    if len(out) < 4:
        return None
    if out[0] != out[-1]:
        out.append(out[0])
    return out


def geometry(geom: dict[str, Any], tolerance: float) -> dict[str, Any] | None:
    polygons = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
    out = []
    for polygon in polygons:
        rings = [ring(r, tolerance) for r in polygon]
        if rings and rings[0] is not None:
            out.append([r for r in rings if r is not None])
    if not out:
        return None
    return {"type": "MultiPolygon", "coordinates": out}


def build(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name, (infile, tolerance, keep) in LAYERS.items():
        data = json.loads((source / infile).read_text(encoding="utf-8"))
        features = []
        for f in data["features"]:
            geom = geometry(f["geometry"], tolerance)
            if geom is None:  # too small to draw at this scale: keep its smallest ring
                geom = geometry(f["geometry"], 0.0)
            props = {k: f["properties"][v] for k, v in keep.items()}
            features.append({"type": "Feature", "properties": props, "geometry": geom})
        text = json.dumps(
            {"type": "FeatureCollection", "features": features},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        (target / name).write_text(text, encoding="utf-8")
        print(f"{name}: {len(features)} features, {len(text.encode()) / 1024:.0f} KiB")


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(sys.argv[2]))
