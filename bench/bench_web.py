"""Benchmark: the web app's calls pages at 50,000 calls and 112,000 subscribers on
PostgreSQL, under 20 concurrent users, against a floor.

Generates, from a fixed seed, in a fresh schema: 50,000 calls in the shape of
``bench_scale`` (sector terms in titles, summaries and keywords; eight programmes; budgets;
RIA/IA/CSA) with a life cycle (80% closed, 12% open, a third of those with two cut-offs,
8% forthcoming), eligible countries for 40%, and 3% mirrored by a second source under the
same topic id (so pages fold duplicates); stored through ``Store.record_run``, the one
writer, so the listing columns are the real ones. Then 700 cluster profiles and an own
profile for 1% of the SMEs (``bench_scale.make_profiles``; every status, so a call
closed today was matched while open), matched against every call by the real matcher
(``match_calls``) and recorded as ``matches``; and 112,000 subscribers of 700 tenants
(``bench_scale.make_subscribers``: each SME in its cluster's tenant, following its
cluster, a fifth a second cluster, its own profile where it has one).

Then ``callwatch web`` runs as its own process (the path a user runs) on 127.0.0.1, and a
small asyncio + httpx driver keeps 20 users busy (each sends its next request when the last
answered, no think time) for ``--seconds``, after a warm-up: tenants' calls pages with
varied filters (status, programme, deadline window, budget, source, country, words) and
pages. The same URLs, in the same order, then go to the **floor**: a bare Starlette app
under uvicorn, in its own process, that runs the same SQL for the page (the tenant's
profiles, then the filtered, ordered, cut page) and returns the titles as plain HTML, with
no duplicate folding, no record parsing, no templates and no middleware. A third, shorter
run asks the web app for calls' own pages, and a fourth has 20 signed-in managers (made in
the schema) POST profile previews as they type (htmx fragments), after waiting for the
preview's index that `callwatch web` builds at start (its time reported apart). Reported:
p50/p95/p99, throughput, errors, and the ratio to the floor. Target (issue 17): p95 ≤ 200 ms
for the calls page.

The driver shares the machine's cores with the server and PostgreSQL, so every number
includes the cost of asking.

    .venv/bin/python bench/bench_web.py [--db postgresql://postgres@127.0.0.1:5432/test]
        [--calls 50000] [--subscribers 112000] [--clusters 700] [--users 20] [--seconds 30]
        [--think SECONDS] [--keep | --url URL]

``--think``: the previews once more, with each manager pausing between previews (as one
types; htmx sends after a pause), reported apart from the no-think run. Every run makes
its own schema (``cw_web_<random>``), so runs side by side do not share one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from _machine import describe
from _postgres import scratch_schema
from bench_scale import PROGRAMMES, SECTORS, make_profiles, make_subscribers

from tracker.models import CallRecord, CallStatus, ScrapeResult
from tracker.rules.matcher import CallIndex
from tracker.rules.profiles import Profile
from tracker.rules.store import RulesStore
from tracker.store import db
from tracker.store.calls import Store

CALLWATCH = shutil.which("callwatch") or str(Path(sys.executable).with_name("callwatch"))
COUNTRIES = ["DE", "FR", "IT", "ES", "PT", "EL", "PL", "NL", "BE", "AT", "SE", "FI", "IE", "CZ"]
#: the calls page's filters the users pick from (empty: the default page)
FILTERS: list[dict[str, str]] = [
    {}, {}, {}, {"status": "open"}, {"status": "forthcoming"}, {"status": "closed"},
    {"status": "all"}, {"within": "30"}, {"within": "90"}, {"budget": "1000000"},
    {"budget": "5000000", "status": "all"}, {"country": "PT"}, {"country": "DE", "within": "365"},
    {"source": "eccp", "status": "all"}, {"q": "hydrogen"}, {"q": "soil health", "status": "all"},
]


# -- the data ------------------------------------------------------------------------------

def make_calls(count: int, now: datetime, rng: random.Random) -> dict[str, list[CallRecord]]:
    """``count`` portal calls in bench_scale's shape with a life cycle, and mirrors of 3%
    at a second source (same topic id, their own url)."""
    portal: list[CallRecord] = []
    mirrors: list[CallRecord] = []
    for n in range(count):
        sector = rng.choice(list(SECTORS))
        terms = rng.sample(SECTORS[sector], 2)
        phase = rng.random()
        if phase < 0.80:  # closed: its last cut-off passed, up to three years ago
            opening = now - timedelta(days=rng.uniform(60, 1200))
            cutoffs = [opening + timedelta(days=rng.uniform(30, 120))]
            cutoffs = [min(cutoffs[0], now - timedelta(days=rng.uniform(1, 30)))]
        elif phase < 0.92:  # open; a third with a first cut-off, passed or ahead, and a second
            opening = now - timedelta(days=rng.uniform(1, 120))
            cutoffs = [now + timedelta(days=rng.uniform(1, 200))]
            if rng.random() < 1 / 3:
                cutoffs.insert(0, cutoffs[0] - timedelta(days=rng.uniform(20, 150)))
        else:  # forthcoming
            opening = now + timedelta(days=rng.uniform(5, 90))
            cutoffs = [opening + timedelta(days=rng.uniform(60, 150))]
        status = (CallStatus.CLOSED if cutoffs[-1] < now else CallStatus.FORTHCOMING
                  if opening > now else CallStatus.OPEN)
        topic = f"HORIZON-BENCH-{n:05d}"
        record = CallRecord(
            source="ft_portal", native_id=topic, status=status,
            title=f"{terms[0].capitalize()} and {terms[1]} for European {sector} value chains",
            summary=f"Proposals should address {terms[0]} and {terms[1]} in {sector}. " * 3,
            programme=rng.choice(PROGRAMMES), url=f"https://example.invalid/calls/{n}",
            call_identifier="HORIZON-BENCH-CALL", topic_identifier=topic, opening_date=opening,
            deadlines=tuple(cutoffs), budget_eur=rng.randrange(1, 30) * 500_000,
            keywords=tuple(terms), action_type=rng.choice(["RIA", "IA", "CSA"]),
            countries=tuple(rng.sample(COUNTRIES, 3)) if rng.random() < 0.4 else ())
        portal.append(record)
        if rng.random() < 0.03:
            mirrors.append(record.model_copy(update={
                "source": "eccp", "native_id": f"eccp-{n}",
                "url": f"https://eccp.example.invalid/opportunities/{n}"}))
    return {"ft_portal": portal, "eccp": mirrors}


def record_matches(engine: sa.Engine, calls: Sequence[CallRecord], profiles: Sequence[Profile],
                   now: datetime) -> int:
    """Match every profile against every call (the real matcher) and COPY the matches in."""
    index = CallIndex(calls, now)
    written = 0
    with engine.begin() as connection:
        raw: Any = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(
                "COPY matches (profile, call_id, score, reasons, first_matched, last_matched) "
                "FROM STDIN") as copy:
            for profile in profiles:
                for match in index.match(profile, ()):
                    copy.write_row((match.profile, match.call_id, match.score,
                                    json.dumps(list(match.reasons)), now, now))
                    written += 1
    return written


def generate(url: str, calls: int, subscribers: int, clusters: int, own_share: float,
             now: datetime) -> dict[str, int]:
    """Fill the schema; return the counts."""
    rng = random.Random(17)
    engine = db.make_engine(url)
    store = Store(engine)
    by_source = make_calls(calls, now, rng)
    for source, records in by_source.items():
        store.record_run(source, ScrapeResult(records=records), started_at=now - timedelta(hours=1),
                         now=now - timedelta(hours=1))
    own = int(subscribers * own_share)
    every_status = (CallStatus.OPEN, CallStatus.FORTHCOMING, CallStatus.CLOSED)
    profiles = [p.model_copy(update={"status": every_status})
                for p in make_profiles(clusters, own, rng)]
    rules = RulesStore(engine)
    for profile in profiles:
        rules.save_profile(profile, now)
    counts = {"calls": sum(map(len, by_source.values())), "mirrors": len(by_source["eccp"]),
              "profiles": len(profiles), "subscribers": 0, "subscriptions": 0}
    counts["matches"] = record_matches(engine, by_source["ft_portal"] + by_source["eccp"],
                                       profiles, now)
    for people, addresses, follows in make_subscribers(subscribers, clusters, own, rng, now,
                                                       tenants=True):
        with engine.begin() as connection:
            for table, rows in ((db.subscribers_table, people), (db.channels_table, addresses),
                                (db.subscriptions_table, follows)):
                connection.execute(table.insert(), rows)
        counts["subscribers"] += len(people)
        counts["subscriptions"] += len(follows)
    with engine.connect() as connection:  # a store in use is vacuumed by autovacuum
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            sa.text("VACUUM ANALYZE"))
    engine.dispose()
    return counts


def urls(clusters: int, count: int, seed: int) -> list[str]:
    """``count`` calls-page paths: random tenants, filters and pages (1–4; some past the end)."""
    rng = random.Random(seed)
    paths = []
    for _ in range(count):
        query = dict(rng.choice(FILTERS))
        page = rng.choice((1, 1, 1, 2, 3, 4))
        if page > 1:
            query["page"] = str(page)
        tenant = f"cluster-{rng.randrange(clusters):03d}"
        paths.append(f"/t/{tenant}/calls" + (f"?{urlencode(query)}" if query else ""))
    return paths


def call_urls(url: str, count: int, seed: int) -> list[str]:
    """``count`` call-page paths: a tenant's matched call each."""
    engine = db.make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT s.tenant, m.call_id FROM matches m JOIN subscriptions p ON p.profile = m.profile "
            "JOIN subscribers s ON s.id = p.subscriber_id ORDER BY random() LIMIT :n"),
            {"n": count}).all()
    engine.dispose()
    rng = random.Random(seed)
    rng.shuffle(rows := list(rows))
    return [f"/t/{tenant}/calls/{call_id}" for tenant, call_id in rows]


