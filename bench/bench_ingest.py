"""Benchmark: ``callwatch scrape ft_portal`` end to end, beside a minimal floor, in one run.

What a user runs (issue 15): the installed ``callwatch`` console script as a process, with
``http.delay = 0``, against a replay of the portal's search API on 127.0.0.1 that serves
N records in the real shape (default 10,000) with multi-kilobyte (about three pages) HTML
descriptions, paged as the portal pages them (POST, ``pageNumber``/``pageSize`` in the URL,
``totalResults`` and the echoed ``pageNumber`` in every answer, 100 a page).

Beside it, in the same run and against the same server, the floor: a minimal scraper that
POSTs each page with httpx, ``json.loads`` it and stores id, title and the raw JSON with one
bare sqlite3 ``executemany``. Printed: both times and their ratio, the peak RSS of the
callwatch process, a second scrape of the unchanged data and its ratio to the floor, and
the top five of a cProfile of the same scrape run in-process (source and store in the main
thread, so the profile sees both).

The portal's search API is a POST (GET gives HTTP 405, /work/shared/sources/ft_portal.md
§1.1) and the notes record no ``ETag`` or ``Last-Modified`` on it, so its second scrape is a
full one: nothing can be asked conditionally (tracker/conditional.py). The second scrape of
unchanged data through a 304 is measured on a GET source instead (``--only feed``): one RSS
feed of N items with the same real descriptions, served with an ``ETag`` and a 304 when
asked with it; ``callwatch scrape`` first, then again (one 304), then again with
``http.conditional_requests = false`` (what every second scrape cost before), beside a floor
that GETs the feed with httpx, parses it with feedparser and stores id, title and summary
with one executemany.

Targets (issue 15): within 2.5× the floor, the second scrape within 1.5×, peak RSS ≤ 250 MB.
Run: ``PYTHONPATH=<checkout> python bench/bench_ingest.py [N] [--only portal|feed]``; the
checkout on PYTHONPATH is the code measured (the console script imports ``tracker`` from it).
``--against <other checkout> [--rounds N]``: first scrapes only, of this checkout and the
other alternating on one replay server, each round with a floor, and their medians.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import io
import json
import os
import pstats
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from html import escape as escape_html
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # after PYTHONPATH: the checkout named there is measured
    sys.path.append(str(ROOT))

import httpx  # noqa: E402

from bench import bench_portal  # noqa: E402
from bench._machine import describe  # noqa: E402
from tracker.demo.fakes._server import FakeServer, Reply, Request  # noqa: E402
from tracker.demo.fakes.portal import SEARCH_PATH, PortalReplayServer  # noqa: E402

PAGE_SIZE = 100
#: about three printed pages of text per description
DESCRIPTION_CHARS = 7_500
FIXTURES = (ROOT / "tests" / "fixtures" / "ft_portal", ROOT / "tracker" / "demo" / "fakes" / "recordings"
            / "ft_portal")


def real_descriptions() -> list[str]:
    """Every distinct whole HTML description (``descriptionByte``) in the portal fixtures.

    Left out: the excerpts their recorders cut at 900 characters, mid-sentence and with
    tags left open (the portal serves whole descriptions; stitched between others, a cut
    one would leave a tag open across the rest).
    """
    found: dict[str, None] = {}
    for folder in FIXTURES:
        for path in sorted(folder.glob("search*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            results = data.get("results", []) if isinstance(data, dict) else data
            for result in results if isinstance(results, list) else []:
                meta = result.get("metadata") if isinstance(result, dict) else None
                for html in (meta or {}).get("descriptionByte") or []:
                    if isinstance(html, str) and "<" in html and html.rstrip().endswith(">"):
                        found[html] = None
    return list(found)


def generate(count: int) -> list[bytes]:
    """``count`` results as the portal's pages of 100: bench_portal's real-shaped rows with new
    ids, each given a description of about three pages stitched from the real descriptions."""
    pieces = real_descriptions()
    pages: list[bytes] = []
    index = 0
    for number, encoded in enumerate(bench_portal.generate(count), start=1):
        rows = json.loads(encoded)["results"]
        for row in rows:
            description, step = [], index
            while sum(map(len, description)) < DESCRIPTION_CHARS:
                description.append(pieces[step % len(pieces)])
                step += 7
            row["metadata"]["descriptionByte"] = [f"<p>Lot {index}.</p>" + "".join(description)]
            index += 1
        pages.append(json.dumps({"apiVersion": "2.151", "totalResults": count,
                                 "pageNumber": number, "pageSize": PAGE_SIZE,
                                 "results": rows}).encode())
    return pages


class PagesServer(PortalReplayServer):
    """The portal's paging over pre-encoded pages, so the server costs both scrapers the
    same little: POST only, ``pageNumber`` and ``pageSize`` from the URL."""

    def __init__(self, pages: list[bytes]) -> None:
        super().__init__(results=[])
        self.pages = pages
        self.empty = json.dumps({"totalResults": 0, "results": []}).encode()

    def handle(self, request: Request) -> Reply:
        if request.path != SEARCH_PATH or request.method != "POST":
            return super().handle(request)
        page = int(request.query.get("pageNumber", ["1"])[0])
        body = self.pages[page - 1] if 0 < page <= len(self.pages) else self.empty
        return Reply(200, body, {"Content-Type": "application/json"})


def floor_scrape(url: str, database: Path) -> int:
    """The least a scraper can do: POST each page, json.loads, one bare executemany."""
    rows: list[tuple[str, str, str]] = []
    with httpx.Client(timeout=60) as client:
        page = 1
        while True:
            response = client.post(url, params={"apiKey": "SEDIA", "text": "***",
                                                "pageSize": PAGE_SIZE, "pageNumber": page})
            results = json.loads(response.content)["results"]
            rows.extend((r["metadata"]["identifier"][0], r["metadata"]["title"][0],
                         json.dumps(r)) for r in results)
            if len(results) < PAGE_SIZE:
                break
            page += 1
    return store_bare(database, rows)


def store_bare(database: Path, rows: list[tuple[str, str, str]]) -> int:
    """A floor's store: id, title and raw text, one executemany into a bare table."""
    connection = sqlite3.connect(database)
    connection.execute("CREATE TABLE IF NOT EXISTS calls (id TEXT PRIMARY KEY, title TEXT, "
                       "raw TEXT)")
    with connection:
        connection.executemany("INSERT OR REPLACE INTO calls VALUES (?, ?, ?)", rows)
    connection.close()
    return len(rows)


