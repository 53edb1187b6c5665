"""Hostile servers on 127.0.0.1 against the shared client and the source run that uses it.

A server that trickles a byte at a time must not hold a request past ``http.timeout``, nor a
source past ``http.source_timeout``; redirects follow the policy in scrapers/_http.py
(http(s) only, a bounded number of hops, never from a public site to an internal address,
a move to another host logged once); a URL that can never work is a permanent error.

The time bounds below are correctness bounds (half of what the trickle would take), not
speed targets.
"""

from __future__ import annotations

import asyncio
import logging
import socketserver
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from scrapers._http import MAX_REDIRECTS, PoliteClient, redirect_refusal
from tests.sources_support import FIXTURES, NOW
from tracker.config import HttpSettings, Settings, load_config
from tracker.demo.fakes._server import Reply
from tracker.demo.fakes.sites import FixtureSite
from tracker.errors import SourceRejected, SourceUnavailable
from tracker.models import RunOutcome
from tracker.pipeline import scrape_sources
from tracker.service.daemon import Daemon
from tracker.store.calls import Store

FEED = FIXTURES / "rss" / "dotaceeu_vyzvy_drupal_debug.xml"


class TrickleServer:
    """A TCP server on 127.0.0.1 that answers every request slowly, on purpose.

    ``head`` is sent at once when the request has arrived, then ``trickled`` one byte every
    ``interval`` seconds: a body trickle when ``head`` holds the status line and headers,
    a header trickle when it is empty. Each byte resets a per-read timeout, so only an
    overall deadline ends the request.
    """

    def __init__(self, head: bytes, trickled: bytes, interval: float) -> None:
        self.connections = 0
        self.stopping = threading.Event()
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner.connections += 1
                received = b""
                while b"\r\n\r\n" not in received:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    received += chunk
                try:
                    self.request.sendall(head)
                    for byte in trickled:
                        if owner.stopping.wait(interval):
                            return
                        self.request.sendall(bytes([byte]))
                except OSError:  # the client gave up: that is the point
                    return

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @classmethod
    def body(cls, size: int, interval: float) -> TrickleServer:
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                b"Content-Length: %d\r\n\r\n" % size)
        return cls(head, b"x" * size, interval)

    @classmethod
    def headers(cls, lines: int, interval: float) -> TrickleServer:
        trickled = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: a\r\n" * lines + b"Content-Length: 0\r\n\r\n"
        return cls(b"", trickled, interval)

    def __enter__(self) -> TrickleServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def loopback_client(**settings: float) -> PoliteClient:
    values = {"delay": 0.0, "backoff": 0.01, "max_backoff": 0.05, "retries": 1, **settings}
    return PoliteClient(HttpSettings(**values))  # type: ignore[arg-type]


# -- 1. a timeout is a deadline --------------------------------------------------------------

def test_a_trickling_body_cannot_hold_a_request_past_http_timeout() -> None:
    """100 bytes at 0.3 s each would take 30 s per attempt; with timeout 1 s and one retry
    the request fails as a retried timeout after about 2 s."""
    trickle_seconds = 100 * 0.3

    async def go() -> None:
        async with loopback_client(timeout=1.0, retries=1) as http:
            await http.request("GET", server.url + "/feed")

    with TrickleServer.body(100, 0.3) as server:
        began = time.monotonic()
        with pytest.raises(SourceUnavailable, match=r"within 1\.0 s \(http\.timeout\)"):
            asyncio.run(go())
        elapsed = time.monotonic() - began
    assert server.connections == 2  # retried like any timeout
    assert elapsed < trickle_seconds / 2


