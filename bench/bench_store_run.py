"""Benchmark: the store's half of a first portal scrape, ``Store.record_run`` of 10,000 records.

``bench_ingest.py`` times the whole ``callwatch scrape ft_portal`` process, where the
store is about 40% of the CPU and a change of a few percent in it is lost in the machine's
noise (the floor's own CPU moves by 15% between runs). Here the records are read once (the
same replay and descriptions as ``bench_ingest.py``, in this process) and pickled; then each
round stores them into a fresh SQLite file, once with this checkout and once with
``--against``'s (each in its own process, which imports its checkout), alternating which
goes first, and prints the CPU time of ``record_run`` alone (user + system of the process
between its start and its end, ``time.process_time``).

Run: ``PYTHONPATH=<checkout> python bench/bench_store_run.py [N] --against <other checkout>``
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # after PYTHONPATH: the checkout named there is measured
    sys.path.append(str(ROOT))


def read_records(count: int, out: Path) -> None:
    """Scrape ``count`` generated rows from a local replay in this process; pickle the
    ``ScrapeResult`` and the ``now`` it was read at."""
    from bench import bench_ingest

    pages = bench_ingest.generate(count)
    with bench_ingest.PagesServer(pages) as server, tempfile.TemporaryDirectory() as folder:
        config = bench_ingest.write_config(Path(folder), server.search_url, Path(folder) / "unused.db")
        now = datetime.now(UTC)
        result = bench_ingest.scrape_in_process(config, now)
    out.write_bytes(pickle.dumps((now, result)))


def store_once(records: Path) -> None:
    """Store the pickled run into a fresh SQLite file; print record_run's CPU seconds."""
    from tracker.collection import fewer_collections
    from tracker.store import db
    from tracker.store.calls import Store

    now, result = pickle.loads(records.read_bytes())  # noqa: S301 - our own file, just written
    with tempfile.TemporaryDirectory() as folder:
        engine = db.make_engine(f"sqlite:///{folder}/calls.db")
        db.upgrade(engine)
        store = Store(engine)
        started = time.process_time()
        with fewer_collections():  # as scrape_one stores
            store.record_run("ft_portal", result, started_at=now, now=now)
        print(f"{time.process_time() - started:.3f}")
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("count", type=int, nargs="?", default=10_000)
    parser.add_argument("--against", type=Path, required=False)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)  # one store's process
    args = parser.parse_args()
    if args.store:
        store_once(args.store)
        return
    from bench._machine import describe

    print(f"machine: {describe()}; load {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as folder:
        records = Path(folder) / "run.pickle"
        read_records(args.count, records)
        checkouts = {"this": ROOT, **({"against": args.against.resolve()} if args.against else {})}
        cpu: dict[str, list[float]] = {label: [] for label in checkouts}
        for number in range(args.rounds):
            order = list(checkouts.items())
            for label, checkout in order if number % 2 == 0 else order[::-1]:
                done = subprocess.run(  # noqa: S603 - this interpreter, our own script
                    [sys.executable, __file__, "--store", str(records)],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "PYTHONPATH": str(checkout)},
                )
                cpu[label].append(float(done.stdout.split()[-1]))
            print(
                f"round {number + 1} (load {os.getloadavg()[0]:.1f}): "
                + ", ".join(f"{label} {values[-1]:.2f} s" for label, values in cpu.items())
            )
    print(
        "record_run CPU medians: "
        + ", ".join(
            f"{label} {statistics.median(values):.2f} s ({checkouts[label]})" for label, values in cpu.items()
        )
    )


if __name__ == "__main__":
    main()