PASSWORD = "bench-password-1234"  # noqa: S105  # the bench schema's managers


Manager = tuple[str, str, list[dict[str, str]]]  # tenant, email, the preview forms


def preview_managers(url: str, clusters: int, count: int, seed: int) -> list[Manager]:
    """``count`` managers of random tenants (made here if missing), each with the preview
    forms a manager types while editing the tenant's cluster profile: its first term, the
    query half typed (a problem), the whole query, with its programmes, narrowed with
    ``AND NOT`` and a deadline, and every open call of its programmes (no query)."""
    import yaml

    from tracker.rules.sources import stored_profiles
    from tracker.web import accounts

    engine = db.make_engine(url)
    rng = random.Random(seed)
    managers = []
    for tenant in rng.sample([f"cluster-{n:03d}" for n in range(clusters)], count):
        email = f"manager@{tenant}.example.org"
        try:
            accounts.get_user(engine, email)
        except Exception:
            accounts.add_user(engine, email, PASSWORD, tenant=tenant, role="manager",
                              now=datetime.now(UTC))
        definition = stored_profiles(engine, [tenant])[0].definition
        query, programmes = definition["query"], list(definition.get("programmes") or ())
        first = query.split(" OR ")[0]
        own = yaml.safe_dump({"programmes": programmes}) if programmes else ""
        forms = [{"query": first}, {"query": first + " OR"}, {"query": query},
                 {"query": query, "filters": own, "original": tenant},
                 {"query": f"({query}) AND NOT aviation",
                  "filters": own + "deadline:\n  max_days: 90\n", "original": tenant},
                 {"query": "", "filters": own}]
        managers.append((tenant, email, [{"name": f"{tenant}-draft", **f} for f in forms]))
    engine.dispose()
    return managers