def test_trickled_headers_cannot_hold_a_stream_past_http_timeout() -> None:
    """The streaming form (bulk files) gets the deadline up to the headers."""
    trickle_seconds = len(b"X-Pad: a\r\n") * 20 * 0.2

    async def go() -> None:
        async with loopback_client(timeout=1.0, retries=0) as http, \
                http.stream("GET", server.url + "/bulk.json"):
            pass

    with TrickleServer.headers(20, 0.2) as server:
        began = time.monotonic()
        with pytest.raises(SourceUnavailable, match=r"http\.timeout"):
            asyncio.run(go())
        elapsed = time.monotonic() - began
    assert server.connections == 1
    assert elapsed < trickle_seconds / 2


# -- 1b. a source run has a ceiling ----------------------------------------------------------

def settings_with(tmp_path: Path, stalled_url: str, feed_url: str) -> Settings:
    (tmp_path / "profiles").mkdir(exist_ok=True)
    (tmp_path / "subscribers").mkdir(exist_ok=True)
    config = tmp_path / "callwatch.toml"
    config.write_text(f"""
[http]
delay = 0
retries = 0
timeout = 30
source_timeout = "1s"
[profiles]
directory = "{tmp_path / 'profiles'}"
[subscribers]
directory = "{tmp_path / 'subscribers'}"
[notifiers.console]
enabled = false
[sources.stalled]
kind = "rss"
url = "{stalled_url}"
[sources.cz_op_tak]
kind = "rss"
url = "{feed_url}"
language = "cs"
timezone = "Europe/Prague"
""", encoding="utf-8")
    return load_config(config, environ={})


@pytest.fixture
def stalled_and_live(tmp_path: Path) -> Iterator[tuple[Settings, float]]:
    """A source whose server trickles 100 bytes at 0.2 s (20 s, well inside http.timeout)
    and one that answers at once; ``http.source_timeout`` is 1 s."""
    with TrickleServer.body(100, 0.2) as slow, FixtureSite({"/rss": FEED}) as site:
        yield settings_with(tmp_path, slow.url + "/rss", site.url + "/rss"), 100 * 0.2


def test_a_stalled_source_ends_as_a_failed_run_and_the_others_are_stored(
    stalled_and_live: tuple[Settings, float], store: Store
) -> None:
    settings, trickle_seconds = stalled_and_live
    began = time.monotonic()
    outcomes = asyncio.run(scrape_sources(settings, store, ["stalled", "cz_op_tak"], lambda: NOW))
    elapsed = time.monotonic() - began
    reports = {o.report.source: o.report for o in outcomes}
    assert reports["stalled"].outcome is RunOutcome.FAILED
    assert reports["stalled"].error == (
        "source stalled gave no complete result within 1 s (http.source_timeout)")
    assert reports["cz_op_tak"].outcome is RunOutcome.OK and reports["cz_op_tak"].new == 3
    assert {c.record.source for c in store.list_calls()} == {"cz_op_tak"}
    assert [r.outcome for r in store.runs(source="stalled")] == [RunOutcome.FAILED]
    assert elapsed < trickle_seconds / 2


def test_the_daemons_scrape_job_has_the_same_ceiling(
    stalled_and_live: tuple[Settings, float], engine: Engine, now: datetime
) -> None:
    settings, trickle_seconds = stalled_and_live
    daemon = Daemon(settings, engine, clock=lambda: now)
    began = time.monotonic()
    asyncio.run(daemon.scrape("stalled"))
    elapsed = time.monotonic() - began
    [run] = Store(engine).runs(source="stalled")
    assert run.outcome is RunOutcome.FAILED and "http.source_timeout" in (run.error or "")
    assert daemon.failures == {"stalled": 1}  # retried sooner, like any failed run
    assert elapsed < trickle_seconds / 2


# -- 9. redirects and protocols --------------------------------------------------------------

