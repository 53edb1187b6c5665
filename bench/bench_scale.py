"""Benchmark: a daily digest round for 112,000 SMEs of 700 clusters on PostgreSQL, and
dispatch throughput with 1, 2 and 4 ``callwatch worker`` processes.

Generates, from a fixed seed, in a fresh schema: 700 cluster profiles (two terms of one
sector, three programmes) and one own profile for 5% of the SMEs; 112,000 subscribers
(email for all, Telegram too for a quarter; 96% daily, 2% weekly, 2% instant; the time zone
of their cluster's region) following their cluster's profile, a fifth a second cluster's,
and their own profile where they have one;
then one source run that stores 500 calls (all new: the calls that changed since the last
round), a tenth of them closing within a week.

The round, timed in a fresh child process so its peak memory is its own: load the
profiles from the database, ``notify_changes`` (match every profile against the changed
calls, record matches, write the alerts and a digest entry per profile and event), then
``enqueue_digests``
at 09:30 UTC (past 08:00 in every subscriber's zone): render and enqueue every digest.
Targets (issue 8): under 2 minutes, peak memory under 1 GB.

Throughput: 5,000 of the enqueued digests (email and Telegram as enqueued) are sent by 1,
2 and 4 ``callwatch worker --no-scheduler`` processes to the fake Bot API and the SMTP sink
(both in this process), pacing off; the rate is taken from the rows' ``sent_at``, first to
last, so start-up is not counted.

    .venv/bin/python bench/bench_scale.py --db postgresql://postgres@127.0.0.1:5432/test
        [--subscribers 112000] [--clusters 700] [--calls 500] [--messages 5000] [--workers 1,2,4]

``--round-workers 1,2,4`` (issue 15) runs the notify step once, then the digest half of the
round with each number of workers from the same state: the scheduler's worker calls
``enqueue_digests`` and the others ``help_digest_rounds`` (PostgreSQL shares, each a child
process), timed until the round is done.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from _machine import describe, peak_rss_mib
from _postgres import scratch_schema

from tracker.config import PACKAGED_DEFAULTS
from tracker.delivery.outbox import enqueue_digests, notify_changes
from tracker.models import CallRecord, CallStatus, ScrapeResult
from tracker.rules.profiles import Profile
from tracker.rules.store import RulesStore
from tracker.store import db
from tracker.store.calls import Store
from tracker.store.db import channels_table, deliveries_table, subscribers_table, subscriptions_table

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
CHANNELS = ["email", "telegram"]
TOKEN = "123456:BENCH"  # noqa: S105 - the fake server's fake token
CALLWATCH = shutil.which("callwatch") or str(Path(sys.executable).with_name("callwatch"))
ZONES = ["Europe/Brussels", "Europe/Madrid", "Europe/Lisbon", "Europe/Berlin", "Europe/Warsaw",
         "Europe/Athens", "Europe/Helsinki", "Europe/Dublin", "Europe/Rome", "Europe/Paris"]
SECTORS: dict[str, list[str]] = {
    "energy": ["hydrogen", "electrolysers", "fuel cells", "energy storage", "batteries", "solar",
               "offshore wind", "smart grids", "heat pumps", "biomethane", "geothermal", "ammonia"],
    "digital": ["artificial intelligence", "machine learning", "data spaces", "cloud", "cybersecurity",
                "robotics", "quantum", "semiconductors", "digital twins", "blockchain", "IoT", "5G"],
    "agrifood": ["agri-food", "precision agriculture", "irrigation", "soil health", "food safety",
                 "olive oil", "wine", "aquaculture", "organic farming", "food processing",
                 "livestock", "dairy"],
    "health": ["cancer", "vaccines", "medical devices", "e-health", "rare diseases", "diagnostics",
               "clinical trials", "genomics", "telemedicine", "diabetes", "microbiome", "ageing"],
    "mobility": ["electric vehicles", "charging", "aviation", "rail", "shipping", "urban mobility",
                 "autonomous driving", "logistics", "ports", "drones", "cycling", "maritime"],
    "circular": ["circular economy", "recycling", "raw materials", "textiles", "plastics",
                 "bio-based", "waste", "water reuse", "construction", "packaging", "steel", "cement"],
    "climate": ["climate adaptation", "biodiversity", "nature-based solutions", "wildfires", "flood",
                "carbon capture", "air quality", "oceans", "forests", "drought", "wetlands", "methane"],
    "culture": ["cultural heritage", "creative industries", "media", "music", "tourism", "museums",
                "architecture", "design", "video games", "festivals", "journalism", "audiovisual"],
}
PROGRAMMES = ["Horizon Europe", "Digital Europe", "Single Market Programme", "LIFE", "EU4Health",
              "Interreg", "Erasmus+", "Creative Europe"]


def _phrase(term: str) -> str:
    return f'"{term}"' if " " in term or "-" in term else term


def make_profiles(clusters: int, own: int, rng: random.Random) -> list[Profile]:
    """Cluster profiles: two terms of one sector in three programmes (about 1.5% of the calls
    match each); SME profiles: two terms of any sector, every programme (about 4%)."""
    sectors = list(SECTORS)
    profiles = []
    for n in range(clusters):
        terms = rng.sample(SECTORS[sectors[n % len(sectors)]], 2)
        profiles.append(Profile(name=f"cluster-{n:03d}", programmes=tuple(rng.sample(PROGRAMMES, 3)),
                                query=" OR ".join(_phrase(t) for t in terms)))
    for n in range(own):
        terms = rng.sample(SECTORS[rng.choice(sectors)], 2)
        profiles.append(Profile(name=f"sme-{n:06d}", query=" OR ".join(_phrase(t) for t in terms)))
    return profiles


def make_calls(count: int, rng: random.Random) -> list[CallRecord]:
    """Calls whose titles and keywords use one or two sectors' terms; a tenth close this week."""
    calls = []
    for n in range(count):
        sector = rng.choice(list(SECTORS))
        terms = rng.sample(SECTORS[sector], 2)
        days = rng.uniform(1, 7) if n % 10 == 0 else rng.uniform(20, 200)
        calls.append(CallRecord(
            source="ft_portal", native_id=f"BENCH-{n:04d}", status=CallStatus.OPEN,
            title=f"{terms[0].capitalize()} and {terms[1]} for European {sector} value chains",
            summary=f"Proposals should address {terms[0]} and {terms[1]} in {sector}. " * 3,
            programme=rng.choice(PROGRAMMES), url=f"https://example.invalid/calls/{n}",
            deadlines=(NOW + timedelta(days=days),), budget_eur=rng.randrange(1, 30) * 500_000,
            keywords=tuple(terms), action_type=rng.choice(["RIA", "IA", "CSA"])))
    return calls


