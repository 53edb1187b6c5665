"""Benchmark: the profile editor's live preview over 50,000 calls, pure (no HTTP, no database).

Indexes 50,000 generated calls once (``PreviewCalls.of``, what the web app's cache keeps),
then previews a series of queries as a manager would type them, from a one-word query that
matches thousands of calls to a query with phrases, wildcards and exclusions and filters;
prints the index build time and each preview's time (best of ``--repeat``), and the
machine. The HTTP side, with sign-in and PostgreSQL, is ``bench/bench_web.py``'s.

    .venv/bin/python bench/bench_preview.py
    .venv/bin/python bench/bench_preview.py --calls 5000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import describe, peak_rss_mib
from bench.bench_match import NOW, make_calls
from tracker.rules.preview import PreviewCalls, preview_profile
from tracker.store.calls import StoredCall
from tracker.web.manage_profiles import ProfileForm

QUERIES = [
    ("one broad word", "hydrogen", ""),
    ("typing on", "hydrogen AND", ""),  # not valid yet: the problems, no matching
    ("two words", "hydrogen AND storage", ""),
    ("phrase, wildcard, exclusion", '("fuel cell*" OR electroly*) AND NOT aviation', ""),
    ("with filters", '(hydrogen OR "energy storage") AND NOT nuclear',
     "programmes: [Horizon Europe]\ndeadline:\n  max_days: 120\ncountries: [ES]\n"),
    ("everything open", "", ""),  # no query: every open or forthcoming call
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(17)
    records = make_calls(rng, args.calls)
    stored = [StoredCall(record=r, first_seen=NOW - timedelta(days=rng.randint(0, 400)),
                         last_seen=NOW, last_changed=NOW, still_listed=True) for r in records]
    started = time.perf_counter()
    calls = PreviewCalls.of(stored, NOW)
    built = time.perf_counter() - started
    print(f"{describe()}\nindex of {len(calls):,} calls built in {built:.2f} s")
    for label, query, filters in QUERIES:
        text = ProfileForm(name="bench", query=query, filters=filters).text()
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            preview = preview_profile(text, calls, NOW)
            times.append(time.perf_counter() - started)
        print(f"{label:30} {min(times) * 1000:8.1f} ms best, {max(times) * 1000:8.1f} ms worst: "
              f"{preview.total:,} matches, {preview.recent:,} in 90 days, {len(preview.listed)} listed"
              + (f", {len(preview.problems)} problems" if preview.problems else ""))
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
