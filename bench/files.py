"""files: what a document costs to accept, and what checking documents adds to ``verify``.

- ``put``: the content checks (header, end marker, pypdf parse) + SHA-256 + durable write
  of a one-page PDF of 10 KiB, 1 MiB and 10 MiB (median of 5 runs, fresh store each time).
- ``refusals``: a PNG, and a PDF header followed by 10 MiB of junk (refused by the end
  marker check, without a parse).
- ``verify``: N candidacies on SQLite, each with its own letter (PDF of 20 KiB), then
  ``verify`` with the documents checked and ``verify_range`` without them: the difference
  is what the documents cost (one hash per document, a scan of every payload).

    .venv/bin/python bench/files.py [--cases 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import CANDIDATE, candidacy, paris
from files_support import letter, minimal_pdf, padded_pdf
from ti_workflow.audit.verify import verify, verify_range
from ti_workflow.bootstrap import initialise, open_engine
from ti_workflow.clock import SimulatedClock
from ti_workflow.files import FileRefused, FileStore
from ti_workflow.settings import Settings


def median_ms(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_put(tmp: Path) -> None:
    for label, size in (("10 KiB", 10 * 1024), ("1 MiB", 1 << 20), ("10 MiB", 10 << 20)):
        pdf = padded_pdf(size)

        def put(pdf: bytes = pdf, runs: list[int] = []) -> None:  # noqa: B006 (a counter)
            runs.append(1)
            FileStore(tmp / f"put-{len(runs)}").put(pdf, name="a.pdf")

        print(f"put {label:>7}: {median_ms(put):8.1f} ms")


def bench_refusals() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 1000
    junk = minimal_pdf() + b"\n" * (10 << 20)
    for label, content in (("PNG", png), ("PDF + 10 MiB junk", junk)):

        def refuse(content: bytes = content) -> None:
            try:
                FileStore(Path("/nonexistent")).put(content, name="a.pdf")
            except FileRefused:
                return
            raise AssertionError("accepted")

        print(f"refuse {label}: {median_ms(refuse):.1f} ms")


def bench_verify(tmp: Path, cases: int) -> None:
    db = tmp / "bench.db"
    settings = Settings(db_url=f"sqlite:///{db}", files_dir=tmp / "files")
    clock = SimulatedClock(paris("2023-07-03T10:00:00"))
    initialise(settings, clock)
    engine = open_engine(settings, clock)
    for i in range(cases):
        ref = engine.files.put(minimal_pdf(f"lettre {i}", padding=20_000), name=f"l{i}.pdf")
        data = candidacy(letters_of_intent=[letter(ref.as_ref())])
        case = engine.create_case("candidacy", "ti-2023-2027", data, CANDIDATE)
        engine.update_data(case.id, data, CANDIDATE)

    def run(files: FileStore | None) -> None:
        report = verify_range(engine.db, engine.catalog, None, None, None, False, None, files)
        assert report.ok, report.findings[:3]

    assert verify(engine).ok
    with_files = median_ms(lambda: run(engine.files), runs=3)
    without = median_ms(lambda: run(None), runs=3)
    events = 2 * cases
    print(
        f"verify {events} events / {cases} documents: {with_files:.0f} ms with documents, "
        f"{without:.0f} ms without ({(with_files - without) / cases:.2f} ms per document)"
    )
    engine.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_put(Path(tmp))
        bench_refusals()
        bench_verify(Path(tmp), args.cases)


if __name__ == "__main__":
    main()