Rows = list[dict[str, Any]]


def make_subscribers(subscribers: int, clusters: int, own: int, rng: random.Random,
                     now: datetime, tenants: bool = False) -> Iterator[tuple[Rows, Rows, Rows]]:
    """Subscribers, their channels and subscriptions, in batches of 10,000 subscribers:
    each SME of one cluster (its zone), email for all and Telegram for a quarter, following
    its cluster, a fifth a second cluster too, the first ``own`` their own profile; 96%
    daily, 2% weekly, 2% instant. ``tenants``: each SME names its cluster as its tenant."""
    people: Rows = []
    addresses: Rows = []
    follows: Rows = []
    for n in range(1, subscribers + 1):
        cluster = rng.randrange(clusters)  # a cluster is regional: its members share a zone
        people.append({"id": n, "name": f"sme-{n}", "timezone": ZONES[cluster % len(ZONES)],
                       "language": "en", "tenant": f"cluster-{cluster:03d}" if tenants else None,
                       "reminders": [], "origin": "bot", "created_at": now, "updated_at": now})
        channel_list = [("email", f"sme-{n}@example.invalid")]
        if n % 4 == 0:
            channel_list.append(("telegram", str(1_000_000 + n)))
        addresses += [{"subscriber_id": n, "channel": c, "address": a, "configured_address": a,
                       "webhook_format": "generic", "active": True} for c, a in channel_list]
        roll = rng.random()
        mode = "instant" if roll < 0.02 else "weekly" if roll < 0.04 else "daily"
        followed = {f"cluster-{cluster:03d}"}
        if rng.random() < 0.2:
            followed.add(f"cluster-{rng.randrange(clusters):03d}")
        if n <= own:
            followed.add(f"sme-{n - 1:06d}")
        follows += [{"subscriber_id": n, "profile": p, "mode": mode, "channels": None,
                     "token": f"{n}-{p}"} for p in sorted(followed)]
        if len(people) == 10_000 or n == subscribers:
            yield people, addresses, follows
            people, addresses, follows = [], [], []


