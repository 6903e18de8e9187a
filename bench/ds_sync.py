"""ds_sync: how fast the Démarches Simplifiées sync imports a procedure, and re-reads it.

Serves N complete dossiers (one letter PDF each) from the tests' fake DS on 127.0.0.1,
runs ``ds sync`` into a fresh SQLite database (each dossier: link, create and submit at its
dateDepot, the letter downloaded, checked and stored), then runs it again over everything
(``--since`` the campaign's start: every dossier re-read, none changed). Prints both times
and the first run's rate. Target (issue 17): none given; a procedure of the 2023 campaign
had about 200 candidacies, so a full import should take well under a minute.

    .venv/bin/python bench/ds_sync.py [--dossiers N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import paris
from ds_fake.builder import descriptors
from ds_fake.server import FakeDs
from test_ds_connector import INSTRUCTEUR, PROCEDURE, TOKEN, file_dossier
from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.ds.install import connector_of
from ti_workflow.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=200)
    args = parser.parse_args()
    clock = SimulatedClock(paris("2023-09-25T10:00:00"))
    folder = Path(tempfile.mkdtemp(prefix="ds-bench-"))
    url = f"sqlite:///{folder / 'ti.db'}"
    fake = FakeDs(
        token=TOKEN,
        procedure=PROCEDURE,
        instructeur_id=INSTRUCTEUR,
        descriptors=descriptors(),
        now=clock.now,
    )
    fake.start()
    try:
        initialise(Settings(db_url=url), clock)
        settings = Settings(
            db_url=url,
            ds_url=fake.graphql_url,
            ds_token=TOKEN,
            ds_procedure=PROCEDURE,
            ds_instructeur_id=INSTRUCTEUR,
            files_dir=folder / "files",
        )
        connector = connector_of(open_engine(settings, clock))
        start = paris("2023-07-01T09:00:00")
        for n in range(1, args.dossiers + 1):
            file_dossier(fake, n, start + timedelta(minutes=n))
        began = time.perf_counter()
        first = connector.sync()
        import_s = time.perf_counter() - began
        began = time.perf_counter()
        again = connector.sync(since=paris("2023-06-01T00:00:00"))
        reread_s = time.perf_counter() - began
        assert first.submitted == args.dossiers and again.unchanged == args.dossiers
        print(
            f"import of {args.dossiers} dossiers on {first.pages} page(s): {import_s:.2f} s "
            f"({args.dossiers / import_s:.1f} dossiers/s); re-read, nothing changed: "
            f"{reread_s:.2f} s"
        )
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
