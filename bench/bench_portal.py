"""Benchmark: parse and store 10,000 portal records generated in the real shape.

Target (issue 3): under 10 s and under 300 MB peak memory on the 2-core machine. Printed
beside it, the floors: plain ``json.loads`` of the same bytes, and a bare SQLite insert of
the same rows with no diffing and no ORM. Run: ``python bench/bench_portal.py [N]``.
"""

from __future__ import annotations

import copy
import json
import logging
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import describe, peak_rss_mib
from scrapers.ft_portal import Collector
from tracker.demo.fakes.portal import RECORDED_SEARCHES, load_results
from tracker.models import ScrapeResult
from tracker.store import db
from tracker.store.calls import Store

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PORTAL = "https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities"


def generate(count: int) -> list[bytes]:
    """``count`` results as pages of 100, cloned from real-shaped recordings with new ids."""
    templates = [r for r in load_results(RECORDED_SEARCHES)
                 if isinstance(r.get("metadata"), dict) and r["metadata"].get("type") == ["1"]
                 and r["metadata"].get("DATASOURCE") == ["SEDIA"]
                 and r["metadata"].get("status") and r["metadata"].get("deadlineDate")
                 and "31/02" not in json.dumps(r["metadata"].get("deadlineDate"))]
    pages: list[bytes] = []
    page: list[dict[str, object]] = []
    for index in range(count):
        row = copy.deepcopy(templates[index % len(templates)])
        meta = row["metadata"]
        old = meta["identifier"][0]
        new = f"{old}-B{index:05d}"
        meta["identifier"] = [new]
        meta["budgetOverview"] = [s.replace(f"{old} ", f"{new} ") for s in meta.get("budgetOverview", [])]
        meta["title"] = [f"{meta['title'][0]} (lot {index})"]
        row["reference"] = f"{9000000 + index}TOPICSen"
        page.append(row)
        if len(page) == 100:
            pages.append(json.dumps({"totalResults": count, "pageNumber": len(pages) + 1,
                                     "results": page}).encode())
            page = []
    if page:
        pages.append(json.dumps({"totalResults": count, "results": page}).encode())
    return pages


def main(count: int = 10_000) -> None:
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as directory:
        # pages go to disk first and are read back one by one, as they would arrive
        spool = Path(directory) / "pages.jsonl"
        with spool.open("wb") as handle:
            for page in generate(count):
                handle.write(page + b"\n")
        size = spool.stat().st_size / 2**20
        print(f"machine: {describe()}")
        print(f"input: {count} records in pages of 100, {size:.1f} MiB of JSON")

        started = time.perf_counter()
        with spool.open("rb") as handle:
            for line in handle:
                json.loads(line)
        json_seconds = time.perf_counter() - started

        engine = db.make_engine(f"sqlite:///{directory}/bench.db")
        db.upgrade(engine)
        store = Store(engine)
        rss_before = peak_rss_mib()
        started = time.perf_counter()
        collector = Collector(source="ft_portal", portal_url=PORTAL, now=NOW)
        with spool.open("rb") as handle:
            for line in handle:
                collector.add(json.loads(line)["results"])
        records, invalid = collector.result()
        parse_seconds = time.perf_counter() - started
        report = store.record_run("ft_portal", ScrapeResult(records=records, invalid=invalid),
                                  started_at=NOW, now=NOW)
        total_seconds = time.perf_counter() - started
        assert report.new == count and invalid == 0, (report.new, invalid)
        started = time.perf_counter()
        again = store.record_run("ft_portal", ScrapeResult(records=records), started_at=NOW,
                                 now=NOW)
        unchanged_seconds = time.perf_counter() - started
        assert again.changes == []
        peak = peak_rss_mib()

        bare = sqlite3.connect(f"{directory}/bare.db")
        bare.execute("CREATE TABLE calls (id TEXT PRIMARY KEY, record TEXT)")
        payload = [(r.id, r.model_dump_json()) for r in records]
        started = time.perf_counter()
        with bare:
            bare.executemany("INSERT INTO calls VALUES (?, ?)", payload)
        bare_seconds = time.perf_counter() - started
        bare.close()

        tracemalloc.start()  # a second, traced pass for the Python-level peak
        collector = Collector(source="ft_portal", portal_url=PORTAL, now=NOW)
        with spool.open("rb") as handle:
            for line in handle:
                collector.add(json.loads(line)["results"])
        collector.result()
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    print(f"json.loads of the same bytes (floor):         {json_seconds:6.2f} s")
    print(f"bare sqlite3 insert of the same rows (floor): {bare_seconds:6.2f} s")
    print(f"parse + normalize:                            {parse_seconds:6.2f} s")
    print(f"parse + normalize + store (first run):        {total_seconds:6.2f} s   target < 10 s")
    print(f"store the same run again, nothing changed:    {unchanged_seconds:6.2f} s")
    print(f"peak RSS of the process:                      {peak:6.1f} MiB  target < 300 MB"
          f" (before parsing: {rss_before:.1f} MiB)")
    print(f"peak traced Python memory while parsing:      {traced_peak / 2**20:6.1f} MiB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