def generate(url: str, subscribers: int, clusters: int, calls: int) -> dict[str, int]:
    """Fill the schema; return the counts."""
    rng = random.Random(8)
    engine = db.make_engine(url)
    own = subscribers // 20
    profiles = make_profiles(clusters, own, rng)
    rules = RulesStore(engine)
    for profile in profiles:
        rules.save_profile(profile, NOW)
    counts = {"subscribers": subscribers, "profiles": len(profiles), "subscriptions": 0,
              "channels": 0}
    for people, addresses, follows in make_subscribers(subscribers, clusters, own, rng, NOW):
        with engine.begin() as connection:
            for table, rows in ((subscribers_table, people), (channels_table, addresses),
                                (subscriptions_table, follows)):
                connection.execute(table.insert(), rows)
        counts["subscriptions"] += len(follows)
        counts["channels"] += len(addresses)
    Store(engine).record_run("ft_portal", ScrapeResult(records=make_calls(calls, rng)),
                             started_at=NOW - timedelta(minutes=5), now=NOW - timedelta(minutes=1))
    with engine.begin() as connection:
        connection.execute(sa.text("ANALYZE"))
    engine.dispose()
    return counts


def _load_and_notify(engine: sa.Engine) -> tuple[int, Any, float, float]:
    """The round's first half: load the profiles, notify; their counts and times."""
    started = time.perf_counter()
    profiles = RulesStore(engine).profiles()
    loaded = time.perf_counter()
    report = notify_changes(engine, profiles, NOW, CHANNELS)
    return len(profiles), report, loaded - started, time.perf_counter() - loaded


def digest_round(url: str) -> dict[str, Any]:
    """The timed round (run in a child process): load profiles, notify, enqueue digests."""
    engine = db.make_engine(url)
    profiles, report, load_s, notify_s = _load_and_notify(engine)
    notified = time.perf_counter()
    digests = enqueue_digests(engine, NOW, CHANNELS)
    finished = time.perf_counter()
    with engine.connect() as connection:
        size = connection.execute(sa.text("SELECT pg_total_relation_size('deliveries') + "
                                          "pg_total_relation_size('digest_entries')")).scalar_one()
        alerts = connection.execute(sa.select(sa.func.count()).select_from(deliveries_table)
                                    .where(deliveries_table.c.kind == "alert")).scalar_one()
    return {"profiles": profiles, "load_s": load_s, "notify_s": notify_s,
            "digests_s": finished - notified, "total_s": load_s + notify_s + finished - notified,
            "matches": report.matches, "alerts": alerts, "digest_entries": report.digest_entries,
            "digests": digests, "peak_rss_mib": peak_rss_mib(), "tables_mib": size / 2**20}


#: the tables a digest round changes, kept after the notify step so that the round can be
#: run again from the same start with another number of workers (``--round-workers``)
ROUND_TABLES = ("deliveries", "delivery_bodies", "digest_entries")


def notify_only(url: str) -> dict[str, Any]:
    """The round's first half (run in a child process): load profiles, notify; then keep
    what the digest half changes, to start each worker count from the same state."""
    engine = db.make_engine(url)
    profiles, report, load_s, notify_s = _load_and_notify(engine)
    with engine.begin() as connection:
        for table in ROUND_TABLES:
            connection.execute(sa.text(f"CREATE TABLE kept_{table} AS SELECT * FROM {table}"))  # noqa: S608
        connection.execute(sa.text(
            "CREATE TABLE kept_positions AS SELECT id, digested_through FROM subscriptions"))
    engine.dispose()
    return {"profiles": profiles, "load_s": load_s, "notify_s": notify_s,
            "matches": report.matches, "digest_entries": report.digest_entries}


def restore_after_notify(url: str) -> None:
    """The state ``notify_only`` kept, analyzed, before a digest half."""
    engine = db.make_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("TRUNCATE " + ", ".join(ROUND_TABLES) + ", digest_claims"))
        for table in ROUND_TABLES:
            connection.execute(sa.text(f"INSERT INTO {table} SELECT * FROM kept_{table}"))  # noqa: S608
        connection.execute(sa.text(
            "UPDATE subscriptions s SET digested_through = k.digested_through "
            "FROM kept_positions k WHERE k.id = s.id"))
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


