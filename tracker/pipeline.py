"""The flow of one cycle: scrape → normalize → store → (match → notify, as they land).

Each function here reads top to bottom and holds no business rule of its own: scrapers
parse and normalize, the store diffs and records, the matcher and the notifiers decide.
A failing source is isolated: its error becomes a failed run in the log and the others go on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from scrapers._http import PoliteClient
from tracker.config import Settings
from tracker.errors import CallwatchError, ConfigError
from tracker.models import ScrapeResult
from tracker.plugins import source_plugins
from tracker.ports import Progress, Source
from tracker.store import RunReport, Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ProgressFactory = Callable[[str], Progress | None]


@dataclass(frozen=True)
class ScrapeOutcome:
    """One source's run as the CLI reports it."""

    report: RunReport
    seconds: float


def select_sources(settings: Settings, names: Iterable[str] = ()) -> list[str]:
    """The named sources (each must be configured), or every enabled one."""
    wanted = list(names)
    unknown = [n for n in wanted if n not in settings.sources]
    if unknown:
        known = ", ".join(sorted(settings.sources)) or "none"
        raise ConfigError(f"unknown source {', '.join(unknown)} (configured: {known})",
                          key="sources")
    return wanted or [n for n, s in settings.sources.items() if s.enabled]


def build_sources(settings: Settings, http: PoliteClient, names: Iterable[str]) -> dict[str, Source]:
    """The composition root for sources: one Source per configured instance."""
    plugins = source_plugins()
    sources: dict[str, Source] = {}
    for name in names:
        source_settings = settings.sources[name]
        plugin = plugins[source_settings.kind or name]
        sources[name] = plugin.create(name, source_settings, http)
    return sources


async def scrape_one(
    name: str, source: Source, store: Store, clock: Clock, progress: Progress | None = None
) -> ScrapeOutcome:
    """Scrape one source and store its run; any failure becomes a failed run, never a crash."""
    started = clock()
    began = time.perf_counter()
    try:
        result = await source.scrape(started, progress)
    except CallwatchError as exc:
        log.warning("source failed source=%s error=%s", name, exc)
        result = ScrapeResult(complete=False, error=str(exc))
    except Exception as exc:  # a bug in one scraper must not stop the others
        log.exception("source crashed source=%s", name)
        result = ScrapeResult(complete=False, error=f"unexpected {type(exc).__name__}: {exc}")
    report = await asyncio.to_thread(store.record_run, name, result, started_at=started,
                                     now=clock())
    return ScrapeOutcome(report=report, seconds=time.perf_counter() - began)


async def scrape_sources(
    settings: Settings,
    store: Store,
    names: Iterable[str],
    clock: Clock,
    progress_for: ProgressFactory = lambda _name: None,
) -> list[ScrapeOutcome]:
    """Scrape the named sources concurrently (pacing is per host) and store every run."""
    async with PoliteClient(settings.http) as http:
        sources = build_sources(settings, http, names)
        return list(await asyncio.gather(*(
            scrape_one(name, source, store, clock, progress_for(name))
            for name, source in sources.items()
        )))