async def sign_in(client: Any, email: str) -> dict[str, str]:
    """The session and CSRF cookies of ``email``, and the form token (``csrf_token``). The
    cookies are Secure, which httpx's jar keeps off plain http, so they go in a header."""
    import re

    def cookies(response: Any) -> dict[str, str]:
        return dict(h.split(";", 1)[0].split("=", 1) for h in response.headers.get_list("set-cookie"))

    form = await client.get("/signin")
    jar = cookies(form)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]  # type: ignore[index]
    answer = await client.post("/signin", data={"csrf_token": token, "email": email,
                                                "password": PASSWORD, "next": "/account"},
                               headers={"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())})
    if answer.status_code != 303:
        raise SystemExit(f"signing in as {email}: {answer.status_code}")
    jar.update(cookies(answer))
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()), "HX-Request": "true",
            "csrf_token": token}


async def drive_previews(base: str, managers: Sequence[Manager], seconds: float, warmup: float,
                         think: float = 0.0) -> tuple[float, dict[str, Any]]:
    """One user per manager, each previewing its forms round and round; returns the first
    preview's wait (the index, if not built yet) and the timed load like :func:`drive`.

    ``think``: each user pauses between its answer and its next preview, for a time drawn
    uniformly between half and one and a half times ``think`` seconds (a manager typing,
    htmx's ``delay``), seeded per user; 0 (the default): no pause, the worst case."""
    import httpx

    latencies: list[float] = []
    errors: dict[int, int] = {}
    limits = httpx.Limits(max_connections=len(managers) * 2)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=600) as client:
        sessions = [await sign_in(client, email) for _tenant, email, _forms in managers]

        async def post(n: int, form: dict[str, str]) -> Any:
            headers = dict(sessions[n])
            token = headers.pop("csrf_token")
            return await client.post(f"/t/{managers[n][0]}/profiles/preview",
                                     data={"csrf_token": token, **form}, headers=headers)

        began = time.perf_counter()
        first = await post(0, managers[0][2][2])
        if first.status_code != 200 or 'class="total"' not in first.text:
            raise SystemExit(f"the preview answered {first.status_code}: {first.text[:300]}")
        first_wait = time.perf_counter() - began
        started = time.perf_counter()
        counting_from, until = started + warmup, started + warmup + seconds

        async def user(n: int) -> None:
            turn = 0
            pauses = random.Random(n)
            while (begun := time.perf_counter()) < until:
                forms = managers[n][2]
                response = await post(n, forms[turn % len(forms)])
                turn += 1
                if begun >= counting_from:
                    latencies.append(time.perf_counter() - begun)
                    if response.status_code != 200:
                        errors[response.status_code] = errors.get(response.status_code, 0) + 1
                if think:
                    await asyncio.sleep(pauses.uniform(think / 2, think * 3 / 2))

        await asyncio.gather(*(user(n) for n in range(len(managers))))
    return first_wait, _summary(latencies, errors, seconds)