def digests_only(url: str) -> dict[str, Any]:
    """The round's second half as the worker with the scheduler runs it (a child process):
    ``enqueue_digests``, which returns when every share is done, by whichever worker."""
    engine = db.make_engine(url)
    started, cpu = time.perf_counter(), time.process_time()
    digests = enqueue_digests(engine, NOW, CHANNELS)
    finished = time.perf_counter()
    engine.dispose()
    return {"digests_s": finished - started, "cpu_s": time.process_time() - cpu,
            "digests": digests, "peak_rss_mib": peak_rss_mib()}


def helper(url: str) -> dict[str, Any]:
    """Another worker (a child process): waits for the round, then takes shares of it."""
    from tracker.delivery.outbox import help_digest_rounds

    engine = db.make_engine(url)
    cpu, deadline, digests = time.process_time(), time.monotonic() + 120, 0
    while not digests and time.monotonic() < deadline:
        digests = help_digest_rounds(engine)
        time.sleep(0.02)
    engine.dispose()
    return {"digests": digests, "cpu_s": time.process_time() - cpu}


def shared_rounds(url: str, worker_counts: list[int]) -> list[dict[str, Any]]:
    """The digest half with each number of workers, from the same state each time."""
    results = []
    for workers in worker_counts:
        restore_after_notify(url)
        helpers = [subprocess.Popen([sys.executable, __file__, "--helper", url],  # noqa: S603
                                    stdout=subprocess.PIPE, text=True)
                   for _ in range(workers - 1)]
        time.sleep(2)  # the helpers are up and polling, as running workers would be
        leader = subprocess.run([sys.executable, __file__, "--digests", url],  # noqa: S603
                                capture_output=True, text=True, check=True)
        result = json.loads(leader.stdout.strip().splitlines()[-1])
        result["workers"] = workers
        result["helpers"] = [json.loads(h.communicate()[0].strip().splitlines()[-1])
                             for h in helpers]
        results.append(result)
    return results


def _config(directory: Path, telegram_url: str, smtp_port: int) -> Path:
    (directory / "profiles").mkdir(exist_ok=True)
    (directory / "subscribers").mkdir(exist_ok=True)
    sources = tomllib.loads(PACKAGED_DEFAULTS.read_text(encoding="utf-8"))["sources"]
    lines = ['[profiles]', 'directory = "profiles"', '[subscribers]', 'directory = "subscribers"',
             '[log]', 'level = "WARNING"',
             '[notifiers.console]', 'enabled = false', '[notifiers.webhook]', 'enabled = false',
             '[notifiers.telegram]', f'base_url = "{telegram_url}"', 'pacing = "off"',
             '[notifiers.email]', 'host = "127.0.0.1"', f'port = {smtp_port}',
             '[dispatch]', 'interval = "1s"', 'lease = "5m"', 'batch = 200']
    for name in sources:
        lines += [f"[sources.{name}]", "enabled = false"]
    path = directory / "callwatch.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def throughput(url: str, messages: int, worker_counts: list[int]) -> list[dict[str, Any]]:
    """Send the same ``messages`` digests with each number of workers; rates from sent_at."""
    from tracker.demo.fakes.smtp_sink import SmtpSink
    from tracker.demo.fakes.telegram_api import FakeTelegram

    engine = db.make_engine(url)
    with engine.begin() as connection:
        chosen = list(connection.execute(sa.select(deliveries_table.c.id)
                                         .where(deliveries_table.c.kind == "digest")
                                         .order_by(deliveries_table.c.id).limit(messages)).scalars())
        connection.execute(deliveries_table.update().where(deliveries_table.c.id.notin_(chosen),
                                                           deliveries_table.c.status == "pending")
                           .values(status="sent"))
    results = []
    with FakeTelegram(TOKEN) as telegram, SmtpSink(keep=False) as smtp, \
            TemporaryDirectory() as temp:
        config = _config(Path(temp), telegram.base_url, smtp.port)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
        environment.update(CALLWATCH_CONFIG=str(config), CALLWATCH_DATABASE__URL=url,
                           CALLWATCH_TELEGRAM_TOKEN=TOKEN)
        for count in worker_counts:
            with engine.begin() as connection:
                connection.execute(deliveries_table.update().where(deliveries_table.c.id.in_(chosen))
                                   .values(status="pending", sent_at=None, attempts=0,
                                           lease_until=None, worker=None, next_attempt_at=NOW))
                by_channel = dict(connection.execute(
                    sa.select(deliveries_table.c.channel, sa.func.count())
                    .where(deliveries_table.c.id.in_(chosen)).group_by(deliveries_table.c.channel))
                    .all())
            telegram_before, email_before = len(telegram.sent), smtp.count
            workers = [subprocess.Popen(  # noqa: S603 - our own console script
                [CALLWATCH, "worker", "--no-scheduler"], cwd=temp, env=environment)
                for _ in range(count)]
            try:
                while True:
                    with engine.connect() as connection:
                        left = connection.execute(sa.select(sa.func.count()).select_from(
                            deliveries_table).where(deliveries_table.c.id.in_(chosen),
                                                    deliveries_table.c.status != "sent")).scalar_one()
                    if left == 0:
                        break
                    time.sleep(0.5)
            finally:
                for worker in workers:
                    worker.terminate()
                for worker in workers:
                    worker.wait(60)
            with engine.connect() as connection:
                first, last = connection.execute(
                    sa.select(sa.func.min(deliveries_table.c.sent_at),
                              sa.func.max(deliveries_table.c.sent_at))
                    .where(deliveries_table.c.id.in_(chosen))).one()
            span = (last - first).total_seconds()
            results.append({"workers": count, "messages": len(chosen), "by_channel": by_channel,
                            "seconds": span, "rate": (len(chosen) - 1) / span if span else 0.0,
                            "telegram_requests": len(telegram.sent) - telegram_before,
                            "emails": smtp.count - email_before})
    engine.dispose()
    return results