def write_config(directory: Path, url: str, database: Path) -> Path:
    path = directory / "callwatch.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n\n'
        '[http]\ndelay = 0\n\n'
        f'[sources.ft_portal]\nsearch_url = "{url}"\n'
        f'bulk_url = "{url.rsplit("/search-api", 1)[0]}/bulk"\n', encoding="utf-8")
    return path


def callwatch_script() -> str:
    found = Path(sys.executable).parent / "callwatch"
    return str(found) if found.exists() else shutil.which("callwatch") or "callwatch"


class Run(NamedTuple):
    """One process: wall seconds, CPU seconds (user + system), peak RSS in MiB, output."""

    wall: float
    cpu: float
    rss: float
    output: str


#: Runs the command given after the file name, then writes its wall seconds, CPU seconds
#: (user + system) and peak RSS (KiB) to that file, as JSON. Started by ``run_process`` so
#: that the command is forked from this small process, not from the bench: Linux carries a
#: process's peak RSS over fork and exec, so a command started by the bench (which holds the
#: generated pages or feed) reports at least the bench's own size (``callwatch --help``, 17 MiB
#: alone, reported 165 MiB when the bench of a 5,000-item feed started it).
MEASURE = """
import json, os, subprocess, sys, time
started = time.perf_counter()
process = subprocess.Popen(sys.argv[2:])
_pid, status, usage = os.wait4(process.pid, 0)
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump([time.perf_counter() - started, usage.ru_utime + usage.ru_stime,
               usage.ru_maxrss, os.waitstatus_to_exitcode(status)], out)
"""