# -- the floor -----------------------------------------------------------------------------

def page_query(profiles: Sequence[str], filters: Any, now: datetime) -> Any:
    """The calls page's main statement as the web app builds it (duplicates aside): the
    tenant's filtered calls, counted, ordered, the first 25."""
    from tracker.store.db import call_listing_table
    from tracker.store.listing import listing_order, next_deadline_sql
    from tracker.web.browse import _tenant_call_ids

    c = call_listing_table.c
    return (sa.select(c.call_id, sa.func.count().over().label("total"))
            .where(c.call_id.in_(_tenant_call_ids(profiles)), *filters.conditions(now))
            .order_by(*listing_order(next_deadline_sql(now))).limit(25))


def floor_app(url: str) -> Any:
    """The least a calls page can do: the tenant's profiles, then the same filtered, ordered
    and cut page query as the web app, titles as plain HTML. No duplicates folded, no
    records parsed, no templates, no middleware."""
    from html import escape

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    from tracker.store.db import calls_table
    from tracker.web.browse import CallFilters, tenant_profiles

    engine = db.make_engine(url)

    def page(request: Request) -> Response:
        filters = CallFilters.parse(request.query_params)
        with engine.connect() as connection:
            profiles = tenant_profiles(connection, request.path_params["tenant"])
            if profiles is None:
                return HTMLResponse("<p>not found</p>", status_code=404)
            rows = connection.execute(page_query(profiles, filters, datetime.now(UTC))
                                      .offset((filters.page - 1) * 25)).all()
            titles = dict(connection.execute(
                sa.select(calls_table.c.id, calls_table.c.title)
                .where(calls_table.c.id.in_([row.call_id for row in rows]))).all())
        items = "".join(f"<li>{escape(titles[row.call_id])}</li>" for row in rows)
        return HTMLResponse(f"<!doctype html><p>{rows[0].total if rows else 0} calls</p>"
                            f"<ol>{items}</ol>")

    return Starlette(routes=[Route("/t/{tenant}/calls", page)])