@pytest.mark.parametrize(("location", "error", "requests"), [
    # a loop: one walk, not retried
    pytest.param("/calls", f"more than {MAX_REDIRECTS} redirects", MAX_REDIRECTS + 1, id="loop"),
    pytest.param("file:///etc/passwd", r"/calls to file:///etc/passwd refused: not http or https",
                 1, id="file-url-refused-at-once"),
])
def test_a_bad_redirect_is_a_permanent_source_error_not_a_crash(
        location: str, error: str, requests: int) -> None:
    async def go() -> None:
        async with loopback_client(retries=3) as http:
            await http.request("GET", site.url + "/calls")

    with FixtureSite({"/calls": Reply(302, headers={"Location": location})}) as site, \
            pytest.raises(SourceRejected, match=error):
        asyncio.run(go())
    assert len(site.requests) == requests


@pytest.mark.parametrize("url", ["gopher://127.0.0.1:70/1", "ftp://127.0.0.1/calls.json"])
def test_a_url_that_is_not_http_is_permanent_and_not_retried(url: str) -> None:
    sleeps: list[float] = []

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def go() -> None:
        async with PoliteClient(HttpSettings(delay=0, retries=3), sleep=no_sleep) as http:
            await http.request("GET", url)

    with pytest.raises(SourceRejected, match="only http and https"):
        asyncio.run(go())
    assert sleeps == []


def test_a_redirect_to_another_host_is_followed_and_logged_once_per_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def go() -> list[str]:
        async with loopback_client() as http:
            return [(await http.request("GET", old.url + f"/calls?page={n}")).text for n in (1, 2)]

    with FixtureSite({"/page": Reply.text("moved here")}) as new, \
            FixtureSite({"/calls": Reply(301, headers={"Location": new.url + "/page"})}) as old, \
            caplog.at_level(logging.INFO, logger="scrapers._http"):
        texts = asyncio.run(go())
    assert texts == ["moved here", "moved here"]
    moves = [r.getMessage() for r in caplog.records if "redirected to another host" in r.getMessage()]
    assert len(moves) == 1
    assert old.url.removeprefix("http://") in moves[0] and new.url.removeprefix("http://") in moves[0]


def test_a_public_site_redirecting_to_an_internal_address_is_refused() -> None:
    """The cloud metadata address behind a public site's redirect is never requested."""
    seen: list[str] = []

    def site(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.host == "calls.example.eu":
            return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        return httpx.Response(200, text="instance secrets")

    async def go() -> None:
        async with PoliteClient(HttpSettings(delay=0, retries=2),
                                transport=httpx.MockTransport(site)) as http:
            await http.request("GET", "https://calls.example.eu/open")

    with pytest.raises(SourceRejected, match=r"to http://169\.254\.169\.254/\S* refused: .*internal address"):
        asyncio.run(go())
    assert seen == ["https://calls.example.eu/open"]


@pytest.mark.parametrize(("start", "target", "refused"), [
    ("https://calls.example.eu/a", "https://www.example.org/b", None),
    ("https://calls.example.eu/a", "http://calls.example.eu/b", None),
    ("https://calls.example.eu/a", "file:///etc/passwd", "not http or https"),
    ("https://calls.example.eu/a", "gopher://calls.example.eu/1", "not http or https"),
    ("https://calls.example.eu/a", "http://127.0.0.1:8080/", "internal address"),
    ("https://calls.example.eu/a", "http://[::1]/", "internal address"),
    ("https://calls.example.eu/a", "http://10.1.2.3/", "internal address"),
    ("https://calls.example.eu/a", "http://2852039166/", "internal address"),  # 169.254.169.254
    ("https://calls.example.eu/a", "http://localhost/", "internal address"),
    ("https://calls.example.eu/a", "http://metadata.google.internal/", "internal address"),
    ("http://10.0.0.5/calls", "http://10.0.0.6/calls", None),  # an intranet source stays inside
    ("http://127.0.0.1:8000/a", "http://127.0.0.1:9000/b", None),
])
def test_redirect_policy(start: str, target: str, refused: str | None) -> None:
    reason = redirect_refusal(httpx.URL(start), httpx.URL(target))
    assert reason == refused if refused is None else refused in (reason or "")
