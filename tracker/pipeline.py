"""The flow of one cycle: scrape → normalize → store → statuses → match → enqueue → dispatch.

``run_once`` is the whole cycle in one screen, composed of the steps below
(``scrape_sources``, ``report_health``, ``notify_step``, ``digests_step``,
``dispatch_step``); the daemon's jobs and ``callwatch worker`` run the same steps on their
own schedules, so there is one code path for each. Each step holds no business rule of its
own: scrapers parse and normalize, the store diffs and records, the matcher decides what
matches, ``tracker.delivery.planning`` decides who is told what, the notifiers send. A failing
source is isolated: its error becomes a failed run in the log and the others go on; a
failing channel only delays its own messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from tracker.collection import fewer_collections
from tracker.conditional import Validator, fetch_key
from tracker.config import Settings
from tracker.errors import (
    CallwatchError,
    ChannelRejected,
    ChannelUnavailable,
    ConfigError,
    SourceUnavailable,
)
from tracker.models import RunOutcome, ScrapeResult
from tracker.plugins import source_plugins
from tracker.ports import Clock, HttpClient, Notifier, Progress, RunClient, SkipsUnchanged, Source
from tracker.store.calls import RunReport, Store
from tracker.store.drift import DEFAULT_EXPECTED
from tracker.store.revalidation import keep_validators, record_unchanged, stored_validators

if TYPE_CHECKING:
    from tracker.compose import HostPacer
    from tracker.delivery.dispatch import DispatchReport
    from tracker.delivery.outbox import NotifyReport
    from tracker.delivery.subscribers import Subscriber
    from tracker.rules.profiles import Profile

# The delivery modules (outbox, dispatch, rendering) are imported by the steps that use
# them: ``callwatch scrape`` imports this module for its scrape functions alone, and
# importing delivery took about a second of it (issue 15).

log = logging.getLogger(__name__)

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


def build_source(settings: Settings, name: str, http: HttpClient) -> Source:
    """The composition root for sources: the Source of one configured instance."""
    source_settings = settings.sources[name]
    return source_plugins()[source_settings.kind or name].create(name, source_settings, http)


def build_sources(settings: Settings, http: HttpClient, names: Iterable[str]) -> dict[str, Source]:
    """One Source per configured instance named, all fetching through ``http``."""
    return {name: build_source(settings, name, http) for name in names}


@dataclass(frozen=True)
class Revalidation:
    """How one source run asks first whether the pages of the last good run changed
    (the rule: tracker/conditional.py)."""

    #: the client the source fetches through: it notes what this run fetches
    client: RunClient
    #: ``tracker.conditional.fetch_key`` of the source's settings and callwatch's version
    key: str
    #: ``http.conditional_requests``: off, nothing is asked (what the run fetched is still kept)
    ask: bool = True


async def scrape_one(
    name: str, source: Source, store: Store, clock: Clock, progress: Progress | None = None,
    *, ceiling: timedelta | None = None, revalidation: Revalidation | None = None,
) -> ScrapeOutcome:
    """Scrape one source and store its run; any failure becomes a failed run, never a crash.

    ``ceiling`` (``http.source_timeout``) bounds the whole scrape, so one stalled site cannot
    hold ``run --once`` or a scheduler job: past it the scrape is cancelled and stored as a
    failed run, and the other sources go on. The store judges the run for drift by the
    fields the source says every item has (``expected_fields``, default title, url and
    deadline): a run that looks wrong is recorded as suspicious.

    With ``revalidation``, the pages the source's last good run read are asked for again
    conditionally first: all 304, and the run is logged ok with the calls left as they were
    (no scrape, no diff, nothing missing). After a scrape is stored, what it fetched is kept
    for the next run when it was ok, and the kept list cleared otherwise; never before the
    store has committed, so a run that breaks off leaves the next one to fetch in full.
    """
    with fewer_collections():
        return await _scrape_and_store(name, source, store, clock, progress, ceiling=ceiling,
                                       revalidation=revalidation)


async def _scrape_and_store(
    name: str, source: Source, store: Store, clock: Clock, progress: Progress | None,
    *, ceiling: timedelta | None, revalidation: Revalidation | None,
) -> ScrapeOutcome:
    """``scrape_one``'s work, inside its ``fewer_collections`` block."""
    started = clock()
    began = time.perf_counter()
    if isinstance(source, SkipsUnchanged):  # the rows its last runs read, to leave unread
        source.skip_unchanged(await asyncio.to_thread(store.raw_digests, name))
    previous: list[Validator] = []
    if revalidation is not None and revalidation.ask:
        previous = await asyncio.to_thread(stored_validators, store.engine, name, revalidation.key)
    try:
        result = await _scrape_within(name, source, started, progress, ceiling,
                                      revalidation, previous)
    except CallwatchError as exc:
        log.warning("source failed source=%s error=%s", name, exc)
        result = ScrapeResult(complete=False, error=str(exc))
    except Exception as exc:  # a bug in one scraper must not stop the others
        log.exception("source crashed source=%s", name)
        result = ScrapeResult(complete=False, error=f"unexpected {type(exc).__name__}: {exc}")
    if result is None:
        log.info("not modified source=%s pages=%d", name, len(previous))
        report = await asyncio.to_thread(record_unchanged, store.engine, name,
                                         started_at=started, now=clock())
        return ScrapeOutcome(report=report, seconds=time.perf_counter() - began)
    expected = getattr(source, "expected_fields", DEFAULT_EXPECTED)
    report = await asyncio.to_thread(store.record_run, name, result, started_at=started,
                                     now=clock(), expected_fields=expected)
    if revalidation is not None:
        fetched = revalidation.client.fetched() if report.outcome is RunOutcome.OK else None
        await asyncio.to_thread(keep_validators, store.engine, name, revalidation.key, fetched,
                                clock())
    return ScrapeOutcome(report=report, seconds=time.perf_counter() - began)


