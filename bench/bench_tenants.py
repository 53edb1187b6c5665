"""Benchmark: the admins' list of every tenant (``/admin/tenants``) and the deadlines chart,
at bench_web's scale on PostgreSQL, against a floor.

The data is ``bench_web.generate``'s, from the same seed (50,000 calls and their mirrors,
700 cluster profiles and the SMEs' own, every call matched by the real matcher, 112,000
subscribers of 700 tenants), plus one sent delivery for each subscriber. Then, each
``--runs`` times in turn, in one process:

- ``manage_tenants.tenant_summaries`` (the page's four grouped reads and ``summarize``);
- its **floor**: the cheapest read any such page must make, one pass over the subscribers
  grouped by tenant (``SELECT tenant, count(*) … GROUP BY tenant``);
- ``manage_outbox.deadlines_chart`` for a tenant, beside ``calls_chart`` (the page's chart
  that was there before) for the same tenant.

Reported: median and max in milliseconds, and the ratios to the floor (and to calls_chart).

    .venv/bin/python bench/bench_tenants.py [--db postgresql://postgres@127.0.0.1:5432/test]
        [--calls 50000] [--subscribers 112000] [--clusters 700] [--runs 7] [--url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from _machine import describe
from _postgres import scratch_schema
from bench_web import generate

from tracker.delivery.outbox import SENT
from tracker.store import db
from tracker.web.manage_outbox import calls_chart, deadlines_chart
from tracker.web.manage_tenants import tenant_summaries


def add_deliveries(engine: sa.Engine, now: datetime) -> int:
    """One sent delivery per subscriber (what the last-delivery column reads)."""
    with engine.begin() as connection:
        ids = list(connection.execute(sa.select(db.subscribers_table.c.id)).scalars())
        for chunk in db.chunks(ids):
            connection.execute(db.deliveries_table.insert(), [
                {"key": f"bench-{i}", "subscriber_id": i, "channel": "email", "kind": "alert",
                 "message": {"text": "x"}, "status": SENT, "attempts": 1, "next_attempt_at": now,
                 "last_error": None, "created_at": now, "sent_at": now} for i in chunk])
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
    return len(ids)


def timed(work: Callable[[], object]) -> float:
    began = time.perf_counter()
    work()
    return (time.perf_counter() - began) * 1000


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("CALLWATCH_BENCH_DATABASE_URL",
                                                       "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--subscribers", type=int, default=112_000)
    parser.add_argument("--clusters", type=int, default=700)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    parser.add_argument("--url", help="use this already generated schema URL (with --keep)")
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    with scratch_schema(args.db, "cw_tenants", keep=args.keep) as fresh:
        url = args.url or fresh
        print(f"machine:    {describe()}")
        if not args.url:
            engine = db.make_engine(url)
            db.upgrade(engine)
            began = time.perf_counter()
            counts = generate(url, args.calls, args.subscribers, args.clusters, 0.01, now)
            counts["deliveries"] = add_deliveries(engine, now)
            engine.dispose()
            print(f"generated:  {counts} in {time.perf_counter() - began:.0f} s")
            print(f"schema:     {url}")
        engine = db.make_engine(url)
        tenant = "cluster-372"
        floor = sa.select(db.subscribers_table.c.tenant, sa.func.count()).group_by(
            db.subscribers_table.c.tenant)

        def floor_read() -> object:
            with engine.connect() as connection:
                return connection.execute(floor).all()

        summaries = tenant_summaries(engine, now)
        print(f"tenants:    {len(summaries)}; {tenant}: {[s for s in summaries if s.tenant == tenant]}")
        work: dict[str, Callable[[], object]] = {
            "tenant_summaries": lambda: tenant_summaries(engine, now),
            "floor: subscribers per tenant": floor_read,
            "deadlines_chart (one tenant)": lambda: deadlines_chart(engine, tenant, now),
            "calls_chart (one tenant)": lambda: calls_chart(engine, tenant, now),
        }
        times: dict[str, list[float]] = {name: [] for name in work}
        print(f"load before: {_load()}")
        for _ in range(args.runs):  # in turn, so each sees the same load
            for name, job in work.items():
                times[name].append(timed(job))
        print(f"load after:  {_load()}")
        for name, values in times.items():
            print(f"{name:<32} median {statistics.median(values):8.1f} ms, max {max(values):8.1f} ms")
        median = {name: statistics.median(values) for name, values in times.items()}
        floor_ms = median["floor: subscribers per tenant"]
        print(f"tenant_summaries / floor: {median['tenant_summaries'] / floor_ms:.1f}×")
        print(f"deadlines_chart / calls_chart: "
              f"{median['deadlines_chart (one tenant)'] / median['calls_chart (one tenant)']:.2f}×")
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
