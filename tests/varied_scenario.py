"""Varied candidacies driven through the real engine, for the audit's tests and
``bench/audit.py``: each case's perimeter (1-5 EPCI of one region, 15% inter-regional,
drawn from the shipped reference data), governance, letters, actions, instants and fate
(lapsed, withdrawn, returned for completion, opinions all given or one missing at the
deadline, labelled, rejected, undecided) come from ``random.Random(n)``.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from ti_workflow.clock import PARIS, SimulatedClock
from ti_workflow.domain.actors import Actor
from ti_workflow.domain.reference import Referential
from ti_workflow.engine import Engine

START = datetime(2023, 6, 23, 9, tzinfo=PARIS)  # the window opens (FAQ 1.2)
CLOSES = datetime(2023, 9, 22, 22, tzinfo=PARIS)  # shortly before it closes
AFTER_CLOSE = datetime(2023, 9, 23, 0, 0, 5, tzinfo=PARIS)  # the closing timer's run
OPINIONS_FROM = datetime(2023, 9, 25, 9, tzinfo=PARIS)
DEADLINE = datetime(2023, 10, 13, 23, 59, tzinfo=PARIS)  # regional_review_deadline
DECISIONS_FROM = datetime(2023, 10, 16, 9, tzinfo=PARIS)
DECISIONS_TO = datetime(2023, 11, 30, 18, tzinfo=PARIS)
PRIORITIES = ("ecological_transition", "innovation", "skills", "land")
PEOPLE = ("Camille", "Dominique", "Claude", "Alix", "Sacha", "Maxime", "Lou", "Noé", "Inès")
NAMES = ("Martin", "Bernard", "Dubois", "Lefèvre", "Garcia", "Roux", "Fournier", "Girard")
ACTIONS = ("Campus", "Friche", "Hydrogène", "Décarbonation", "Foncier", "Apprentissage")
REGIONAL = ("regional_council", "state_services")


def between(rng: random.Random, a: datetime, b: datetime) -> datetime:
    """A random instant in [a, b], to the second."""
    return a + timedelta(seconds=int(rng.random() * max((b - a).total_seconds(), 0)))


def form(rng: random.Random, n: int, members: list[str], ref: Referential) -> dict[str, Any]:
    """A complete candidacy file: its own perimeter, governance, letters and actions."""
    first = ref.groupement(members[0])
    assert first is not None
    people = [f"{rng.choice(PEOPLE)} {rng.choice(NAMES)}" for _ in range(6)]
    governance = [
        {"name": people[0], "role": "elected", "organisation": first.name},
        {"name": people[1], "role": "industrial", "organisation": f"Industrie {n} SAS"},
    ]
    extra = rng.choice((0, 0, 0, 1, 2))
    for i in range(extra):
        role = rng.choice(("elected", "industrial"))
        governance.append({"name": people[2 + i], "role": role, "organisation": "Partenaire"})
    metropole = any(g.is_metropole for s in members if (g := ref.groupement(s)))
    return {
        "territory_name": f"{first.name} et environs (dossier {n})",
        "contact_email": f"contact{n}@territoire.example.org",
        "perimeter": {
            "members": members,
            "single_member_justification": "taille critique" if len(members) == 1 else None,
            "metropole_justification": "cœur industriel" if metropole else None,
        },
        "governance": {
            "members": governance,
            "extended_governance_justification": f"{len(governance)} membres" if extra else None,
        },
        "letters_of_intent": [
            # FAQ 4.5: the binôme's own letters, then 1-3 other supports
            {"signatory": people[0], "organisation": first.name, "date": "2023-06-30"},
            {"signatory": people[1], "organisation": f"Industrie {n} SAS", "date": "2023-07-03"},
            *[
                {
                    "signatory": people[4 - i],
                    "organisation": f"Organisation {i}",
                    "date": f"2023-{rng.randint(6, 9):02d}-{rng.randint(1, 28):02d}",
                }
                for i in range(rng.randint(1, 3))
            ],
        ],
        "action_plan": [
            {
                "title": f"{rng.choice(ACTIONS)} {i + 1}",
                "priority": rng.choice(PRIORITIES),
                "summary": f"Action {i + 1} du dossier {n}" * (rng.randint(0, 3) + 1),
                "already_started": rng.random() < 0.5,
            }
            for i in range(rng.randint(1, 5) + 1)  # FAQ 3.1: several actions
        ],
    }


def story(engine: Engine, clock: SimulatedClock, n: int, pool: dict[str, list[str]]) -> int:
    """Drive the ``n``-th candidacy through the engine, its fate drawn from ``Random(n)``.

    Fates: lapsed draft, withdrawn, returned for completion then resubmitted, regional review
    with every opinion (automatic completion) or one missing at the deadline, labelled,
    rejected or still undecided; 1-5 EPCI of one region, 15% inter-regional. Returns the
    number of events written.
    """
    rng = random.Random(n)
    ref = engine.catalog.reference
    home = rng.choice(sorted(pool))
    members = rng.sample(pool[home], min(rng.choice((1, 2, 2, 3, 3, 4, 5)), len(pool[home])))
    if rng.random() < 0.15:
        members.append(rng.choice(pool[rng.choice([r for r in sorted(pool) if r != home])]))
    owner = Actor("candidate", email=f"ti{n}@territoire.example.org")
    data = form(rng, n, members, ref)
    clock.set(between(rng, START, START + timedelta(days=70)))
    case_id = engine.create_case("candidacy", "ti-2023-2027", data, owner).id
    count = 1

    def at(instant: datetime) -> None:
        clock.set(max(instant, clock.now()))

    def fire(trigger: str, actor: Actor, payload: dict[str, Any] | None = None) -> None:
        nonlocal count
        count += len(engine.fire(case_id, trigger, actor, payload).events)

    def edit() -> None:
        nonlocal count, data
        at(between(rng, clock.now(), min(clock.now() + timedelta(days=5), CLOSES)))
        data = {
            **data,
            "action_plan": [
                *data["action_plan"],
                {"title": "Ajout", "priority": "land", "summary": "Action ajoutée."},
            ],
        }
        engine.update_data(case_id, data, owner)
        count += 1

    fate = rng.random()
    if fate < 0.06:  # never submitted: lapsed by the closing timer
        at(AFTER_CLOSE + timedelta(seconds=n % 600))
        fire("lapse", Actor("system"))
        return count
    if rng.random() < 0.25:
        edit()
    at(between(rng, clock.now(), min(clock.now() + timedelta(days=30), CLOSES)))
    fire("submit", owner)
    if fate < 0.12:
        at(between(rng, clock.now(), CLOSES))
        fire("withdraw", owner)
        return count
    if fate < 0.22 and clock.now() < CLOSES - timedelta(days=10):
        at(clock.now() + timedelta(hours=rng.randint(1, 72)))
        fire("return_for_completion", Actor("national_committee"), {"reason": f"pièces {n}"})
        edit()
        at(between(rng, clock.now(), min(clock.now() + timedelta(days=3), CLOSES)))
        fire("submit", owner)
    at(AFTER_CLOSE + timedelta(seconds=600 + n % 3_600))
    fire("start_regional_review", Actor("system"))
    regions = sorted(ref.regions_of(members))
    due = [(region, body) for region in regions for body in REGIONAL]
    rng.shuffle(due)
    if rng.random() < 0.12:
        due.pop()  # one opinion never comes: the deadline timer closes the review
    instants = sorted(between(rng, OPINIONS_FROM, DEADLINE - timedelta(hours=1)) for _ in due)
    for (region, body), instant in zip(due, instants, strict=True):
        at(instant)
        value = "favourable" if rng.random() < 0.8 else "unfavourable"
        reasons = f"avis {value} : {rng.choice(ACTIONS).lower()} (dossier {n})"
        fire("give_opinion", Actor(body, region=region), {"opinion": value, "reasons": reasons})
    if len(due) < 2 * len(regions):
        at(DEADLINE)
        fire("close_regional_review", Actor("system"))
    if fate < 0.25:
        at(between(rng, clock.now(), DECISIONS_FROM))
        fire("withdraw", owner)
    elif fate < 0.9:
        at(between(rng, DECISIONS_FROM, DECISIONS_TO))
        if rng.random() < 0.7:
            fire("label", Actor("national_committee"))
        else:
            fire("reject", Actor("national_committee"), {"reason": f"motif {n}"})
    return count


def groupement_pool(ref: Referential) -> dict[str, list[str]]:
    """SIRENs of the single-region groupements, by region (regions with at least five)."""
    pool: dict[str, list[str]] = {}
    for g in ref.groupements.values():
        if len(g.regions) == 1:
            pool.setdefault(g.regions[0], []).append(g.siren)
    return {r: sorted(s) for r, s in pool.items() if len(s) >= 5}