async def _scrape_within(name: str, source: Source, now: datetime, progress: Progress | None,
                         ceiling: timedelta | None, revalidation: Revalidation | None,
                         previous: list[Validator]) -> ScrapeResult | None:
    """The source's result; None when every page in ``previous`` answered 304 (not
    modified); SourceUnavailable when there is neither within ``ceiling``."""
    seconds = None if ceiling is None else ceiling.total_seconds()
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            if revalidation is not None and await revalidation.client.unchanged(previous):
                return None
            return await source.scrape(now, progress)
    except TimeoutError as exc:
        if not deadline.expired():  # the source's own TimeoutError: a bug, reported as a crash
            raise
        raise SourceUnavailable(f"source {name} gave no complete result within {seconds:g} s "
                                "(http.source_timeout)") from exc


async def scrape_sources(
    settings: Settings,
    store: Store,
    names: Iterable[str],
    clock: Clock,
    progress_for: ProgressFactory = lambda _name: None,
    *,
    pacer: HostPacer | None = None,
) -> list[ScrapeOutcome]:
    """Scrape the named sources concurrently and store every run, each first asking whether
    its pages changed (``Revalidation``).

    Pacing is per host: by the client's own pacer, or by ``pacer``, the one the process
    shares between its clients (the daemon's scrape jobs each open a client).
    """
    from tracker import __version__
    from tracker.compose import http_client

    async with http_client(settings.http, pacer) as http:
        runs = {name: http.for_run() for name in names}
        return list(await asyncio.gather(*(
            scrape_one(name, build_source(settings, name, run), store, clock, progress_for(name),
                       ceiling=settings.http.source_timeout,
                       revalidation=Revalidation(
                           run, fetch_key(settings.sources[name].model_dump_json(), __version__),
                           ask=settings.http.conditional_requests))
            for name, run in runs.items()
        )))


# -- one full cycle: scrape → store → match → enqueue → dispatch ---------------------------

@dataclass
class CycleReport:
    """What one ``run_once`` did."""

    scrapes: list[ScrapeOutcome]
    notify: NotifyReport
    #: calls whose status the clock moved since they were stored (``Store.refresh_statuses``)
    statuses: int
    reminders: int
    digests: int
    dispatch: DispatchReport


def default_subscriber(profile_names: Iterable[str]) -> Subscriber:
    """With no subscriber configured, the console follows every profile, so a first run
    shows something."""
    from tracker.delivery.subscribers import Subscriber

    return Subscriber.model_validate({
        "name": "console", "channels": {"console": True},
        "subscriptions": [{"profile": name, "mode": "instant"} for name in profile_names],
    })


def load_audience(settings: Settings, engine: Engine) -> tuple[list[Profile], list[Subscriber]]:
    """Profiles and subscribers, validated; ConfigError (exit 2) when any file is invalid."""
    from tracker.delivery.subscribers import load_directory as load_subscriber_files
    from tracker.rules.service import load_profiles

    profiles = load_profiles(settings, engine)
    names = [p.name for p in profiles]
    subscribers = load_subscriber_files(Path(settings.subscribers.directory), names,
                                        allow_private=settings.notifiers.webhook.allow_private)
    if not subscribers and profiles and settings.notifiers.console.enabled:
        subscribers = [default_subscriber(names)]
    return profiles, subscribers


def sync_audience(settings: Settings, engine: Engine, now: datetime) -> list[Profile]:
    """``load_audience``, with the subscribers mirrored into the database (where the
    dispatcher and the bot read them); the profiles, for matching."""
    from tracker.delivery.outbox import sync_subscribers
    from tracker.rules.sources import import_files

    profiles, subscribers = load_audience(settings, engine)
    sync_subscribers(engine, subscribers, now)
    import_files(engine, profiles, now)  # the web editor lists the file profiles read-only
    return profiles


