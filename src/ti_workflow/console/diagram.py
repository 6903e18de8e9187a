"""The workflow of a case drawn on the server (SVG) with the path it took highlighted.

No JavaScript renderer: the SVG is decorative for sighted readers (``aria-hidden``); the
same information is on the page as lists (the steps taken, then every transition with
whether the case took it), which is what screen readers and text browsers read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from ti_workflow.domain.definition import Definition
from ti_workflow.domain.events import Event

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 210, 44, 30, 46, 12


@dataclass(frozen=True)
class Step:
    trigger: str
    label: str
    source: str
    dest: str
    taken: bool


def depths(definition: Definition) -> dict[str, int]:
    """Breadth-first rank of each state from the initial one (unreached states last)."""
    rank = {definition.initial: 0}
    queue = deque([definition.initial])
    while queue:
        state = queue.popleft()
        for t in definition.outgoing(state):
            if t.dest not in rank:
                rank[t.dest] = rank[state] + 1
                queue.append(t.dest)
    last = max(rank.values(), default=0) + 1
    return {s: rank.get(s, last) for s in definition.state_names}


def steps(definition: Definition, events: Sequence[Event]) -> list[Step]:
    taken = {(e.trigger, e.source, e.dest) for e in events if e.source is not None}
    found = []
    for t in definition.transitions:
        for source in t.sources:
            if source == t.dest:
                continue
            label = t.label_fr or t.trigger
            found.append(
                Step(t.trigger, label, source, t.dest, (t.trigger, source, t.dest) in taken)
            )
    return found


def svg(definition: Definition, events: Sequence[Event], current: str) -> Markup:
    rank = depths(definition)
    rows: dict[int, list[str]] = {}
    for state in definition.state_names:
        rows.setdefault(rank[state], []).append(state)
    width = max(len(r) for r in rows.values()) * (BOX_W + GAP_X) - GAP_X + 2 * PAD
    height = len(rows) * (BOX_H + GAP_Y) - GAP_Y + 2 * PAD
    where: dict[str, tuple[float, float]] = {}
    for depth, names in sorted(rows.items()):
        row_w = len(names) * (BOX_W + GAP_X) - GAP_X
        x0 = (width - row_w) / 2
        for i, name in enumerate(names):
            where[name] = (x0 + i * (BOX_W + GAP_X), PAD + depth * (BOX_H + GAP_Y))
    visited = {e.dest for e in events} | {e.source for e in events if e.source}
    parts = [
        f'<svg class="tiw-diagram" viewBox="0 0 {width:.0f} {height:.0f}" '
        'xmlns="http://www.w3.org/2000/svg" aria-hidden="true" focusable="false">',
        '<defs><marker id="fleche" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#666"/></marker><marker id="fleche-prise" viewBox="0 0 10 10" refX="9" '
        'refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#000091"/></marker></defs>',
    ]
    for step in steps(definition, events):
        (x1, y1), (x2, y2) = where[step.source], where[step.dest]
        sx, sy = x1 + BOX_W / 2, y1 + (BOX_H if y2 > y1 else 0)
        ex, ey = x2 + BOX_W / 2, y2 + (0 if y2 > y1 else BOX_H)
        if y1 == y2:
            sy, ey = y1 + BOX_H / 2, y2 + BOX_H / 2
            sx, ex = (x1 + BOX_W, x2) if x2 > x1 else (x1, x2 + BOX_W)
        colour, stroke, marker = (
            ("#000091", 3, "fleche-prise") if step.taken else ("#929292", 1, "fleche")
        )
        bend = 0 if y2 > y1 else 40
        parts.append(
            f'<path d="M {sx:.0f} {sy:.0f} C {sx + bend:.0f} {sy:.0f} {ex + bend:.0f} '
            f'{ey:.0f} {ex:.0f} {ey:.0f}" fill="none" stroke="{colour}" '
            f'stroke-width="{stroke}" marker-end="url(#{marker})"/>'
        )
    for state in definition.state_names:
        x, y = where[state]
        label = escape(definition.state(state).label_fr or state)
        if state == current:
            fill, ink, border = "#000091", "#ffffff", "#000091"
        elif state in visited:
            fill, ink, border = "#e3e3fd", "#000091", "#000091"
        else:
            fill, ink, border = "#ffffff", "#3a3a3a", "#929292"
        parts.append(
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            f'fill="{fill}" stroke="{border}" stroke-width="2"/>'
            f'<text x="{x + BOX_W / 2:.0f}" y="{y + BOX_H / 2 + 5:.0f}" text-anchor="middle" '
            f'font-size="13" fill="{ink}">{label}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