def serve_floor(url: str, port: int) -> None:
    import uvicorn

    uvicorn.run(floor_app(url), host="127.0.0.1", port=port, log_level="warning",
                access_log=False, lifespan="off")


# -- the load ------------------------------------------------------------------------------

async def drive(base: str, paths: Sequence[str], users: int, seconds: float,
                warmup: float) -> dict[str, Any]:
    """``users`` users, each sending the next path (shared, in order, round and round) when
    its last answer came; latencies counted after ``warmup`` seconds, for ``seconds``."""
    import httpx

    latencies: list[float] = []
    errors: dict[int, int] = {}
    position = 0
    started = time.perf_counter()
    counting_from = started + warmup
    until = counting_from + seconds
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def user() -> None:
            nonlocal position
            while (begun := time.perf_counter()) < until:
                path = paths[position % len(paths)]
                position += 1
                response = await client.get(path)
                took = time.perf_counter() - begun
                if begun >= counting_from:
                    latencies.append(took)
                    if response.status_code != 200:
                        errors[response.status_code] = errors.get(response.status_code, 0) + 1

        await asyncio.gather(*(user() for _ in range(users)))
    return _summary(latencies, errors, seconds)


def _summary(latencies: list[float], errors: dict[int, int], seconds: float) -> dict[str, Any]:
    if not latencies:
        return {}
    latencies.sort()

    def pct(share: float) -> float:
        return latencies[min(len(latencies) - 1, int(share * len(latencies)))] * 1000

    return {"requests": len(latencies), "rate": len(latencies) / seconds, "errors": errors,
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "mean_ms": statistics.fmean(latencies) * 1000}