async def check_notifiers(notifiers: Mapping[str, Notifier]) -> dict[str, str]:
    """Reach every channel once; the ones that are down, with why (logged as warnings).

    A channel that is down is not a reason to stay down: its messages wait in the outbox
    and the dispatcher retries. Rejected credentials are a configuration error and raise.
    """
    down: dict[str, str] = {}
    for name, notifier in notifiers.items():
        try:
            await notifier.check()
        except (ChannelUnavailable, ChannelRejected) as exc:
            down[name] = str(exc)
            log.warning("channel %s is not reachable now: %s; its messages wait in the outbox",
                        name, exc)
    return down


async def close_notifiers(notifiers: Mapping[str, Notifier]) -> None:
    for notifier in notifiers.values():
        with contextlib.suppress(Exception):
            await notifier.aclose()


# -- the steps: the daemon's jobs, `callwatch worker` and `run_once` compose these ----------

async def report_health(settings: Settings, engine: Engine, notifiers: Mapping[str, Notifier],
                        sources: Iterable[str]) -> int:
    """After the runs of ``sources`` are stored: tell the admins of each one that turned red
    with its latest run (once per streak, ``tracker.delivery.operator_alerts``). Returns how many
    chats were told."""
    from tracker.delivery.operator_alerts import alert_red_source

    told = 0
    for name in sources:
        told += await alert_red_source(settings, engine, notifiers, name)
    return told


def notify_step(settings: Settings, engine: Engine, now: datetime, channels: Iterable[str],
                audience: tuple[list[Profile], list[Subscriber]] | None = None) -> NotifyReport:
    """Bring the subscribers in from their files, then match what changed since the last
    step and enqueue what that causes (``tracker.delivery.outbox.notify_changes``).

    The audience is read at every step (unless the caller has just read it: ``run_once``
    reads it before scraping, to stop on an invalid file), so an edited profile or
    subscriber file counts from the next step on, without a restart; an invalid one is a
    ConfigError.
    """
    from tracker.delivery.outbox import notify_changes, sync_subscribers
    from tracker.rules.sources import import_files

    profiles, subscribers = audience if audience is not None else load_audience(settings, engine)
    sync_subscribers(engine, subscribers, now)
    import_files(engine, profiles, now)
    return notify_changes(engine, profiles, now, channels,
                          summary_after=settings.alerts.summary_after)


def digests_step(settings: Settings, engine: Engine, now: datetime, channels: Iterable[str]) -> int:
    """Enqueue the digests due now by the ``[digests]`` schedule."""
    from tracker.delivery.outbox import enqueue_digests

    return enqueue_digests(engine, now, channels, schedule=settings.digests.schedule())


async def dispatch_step(settings: Settings, engine: Engine, notifiers: Mapping[str, Notifier],
                        clock: Clock, *, stop: asyncio.Event | None = None) -> DispatchReport:
    """Send what is due, then tell the admins what the pass could not do (channels switched
    off, dead letters)."""
    from tracker.delivery.dispatch import send_due
    from tracker.delivery.operator_alerts import alert_dispatch

    report = await send_due(settings, engine, notifiers, clock, stop=stop)
    if report.outcomes:
        log.info("dispatched %s", dict(report.outcomes))
    await alert_dispatch(settings, notifiers, report)
    return report


async def run_once(settings: Settings, engine: Engine, clock: Clock,
                   notifiers: Mapping[str, Notifier],
                   progress_for: ProgressFactory = lambda _name: None) -> CycleReport:
    """One full cycle: scrape every enabled source, tell the admins of a source that turned
    red, bring every stored status to now, match what changed, enqueue, dispatch."""
    from tracker.delivery.outbox import enqueue_reminders

    channels = list(notifiers)
    # invalid profiles or subscribers stop the cycle before anything is scraped (exit 2)
    audience = await asyncio.to_thread(load_audience, settings, engine)
    scrapes = await scrape_sources(settings, Store(engine), select_sources(settings), clock,
                                   progress_for)
    await report_health(settings, engine, notifiers, (o.report.source for o in scrapes))
    moved = await asyncio.to_thread(Store(engine).refresh_statuses, clock())
    notified = await asyncio.to_thread(notify_step, settings, engine, clock(), channels,
                                       audience)
    reminders = await asyncio.to_thread(enqueue_reminders, engine, clock(), channels)
    digests = await asyncio.to_thread(digests_step, settings, engine, clock(), channels)
    sent = await dispatch_step(settings, engine, notifiers, clock)
    return CycleReport(scrapes=scrapes, notify=notified, statuses=len(moved),
                       reminders=reminders, digests=digests, dispatch=sent)