def run_process(command: list[str], checkout: Path | None = None) -> Run:
    """Run ``command`` to its end; its own wall time, CPU time and peak RSS come from
    ``wait4`` in a small process that starts it (``MEASURE``), so neither the replay
    server's work nor the bench's memory (both in this process) is counted for it.
    ``checkout``: the code it runs (its PYTHONPATH), else this process's."""
    environment = None
    if checkout is not None:
        environment = {**os.environ, "PYTHONPATH": str(checkout)}
    with tempfile.TemporaryDirectory() as folder:
        measured = Path(folder) / "usage.json"
        process = subprocess.run(  # noqa: S603 - our own script and python
            [sys.executable, "-c", MEASURE, str(measured), *command],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
            env=environment)
        if process.returncode != 0:  # the command could not be started
            raise SystemExit(f"{' '.join(command)} did not run:\n{process.stdout}")
        wall, cpu, rss_kib, code = json.loads(measured.read_text(encoding="utf-8"))
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed ({code}):\n{process.stdout}")
    return Run(wall, cpu, rss_kib / 1024, process.stdout)


def run_callwatch(config: Path, *args: str, checkout: Path | None = None) -> Run:
    return run_process([callwatch_script(), "--config", str(config), *args], checkout)


def run_floor(url: str, database: Path) -> Run:
    return run_process([sys.executable, __file__, "--floor", url, str(database)])


def print_against_floor(floor_label: str, floors: list[Run],
                        runs: list[tuple[str, Run]]) -> None:
    """The table of ``runs`` beside the floor: its best wall time and best CPU time of
    ``floors`` (the same process run several times), each run's ratio to them."""
    floor = min(floors, key=lambda run: run.wall)._replace(cpu=min(run.cpu for run in floors))
    print("                                    wall s  ×floor   CPU s  ×floor  peak RSS")
    for label, run in [(floor_label, floor), *runs]:
        print(f"{label:35} {run.wall:6.2f}  {run.wall / floor.wall:5.2f}×  {run.cpu:6.2f}  "
              f"{run.cpu / floor.cpu:5.2f}×  {run.rss:5.0f} MiB")


def scrape_in_process(config: Path, now: datetime) -> Any:
    """The portal source's ``ScrapeResult`` read in this process, as ``callwatch scrape``
    reads it (the store's half left to the caller)."""
    from tracker.compose import http_client
    from tracker.config import load_config
    from tracker.pipeline import build_sources

    settings = load_config(config, environ={})
    found: list[Any] = []

    async def fetch() -> None:
        # the result is handed out through ``found``, not returned: asyncio.run writes the
        # repr of the task's result when it restores the SIGINT handler, which for 10,000
        # records was seconds of the profile and no part of callwatch's scrape
        async with http_client(settings.http) as http:
            found.append(await build_sources(settings, http, ["ft_portal"])["ft_portal"]
                         .scrape(now))

    asyncio.run(fetch())
    return found[0]


def profile_in_process(config: Path, database: Path) -> str:
    """The top of a cProfile of the same scrape in this process, fetching and storing in
    the main thread (the CLI stores in a worker thread, which cProfile would not see)."""
    from tracker.store import db
    from tracker.store.calls import Store

    engine = db.make_engine(f"sqlite:///{database}")
    db.upgrade(engine)
    store = Store(engine)
    now = datetime.now(UTC)
    profiler = cProfile.Profile()
    profiler.enable()
    result = scrape_in_process(config, now)
    store.record_run("ft_portal", result, started_at=now, now=now)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]  # pstats keeps its table untyped
    out.write(f"profile total {total:.2f} s (under cProfile); top five by own time:\n")
    stats.sort_stats("tottime").print_stats(5)
    out.write("top five by cumulative time, callwatch's own functions:\n")
    stats.sort_stats("cumulative").print_stats(r"(tracker|scrapers)/.*\.py.*\((?!<module>)", 5)
    lines = [line for line in out.getvalue().splitlines()
             if line.strip() and not line.startswith(("   Ordered by", "   List reduced"))]
    return "\n".join(lines)

# -- a GET source: one RSS feed, and its second scrape through a 304 ----------------------

FEED_PATH = "/calls.rss"