def _wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            httpx.get(base + "/", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{base} did not answer within 60 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _report(name: str, result: dict[str, Any]) -> None:
    print(f"{name:<24} {result['requests']:>6} requests, {result['rate']:6.1f}/s, "
          f"p50 {result['p50_ms']:6.1f} ms, p95 {result['p95_ms']:6.1f} ms, "
          f"p99 {result['p99_ms']:6.1f} ms, errors {result['errors'] or 0}")


def _load() -> str:
    return Path("/proc/loadavg").read_text(encoding="utf-8").split(" ", 3)[:3].__str__()


def explain(url: str, path: str) -> None:
    """EXPLAIN ANALYZE of one calls page's page query, as the web app sends it."""
    from urllib.parse import parse_qsl, urlsplit

    from tracker.web.browse import CallFilters, tenant_profiles

    engine = db.make_engine(url)
    parts = urlsplit(path)
    filters = CallFilters.parse(dict(parse_qsl(parts.query)))
    with engine.connect() as connection:
        profiles = tenant_profiles(connection, parts.path.split("/")[2]) or []
        query = page_query(profiles, filters, datetime.now(UTC))
        compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
        print(f"-- {path} ({len(profiles)} profiles)")
        for row in connection.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF) {compiled}",
                                              compiled.params):
            print(f"   {row[0]}")
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("CALLWATCH_BENCH_DATABASE_URL",
                                                       "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--subscribers", type=int, default=112_000)
    parser.add_argument("--clusters", type=int, default=700)
    parser.add_argument("--own-share", type=float, default=0.01,
                        help="share of SMEs with an own profile (default 1%%)")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--explain", action="store_true", help="print a few page plans")
    parser.add_argument("--think", type=float, default=0.0, metavar="SECONDS",
                        help="also run the previews with managers pausing about this long "
                             "between previews (0.5–1.5×, seeded), reported apart")
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    parser.add_argument("--url", help="use this already generated schema URL (with --keep)")
    parser.add_argument("--floor", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        serve_floor(args.floor[0], int(args.floor[1]))
        return 0

    with scratch_schema(args.db, "cw_web", keep=args.keep) as fresh:
        url = args.url or fresh
        print(f"machine:    {describe()}")
        if not args.url:
            schema_engine = db.make_engine(url)
            try:
                db.upgrade(schema_engine)
            finally:
                schema_engine.dispose()
            began = time.perf_counter()
            now = datetime.now(UTC).replace(microsecond=0)
            counts = generate(url, args.calls, args.subscribers, args.clusters, args.own_share, now)
            print(f"generated:  {counts} in {time.perf_counter() - began:.0f} s")
            print(f"schema:     {url}")
        pages = urls(args.clusters, 5_000, seed=20261203)
        if args.explain:
            for path in pages[:6]:
                explain(url, path)
        results: dict[str, dict[str, Any]] = {}
        with TemporaryDirectory() as temp:
            config = Path(temp) / "callwatch.toml"
            config.write_text('[log]\nlevel = "WARNING"\n', encoding="utf-8")
            environment = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
            web_port, floor_port = _free_port(), _free_port()
            environment.update(CALLWATCH_DATABASE__URL=url,
                               CALLWATCH_WEB__LISTEN=f"127.0.0.1:{web_port}",
                               CALLWATCH_WEB_SECRET="bench-" + "s" * 40)
            managers = preview_managers(url, args.clusters, args.users, seed=17)
            launched = time.perf_counter()
            web = subprocess.Popen([CALLWATCH, "--config", str(config), "web"],  # noqa: S603
                                   env=environment, cwd=temp)
            try:
                base = f"http://127.0.0.1:{web_port}"
                _wait_until_up(base, web)
                up = time.perf_counter() - launched
                # `callwatch web` starts indexing the calls for the preview at start: wait
                # for it (the first preview) before timing anything, and report it apart
                wait, _ = asyncio.run(drive_previews(base, managers[:1], 0, 0))
                print(f"preview index: ready {up + wait:.1f} s after `callwatch web` started "
                      f"(answering pages after {up:.1f} s; the first preview waited {wait:.1f} s)")
                print(f"load before: {_load()}")
                results["web: calls pages"] = asyncio.run(
                    drive(base, pages, args.users, args.seconds, args.warmup))
                print(f"load after:  {_load()}")
                calls = call_urls(url, 2_000, seed=3)
                results["web: a call's page"] = asyncio.run(
                    drive(base, calls, args.users, args.seconds / 2, args.warmup))
                _, results["web: profile preview"] = asyncio.run(
                    drive_previews(base, managers, args.seconds / 2, args.warmup))
                print(f"load after:  {_load()}")
                if args.think:
                    _, results[f"web: preview, {args.think:g} s think"] = asyncio.run(
                        drive_previews(base, managers, args.seconds, args.warmup, args.think))
                    print(f"load after:  {_load()}")
            finally:
                _stop(web)
            floor = subprocess.Popen([sys.executable, __file__, "--floor", url,  # noqa: S603
                                      str(floor_port)], env=environment, cwd=temp)
            try:
                base = f"http://127.0.0.1:{floor_port}"
                _wait_until_up(base, floor)
                results["floor: calls pages"] = asyncio.run(
                    drive(base, pages, args.users, args.seconds, args.warmup))
                print(f"load after:  {_load()}")
            finally:
                _stop(floor)
        print(f"{args.users} users, no think time (unless named), {args.seconds:.0f} s each after "
              f"{args.warmup:.0f} s of warm-up:")
        for name, result in results.items():
            _report(name, result)
        web_p95 = results["web: calls pages"]["p95_ms"]
        floor_p95 = results["floor: calls pages"]["p95_ms"]
        print(f"ratio web/floor: p95 {web_p95 / floor_p95:.2f}×, throughput "
              f"{results['floor: calls pages']['rate'] / results['web: calls pages']['rate']:.2f}× "
              "fewer pages a second")
        ok = web_p95 <= 200
        print("result:     " + ("PASS" if ok else "FAIL") + " (target: calls page p95 ≤ 200 ms)")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