def outbox_fingerprint(url: str) -> tuple[str, int]:
    """SHA-256 over every outbox row the round wrote (key, channel, kind, call, the message
    with its shared body resolved), in key order: a refactor that must not change what is
    sent compares this before and after (``--fingerprint``)."""
    import hashlib

    from tracker.store.db import bodies_table

    engine = db.make_engine(url)
    digest = hashlib.sha256()
    rows = 0
    query = (sa.select(deliveries_table.c.key, deliveries_table.c.channel, deliveries_table.c.kind,
                       deliveries_table.c.call_id, deliveries_table.c.message,
                       bodies_table.c.message.label("body"))
             .select_from(deliveries_table.outerjoin(
                 bodies_table, bodies_table.c.id == deliveries_table.c.body_id))
             .order_by(deliveries_table.c.key))
    with engine.connect() as connection:
        for row in connection.execute(query):
            message = row.body if row.body is not None else row.message
            digest.update(json.dumps([row.key, row.channel, row.kind, row.call_id, message],
                                     sort_keys=True, ensure_ascii=False).encode())
            digest.update(b"\n")
            rows += 1
    engine.dispose()
    return digest.hexdigest(), rows


def explain(url: str) -> None:
    """EXPLAIN ANALYZE of the queries that grow with the data, on the schema as the run left it."""
    from tracker.delivery.dispatch import due_queries
    from tracker.store.db import calls_table, changes_table, digest_entries_table, subscriptions_table

    engine = db.make_engine(url)
    now = datetime.now(UTC)
    with engine.connect() as connection:
        cursor = connection.execute(sa.select(sa.func.max(changes_table.c.id))).scalar_one() or 0
    expired, pending = due_queries(now, 200, tuple(CHANNELS))
    queries = {
        "due deliveries (pending)": pending.with_for_update(skip_locked=True),
        "due deliveries (expired leases)": expired.with_for_update(skip_locked=True),
        "changes since the notify cursor": sa.select(changes_table)
        .where(changes_table.c.id > cursor - 100).order_by(changes_table.c.id),
        "calls by status and deadline": sa.select(calls_table.c.id, calls_table.c.record)
        .where(calls_table.c.status.in_(["open", "forthcoming"]))
        .order_by(calls_table.c.final_deadline.is_(None), calls_table.c.final_deadline,
                  calls_table.c.id),
        "digest entries of a profile after a position": sa.select(digest_entries_table.c.id)
        .where(digest_entries_table.c.profile.in_(["cluster-001", "cluster-002"]),
               digest_entries_table.c.id > 0).order_by(digest_entries_table.c.id),
        "daily and weekly subscriptions of a batch of subscribers": sa.select(
            subscriptions_table.c.id)
        .where(subscriptions_table.c.subscriber_id.between(50_001, 51_000),
               subscriptions_table.c.mode.in_(["daily", "weekly"])),
    }
    with engine.connect() as connection:
        counts = {t: connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()  # noqa: S608
                  for t in ("deliveries", "digest_entries", "call_changes", "calls")}
        print(f"rows: {counts}")
        for title, query in queries.items():
            compiled = query.compile(dialect=engine.dialect,
                                     compile_kwargs={"render_postcompile": True})
            rows = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF) {compiled}",
                                              compiled.params)
            print(f"-- {title}")
            for row in rows:
                print(f"   {row[0]}")
        connection.rollback()
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("CALLWATCH_BENCH_DATABASE_URL",
                                                       "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--subscribers", type=int, default=112_000)
    parser.add_argument("--clusters", type=int, default=700)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--round", metavar="URL", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--notify", metavar="URL", help=argparse.SUPPRESS)  # child processes
    parser.add_argument("--digests", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--helper", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--round-workers", metavar="N,N",
                        help="run the digest half of the round with each number of workers "
                             "(PostgreSQL shares), from the same state, then stop")
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    parser.add_argument("--fingerprint", action="store_true",
                        help="print a SHA-256 of every outbox row the round wrote, then stop")
    parser.add_argument("--explain", action="store_true",
                        help="print the plans of the growing queries after the round")
    args = parser.parse_args()
    for child, run in ((args.round, digest_round), (args.notify, notify_only),
                       (args.digests, digests_only), (args.helper, helper)):
        if child:
            print(json.dumps(run(child)))
            return 0

    with scratch_schema(args.db, "cw_bench", keep=args.keep) as url:
        schema_engine = db.make_engine(url)
        try:
            db.upgrade(schema_engine)
        finally:
            schema_engine.dispose()  # its pooled connection would outlive the bench (unclosed)
        began = time.perf_counter()
        counts = generate(url, args.subscribers, args.clusters, args.calls)
        print(f"machine:            {describe()}")
        print(f"generated:          {counts} in {time.perf_counter() - began:.1f} s")
        if args.round_workers:
            return _round_workers(url, [int(n) for n in args.round_workers.split(",")])
        child = subprocess.run([sys.executable, __file__, "--round", url],  # noqa: S603
                               capture_output=True, text=True, check=True)
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"profiles loaded:    {result['profiles']} in {result['load_s']:.1f} s")
        print(f"notify_changes:     {result['notify_s']:.1f} s: {result['matches']} matches, "
              f"{result['alerts']} alerts, {result['digest_entries']} digest entries")
        print(f"enqueue_digests:    {result['digests_s']:.1f} s: {result['digests']} digests")
        print(f"round total:        {result['total_s']:.1f} s (target < 120 s)")
        print(f"peak RSS (round):   {result['peak_rss_mib']:.0f} MiB (target < 1024 MiB)")
        print(f"outbox + entries:   {result['tables_mib']:.0f} MiB on disk")
        ok = result["total_s"] < 120 and result["peak_rss_mib"] < 1024
        if args.fingerprint:
            sha, rows = outbox_fingerprint(url)
            print(f"outbox fingerprint: {sha} over {rows} rows")
            return 0
        if args.explain:
            explain(url)
        for row in throughput(url, args.messages, [int(n) for n in args.workers.split(",")]):
            print(f"dispatch, {row['workers']} worker(s): {row['messages']} digests "
                  f"{row['by_channel']} in {row['seconds']:.1f} s = {row['rate']:.0f} msg/s "
                  f"({row['telegram_requests']} Telegram requests, {row['emails']} emails)")
        print("result:             " + ("PASS" if ok else "FAIL"))
        return 0 if ok else 1


def _round_workers(url: str, worker_counts: list[int]) -> int:
    notified = subprocess.run([sys.executable, __file__, "--notify", url],  # noqa: S603
                              capture_output=True, text=True, check=True)
    first = json.loads(notified.stdout.strip().splitlines()[-1])
    print(f"profiles loaded:    {first['profiles']} in {first['load_s']:.1f} s")
    print(f"notify_changes:     {first['notify_s']:.1f} s: {first['matches']} matches, "
          f"{first['digest_entries']} digest entries")
    for row in shared_rounds(url, worker_counts):
        print(f"{row['workers']} worker(s):        enqueue_digests {row['digests_s']:.1f} s "
              f"({row['digests']} digests; the scheduler's worker {row['cpu_s']:.1f} s CPU, "
              f"peak {row['peak_rss_mib']:.0f} MiB; the others "
              + (", ".join(f"{h['digests']} digests in {h['cpu_s']:.1f} s CPU"
                           for h in row["helpers"]) or "none")
              + f"); round {first['load_s'] + first['notify_s'] + row['digests_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
