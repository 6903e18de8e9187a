"""A small 2023 campaign driven through the engine with the simulated clock, for audit tests.

Five candidacies walk the programme's own timetable (FAQ 1.2 window 23/06-22/09/2023,
1.3 regional opinions then national decision); the live view is recorded at a few
instants so that audit snapshots can be compared with what the system showed then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from conftest import ARA_1, ARA_2, AUDITOR, COMMITTEE, SYSTEM, candidacy, paris
from ti_workflow.audit.store import cases_t, events_t
from ti_workflow.clock import SimulatedClock, as_utc
from ti_workflow.domain.actors import Actor
from ti_workflow.domain.events import Event
from ti_workflow.engine import Engine
from ti_workflow.storage.repository import load_events

BRITTANY = "200027027"  # CC Arc Sud Bretagne (53): makes an inter-regional case (FAQ 2.5)
LAMASTRE = "200016905"  # CC du Pays de Lamastre (84): no groupement is in two territories
CLOSING = "2023-09-22T23:59:59.999999"  # last instant of the window, Europe/Paris (FAQ 1.2)
INSTANTS = ("2023-07-01T12:00:00", CLOSING, "2023-10-15T00:00:00", "2023-12-01T00:00:00")


def owner(n: int) -> Actor:
    return Actor("candidate", email=f"ti{n}@example.org")


@dataclass
class Campaign:
    engine: Engine
    ids: dict[str, int] = field(default_factory=dict)
    live: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)

    def record(self, label: str) -> None:
        cases, _ = self.engine.list_cases(AUDITOR, limit=1000)
        self.live[label] = {
            c.id: {"state": c.state, "data": c.data, "facts": c.facts, "regions": c.regions}
            for c in cases
        }


def opinion(engine: Engine, case_id: int, body: str, region: str, value: str) -> None:
    engine.fire(
        case_id,
        "give_opinion",
        Actor(body, region=region),
        {"opinion": value, "reasons": f"avis {value} ({body})"},
    )


def run_campaign(engine: Engine, clock: SimulatedClock) -> Campaign:
    """labelled (84), not_selected (84), lapsed draft, withdrawn, inter-regional labelled with
    an opinion missing at the deadline (84 + 53)."""
    run = Campaign(engine)
    clock.set(paris("2023-06-26T10:00:00"))
    for n, name in enumerate(("labelled", "rejected", "draft", "withdrawn", "interregional")):
        members = [LAMASTRE, BRITTANY] if name == "interregional" else [ARA_1, ARA_2]
        data = candidacy(
            territory_name=f"Territoire {name}",
            contact_email=f"ti{n}@example.org",
            perimeter={
                "members": members,
                "single_member_justification": None,
                "metropole_justification": None,
            },
        )
        run.ids[name] = engine.create_case("candidacy", "ti-2023-2027", data, owner(n)).id
    clock.set(paris("2023-07-01T12:00:00"))
    run.record(INSTANTS[0])
    clock.set(paris("2023-07-03T09:00:00"))
    engine.update_data(
        run.ids["labelled"],
        candidacy(territory_name="Territoire labelled (v2)", contact_email="ti0@example.org"),
        owner(0),
    )
    clock.set(paris("2023-09-04T11:00:00"))
    for n, name in enumerate(("labelled", "rejected", "draft", "withdrawn", "interregional")):
        if name != "draft":
            engine.fire(run.ids[name], "submit", owner(n))
    clock.set(paris("2023-09-10T16:00:00"))
    engine.fire(run.ids["withdrawn"], "withdraw", owner(3))
    clock.set(paris(CLOSING))
    run.record(CLOSING)
    clock.set(paris("2023-09-23T00:00:05"))
    engine.fire(run.ids["draft"], "lapse", SYSTEM)
    for name in ("labelled", "rejected", "interregional"):
        engine.fire(run.ids[name], "start_regional_review", SYSTEM)
    clock.set(paris("2023-10-02T14:00:00"))
    for body in ("regional_council", "state_services"):
        opinion(engine, run.ids["labelled"], body, "84", "favourable")
        opinion(engine, run.ids["rejected"], body, "84", "unfavourable")
        opinion(engine, run.ids["interregional"], body, "84", "favourable")
    opinion(engine, run.ids["interregional"], "regional_council", "53", "favourable")
    clock.set(paris("2023-10-14T00:00:00"))
    engine.fire(run.ids["interregional"], "close_regional_review", SYSTEM)
    clock.set(paris("2023-10-15T00:00:00"))
    run.record("2023-10-15T00:00:00")
    clock.set(paris("2023-10-31T15:00:00"))
    engine.fire(run.ids["labelled"], "label", COMMITTEE)
    engine.fire(run.ids["interregional"], "label", COMMITTEE)
    engine.fire(run.ids["rejected"], "reject", COMMITTEE, {"reason": "périmètre peu cohérent"})
    clock.set(paris("2023-12-01T00:00:00"))
    run.record("2023-12-01T00:00:00")
    return run


def rewrite_chain(engine: Engine, case_id: int, seq: int, **changes: Any) -> None:
    """What a forger with write access would do: edit one event, then recompute every hash
    after it and the case head, so that the chain is consistent again."""
    if "at" in changes:
        changes["at"] = as_utc(changes["at"])  # the engine stores UTC
    with engine.db.begin() as conn:
        events = load_events(conn, case_id)
        prev = events[seq - 2].hash if seq > 1 else events[0].prev_hash
        for e in events[seq - 1 :]:
            fields = {**e.__dict__, **(changes if e.seq == seq else {}), "prev_hash": prev}
            fields.pop("hash")
            new = Event(**fields)
            new = Event(**{**new.__dict__, "hash": new.compute_hash()})
            conn.execute(
                update(events_t)
                .where(events_t.c.case_id == case_id, events_t.c.seq == e.seq)
                .values(
                    at=new.at,
                    payload=new.payload,
                    actor=new.actor,
                    prev_hash=new.prev_hash,
                    hash=new.hash,
                )
            )
            prev = new.hash
        conn.execute(update(cases_t).where(cases_t.c.id == case_id).values(head_hash=prev))
