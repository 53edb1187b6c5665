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

from tests.sources_support import FIXTURES
from tests.test_daemon_schedule import settings_for
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
    page1, page2 = HTML / "efre_calls_page1.html", HTML / "efre_calls_page2.html"
    with TimedSite({"/calls": page1, "/calls?page=2": page2, "/flaky": page1}) as site:
        two_on_one_site = settings_for(tmp_path, site)  # sources `good` and `flaky`
        settings = two_on_one_site.model_copy(update={
            "http": two_on_one_site.http.model_copy(update={"delay": DELAY})})

        async def both_jobs_at_once() -> None:
            daemon = Daemon(settings, engine)
            await asyncio.gather(daemon.scrape("good"), daemon.scrape("flaky"))

        asyncio.run(both_jobs_at_once())
        arrivals = sorted(site.arrivals)
    runs = {run.source: run for run in Store(engine).runs()}
    assert runs["good"].outcome is RunOutcome.OK and runs["flaky"].outcome is RunOutcome.OK
    assert len(arrivals) == 4  # two pages for each source
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= DELAY - 0.005, gaps  # 5 ms: the event loop's timer granularity
