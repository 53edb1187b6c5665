"""The daemon paces every request to one host together: two sources on one site, scraped by two
jobs at once (each with its own client), are still ``http.delay`` apart at the server.

Real HTTP on 127.0.0.1; the server notes when each request arrives. Only a lower bound is
asserted (a loaded machine makes gaps longer, never shorter).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

from sqlalchemy.engine import Engine

from tests.sources_support import EFRE_AT_SELECTORS, FIXTURES
from tracker.config import load_config
from tracker.demo.fakes._server import Reply, Request
from tracker.demo.fakes.sites import FixtureSite
from tracker.models import RunOutcome
from tracker.service.daemon import Daemon
from tracker.store.calls import Store

DELAY = 0.3
HTML = FIXTURES / "html_list"


class TimedSite(FixtureSite):
    """A ``FixtureSite`` that notes when each request arrived (``time.monotonic``)."""

    def __init__(self, routes: dict[str, Path | Reply]) -> None:
        super().__init__(routes)
        self.arrivals: list[float] = []

    def handle(self, request: Request) -> Reply:
        self.arrivals.append(time.monotonic())
        return super().handle(request)


def test_two_sources_on_one_host_are_paced_together_across_daemon_jobs(
        tmp_path: Path, engine: Engine) -> None:
    routes: dict[str, Path | Reply] = {"/a": HTML / "efre_calls_page1.html",
                                       "/b": HTML / "efre_calls_page1.html",
                                       "/calls?page=2": HTML / "efre_calls_page2.html"}
    with TimedSite(routes) as site:
        (tmp_path / "profiles").mkdir()
        (tmp_path / "subscribers").mkdir()
        sources = "".join(f'\n[sources.{name}]\nkind = "html_list"\nurl = "{site.url}/{name}"\n'
                          + EFRE_AT_SELECTORS for name in ("a", "b"))
        config = tmp_path / "callwatch.toml"
        config.write_text(f"""
[http]
delay = {DELAY}
retries = 0
[profiles]
directory = "profiles"
[subscribers]
directory = "subscribers"
[notifiers.console]
enabled = false
""" + sources, encoding="utf-8")
        settings = load_config(config, environ={})

        async def both_jobs_at_once() -> None:
            daemon = Daemon(settings, engine)
            await asyncio.gather(daemon.scrape("a"), daemon.scrape("b"))

        asyncio.run(both_jobs_at_once())
        arrivals = sorted(site.arrivals)
    runs = {run.source: run for run in Store(engine).runs()}
    assert runs["a"].outcome is RunOutcome.OK and runs["b"].outcome is RunOutcome.OK
    assert len(arrivals) == 4  # two pages for each source
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= DELAY - 0.005, gaps  # 5 ms: the event loop's timer granularity
