"""``make console``: the console on the demo database, demo accounts, a local SMTP sink.

    python -m ti_workflow.console.dev [--db sqlite:///demo.db] [--port 8000]
                                      [--smtp-port 1025] [--at 2023-09-20T10:00]

Adds one account per role of the demo (the candidates who own its cases, both regional
bodies of each region concerned, the committee, an auditor) when missing, starts an
aiosmtpd sink on 127.0.0.1 that prints every message it gets (login links in full), and
serves ``/v1`` and the console with uvicorn. The engine runs on a simulated clock fixed
at ``--at`` (Europe/Paris; ``now`` for the real clock) so that the 2023 filing window can
be open; sign-in links and sessions always use the real clock. For development only.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime

from ti_workflow.bootstrap import open_engine
from ti_workflow.clock import Clock, SimulatedClock, SystemClock, parse_instant
from ti_workflow.domain.actors import AUDITOR, Actor
from ti_workflow.errors import InvalidData
from ti_workflow.http import accounts
from ti_workflow.http.app import create_app
from ti_workflow.mail.sink import Received, RecordingHandler, start_sink
from ti_workflow.settings import Settings

LINK = re.compile(r"https?://\S+/connexion/lien\?jeton=\S+")


def demo_accounts(engine: object) -> list[tuple[str, str, str | None, str]]:
    """``(name, role, region, e-mail)`` for every role the demo cases involve."""
    cases, _ = engine.list_cases(Actor(AUDITOR), limit=10_000)  # type: ignore[attr-defined]
    owners = sorted({c.owner_email for c in cases if c.owner_email})
    regions = sorted({r for c in cases for r in c.regions})
    found: list[tuple[str, str, str | None, str]] = [
        (f"candidat-{i + 1}", "candidate", None, email) for i, email in enumerate(owners)
    ]
    for region in regions:
        found.append((f"cr-{region}", "regional_council", region, f"cr-{region}@demo.example.fr"))
        found.append(
            (f"sgar-{region}", "state_services", region, f"sgar-{region}@demo.example.gouv.fr")
        )
    found.append(("comite", "national_committee", None, "comite@demo.example.gouv.fr"))
    found.append(("auditeur", "auditor", None, "auditeur@demo.example.gouv.fr"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description="The console on the demo database.")
    parser.add_argument("--db", default="sqlite:///demo.db")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--at", default="2023-09-20T10:00", help="engine time, or 'now'")
    args = parser.parse_args()
    import uvicorn

    clock: Clock = SystemClock() if args.at == "now" else SimulatedClock(parse_instant(args.at))
    settings = Settings.from_env(db_url=args.db, smtp_host="127.0.0.1", smtp_port=args.smtp_port)
    engine = open_engine(settings, clock)
    known = {u.name for u in accounts.list_users(engine.db)}
    print("Demo accounts (sign in at /connexion with the e-mail):")
    for name, role, region, email in demo_accounts(engine):
        if name not in known:
            try:
                accounts.add_user(engine.db, name, role, datetime.now(UTC), region, email)
            except InvalidData as exc:  # e.g. a name taken by an operator's own account
                print(f"  (not added: {exc})")
                continue
        print(f"  {role:<20} {region or '':<4} {email}")

    def show(got: Received) -> None:
        links = LINK.findall(got.part("plain"))
        print(f"[mail] to {', '.join(got.rcpt_tos)}: {got.subject}", flush=True)
        for link in links:
            print(f"       {link}", flush=True)

    sink = start_sink("127.0.0.1", args.smtp_port, RecordingHandler(on_message=show))
    print(f"SMTP sink on 127.0.0.1:{args.smtp_port}; console on http://{args.host}:{args.port}/")
    try:
        uvicorn.run(
            create_app(engine, settings=settings),
            host=args.host,
            port=args.port,
            log_level="warning",
        )
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
