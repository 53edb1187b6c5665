"""Shared helpers for the source tests: a fast polite client and a runner for one scrape."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from scrapers._http import PoliteClient
from tracker.config import HttpSettings
from tracker.models import ScrapeResult
from tracker.ports import HttpClient, Source

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
#: the ``html_list`` selectors (and language, time zone) of the Austrian ERDF call list
#: written in fixtures/html_list/, for tests that configure it as a user source
EFRE_AT_SELECTORS = """\
item = ".calls.container .call-item"
title = ".call-item__title"
link = "a.more"
deadline = ".call-item__deadline"
next_page = ".pagination .next a"
language = "de"
timezone = "Europe/Vienna"
"""


def fast_http() -> PoliteClient:
    """The real shared client, without the politeness delays that would slow the suite."""
    return PoliteClient(HttpSettings(delay=0, backoff=0.01, max_backoff=0.05, retries=1, timeout=5))


def scrape(make_source: Callable[[HttpClient], Source], now: datetime = NOW) -> ScrapeResult:
    """Run one source's real scrape against whatever server its settings point at."""

    async def go() -> ScrapeResult:
        async with fast_http() as http:
            return await make_source(http).scrape(now)

    return asyncio.run(go())