def generate_feed(count: int) -> bytes:
    """An RSS 2.0 feed of ``count`` calls, each described by one of the real descriptions
    after a deadline the rss source's default pattern reads (first, so the pattern finds
    it before any "deadline" inside the description)."""
    pieces = real_descriptions()
    items = []
    for n in range(count):
        description = f"<p>Deadline: 16 January 2027</p>{pieces[n % len(pieces)]}"
        items.append(f"<item><title>Call for proposals {n}</title>"
                     f"<link>https://calls.example.invalid/calls/{n}</link>"
                     f"<guid>https://calls.example.invalid/calls/{n}</guid>"
                     f"<pubDate>Tue, 01 Sep 2026 08:00:00 GMT</pubDate>"
                     f"<description>{escape_html(description)}</description></item>")
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            "<title>Calls</title><link>https://calls.example.invalid/</link>"
            f"<description>Calls</description>{''.join(items)}</channel></rss>").encode()


class FeedServer(FakeServer):
    """One feed with an ETag; a GET whose If-None-Match names it gets a 304 without a body."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        self.statuses: list[int] = []

    def handle(self, request: Request) -> Reply:
        if request.path != FEED_PATH:
            return Reply.text("not found", 404)
        status = 304 if request.headers.get("if-none-match") == self.etag else 200
        self.statuses.append(status)
        return Reply(status, self.body if status == 200 else b"",
                     {"Content-Type": "application/rss+xml", "ETag": self.etag})


def feed_floor(url: str, database: Path) -> int:
    """The least a feed scraper can do: GET, feedparser, one bare executemany."""
    import feedparser

    with httpx.Client(timeout=60) as client:
        parsed = feedparser.parse(client.get(url).content)
    return store_bare(database, [(e.get("id", ""), e.get("title", ""), e.get("summary", ""))
                                 for e in parsed.entries])


def write_feed_config(directory: Path, url: str, database: Path, *, conditional: bool) -> Path:
    path = directory / ("feed.toml" if conditional else "feed-unconditional.toml")
    path.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n\n'
        f'[http]\ndelay = 0\nconditional_requests = {str(conditional).lower()}\n\n'
        f'[sources.feed]\nkind = "rss"\nurl = "{url}"\n', encoding="utf-8")
    return path


def bench_feed(count: int) -> None:
    body = generate_feed(count)
    print(f"input: one RSS feed of {count} items, {len(body) / 2**20:.1f} MiB, the real "
          "descriptions; the server sends an ETag and answers a matching If-None-Match with 304")
    with FeedServer(body) as server, tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        database = directory / "feed.db"
        url = server.url + FEED_PATH
        config = write_feed_config(directory, url, database, conditional=True)
        unconditional = write_feed_config(directory, url, database, conditional=False)
        run_callwatch(config, "db", "upgrade")
        floors = [run_process([sys.executable, __file__, "--feed-floor", url,
                               str(directory / f"floor{n}.db")]) for n in range(3)]
        first = run_callwatch(config, "scrape", "feed")
        second = run_callwatch(config, "scrape", "feed")
        full = run_callwatch(unconditional, "scrape", "feed")
        print(second.output.strip())
        print(f"answers to callwatch: {server.statuses[3:]} (the floor's three first)")
        print_against_floor("floor (httpx, feedparser, sqlite3)", floors,
                            [("callwatch scrape feed, first run", first),
                             ("unchanged: one 304", second),
                             ("unchanged, conditional off", full)])
        print("floor: best of three processes; target for the unchanged scrape: ≤ 1.5×")


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text(encoding="utf-8").split(" ", 3)[:3].__str__()
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("count", type=int, nargs="?", default=10_000)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--only", choices=("portal", "feed"),
                        help="the portal's search API (POST) or an RSS feed (GET, 304s)")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="first scrapes only, alternating this checkout and CHECKOUT "
                             "(e.g. main) on one replay server, each round with a floor")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --against")
    parser.add_argument("--floor", nargs=2, metavar=("URL", "DATABASE"),
                        help=argparse.SUPPRESS)  # the floor's own process
    parser.add_argument("--feed-floor", nargs=2, metavar=("URL", "DATABASE"),
                        help=argparse.SUPPRESS)  # the feed floor's own process
    args = parser.parse_args()
    if args.floor:
        floor_scrape(args.floor[0], Path(args.floor[1]))
        return
    if args.feed_floor:
        feed_floor(args.feed_floor[0], Path(args.feed_floor[1]))
        return
    print(f"machine: {describe()}")
    print(f"load average before: {loadavg()}")
    import tracker
    print(f"code measured: {Path(tracker.__file__).resolve().parent.parent}")
    if args.against is not None:
        bench_alternating(args)
    elif args.only != "feed":
        bench_portal_ingest(args)
    if args.only != "portal" and args.against is None:
        bench_feed(args.count)
    print(f"load average after: {loadavg()}")


def bench_portal_ingest(args: argparse.Namespace) -> None:
    pages = generate(args.count)
    size = sum(map(len, pages)) / 2**20
    print(f"input: {args.count} records, {len(pages)} pages of {PAGE_SIZE}, {size:.1f} MiB of "
          f"JSON, descriptions of about {DESCRIPTION_CHARS} characters of HTML")
    with PagesServer(pages) as server, tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        database = directory / "callwatch.db"
        config = write_config(directory, server.search_url, database)
        run_callwatch(config, "db", "upgrade")

        floors = [run_floor(server.search_url, directory / f"floor{n}.db") for n in range(2)]
        first = run_callwatch(config, "scrape", "ft_portal")
        second = run_callwatch(config, "scrape", "ft_portal")
        floors.append(run_floor(server.search_url, directory / "floor2.db"))
        print(first.output.strip())
        print(second.output.strip())
        print_against_floor("floor (httpx, json.loads, sqlite3)", floors,
                            [("callwatch scrape, first run", first),
                             ("callwatch scrape, unchanged data", second)])
        print("floor: best of three processes (two before callwatch, one after); CPU is the "
              "process's own user + system time. Targets: first ≤ 2.5×, unchanged ≤ 1.5×, "
              "peak RSS ≤ 250 MB")
        if not args.no_profile:
            print(profile_in_process(config, directory / "profiled.db"))



def bench_alternating(args: argparse.Namespace) -> None:
    """First scrapes of this checkout and of ``args.against``, alternating which goes first
    from round to round, on one replay server, each round with a floor run just before:
    on a shared machine the CPU time of identical work moves by 15% between runs, so one
    pair says little; the medians of a few rounds, and each round's ratio to its own
    floor, say more."""
    here = ROOT
    other = args.against.resolve()
    pages = generate(args.count)
    print(f"input: {args.count} records, {len(pages)} pages; this checkout {here}, "
          f"against {other}; {args.rounds} rounds")
    cpu: dict[str, list[float]] = {"floor": [], "this": [], "against": []}
    ratio: dict[str, list[float]] = {"this": [], "against": []}
    rss: dict[str, list[float]] = {"this": [], "against": []}
    with PagesServer(pages) as server, tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        for number in range(args.rounds):
            floor = run_floor(server.search_url, directory / f"floor{number}.db")
            cpu["floor"].append(floor.cpu)
            order = [("this", here), ("against", other)]
            for label, checkout in order if number % 2 == 0 else order[::-1]:
                database = directory / f"{label}{number}.db"
                (directory / label).mkdir(exist_ok=True)
                config = write_config(directory / label, server.search_url, database)
                run_callwatch(config, "db", "upgrade", checkout=checkout)
                run = run_callwatch(config, "scrape", "ft_portal", checkout=checkout)
                cpu[label].append(run.cpu)
                ratio[label].append(run.cpu / floor.cpu)
                rss[label].append(run.rss)
            print(f"round {number + 1} (load {loadavg()}): floor {floor.cpu:.2f} s, "
                  f"this {cpu['this'][-1]:.2f} s ({ratio['this'][-1]:.2f}×, "
                  f"{rss['this'][-1]:.0f} MiB), against {cpu['against'][-1]:.2f} s "
                  f"({ratio['against'][-1]:.2f}×, {rss['against'][-1]:.0f} MiB)")
    median = statistics.median
    print(f"medians: floor {median(cpu['floor']):.2f} s; this {median(cpu['this']):.2f} s, "
          f"{median(ratio['this']):.2f}× its round's floor, peak RSS {max(rss['this']):.0f} MiB "
          f"at most; against {median(cpu['against']):.2f} s, {median(ratio['against']):.2f}×, "
          f"{max(rss['against']):.0f} MiB at most")


if __name__ == "__main__":
    main()
