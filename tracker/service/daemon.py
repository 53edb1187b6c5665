"""The daemon: ``callwatch run``, one asyncio process that runs callwatch unattended.

- **One scheduler per database.** A lock guards the scheduler: a file lock beside a SQLite
  database, a PostgreSQL advisory lock per schema on its own connection. A second ``callwatch
  run`` on the same database logs that it is waiting and stands by; it takes over when the
  first one stops (the lock is released on exit, and by the OS or PostgreSQL on a crash).
- **Schedules are built in code from config** (APScheduler 3.11, AsyncIOScheduler, memory
  job store only): each enabled source at its interval with jitter; a failing source is
  retried sooner at first (5 min, doubling) but never later than its interval, and never
  stops the others; the dispatcher every minute; digests checked every five minutes (each
  subscriber's digest is due at ``digests.hour`` local time, 08:00 unless set; weekly ones
  on ``digests.weekday``); statuses every five minutes (``Store.refresh_statuses``: a call
  whose opening date or last cut-off has passed since it was stored is opened or closed,
  and its followers told, without waiting for its source's next scrape); reminders every
  hour (each is due on its
  local day, and its idempotency key makes repeats harmless). Coalescing is on, one
  instance per job, and a misfire grace of five minutes.
- **One pacer per host for the whole process**: each scrape job opens its own HTTP client,
  and all of them are paced by the one ``HostPacer`` built with the daemon, so two sources
  on one host are ``http.delay`` apart from each other too, not only from themselves.
- **The leader tells others it lives**: a heartbeat row every minute with each job's next
  run (``callwatch status``). When ``web.listen`` is set the leader also serves the web app
  there (``tracker.web``: its pages, /healthz, /metrics and the feeds), uvicorn as a task
  of this loop (``tracker.web.serve.start_in_loop``), stopped with the schedule. A standby
  serves nothing (it would compete for the same port on one machine); `callwatch web` can
  serve the pages beside it.
- **All durable state is in callwatch's own tables** (runs, changes, the notify cursor, the
  outbox), never in the scheduler, so a restart loses and repeats nothing.
- **SIGTERM or SIGINT**: no new job starts; a running scrape is allowed to finish (its store
  step is one transaction, so it either lands whole or not at all); claimed deliveries not
  yet sent are released; the process exits within 30 seconds. A second one (Ctrl-C twice)
  cuts the running step off and exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from filelock import FileLock, Timeout
from sqlalchemy.engine import Connection, Engine

from tracker.compose import build_notifiers, host_pacer, start_bot
from tracker.config import Settings
from tracker.delivery.outbox import enqueue_reminders
from tracker.errors import CallwatchError
from tracker.memory import release_free_memory
from tracker.models import RunOutcome
from tracker.pipeline import (
    check_notifiers,
    close_notifiers,
    digests_step,
    dispatch_step,
    load_audience,
    notify_step,
    report_health,
    scrape_sources,
)
from tracker.store.calls import Store
from tracker.store.heartbeat import mark_stopped, write_heartbeat

log = logging.getLogger(__name__)

LOCK_KEY = 0x63616C6C  # "call": the high half of callwatch's advisory lock ids on PostgreSQL
STANDBY_POLL = 2.0
SHUTDOWN_GRACE = 25.0
FIRST_RETRY = timedelta(minutes=5)


def utc_now() -> datetime:
    return datetime.now(UTC)


def advisory_key(schema: str) -> int:
    """The advisory lock id of one schema: LOCK_KEY in the high 32 bits, the schema name's
    CRC-32 in the low. PostgreSQL scopes advisory locks to a database, and callwatch's
    tables live in a schema, so two installations in two schemas of one database (or tests
    running in parallel, one schema each) each get their own scheduler."""
    return (LOCK_KEY << 32) | zlib.crc32(schema.encode())


class SchedulerLock:
    """The one-scheduler-per-database lock (file lock for SQLite, advisory lock for PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._file: FileLock | None = None
        self._connection: Connection | None = None
        self._key = LOCK_KEY
        if engine.dialect.name == "sqlite":
            database = engine.url.database or ""
            path = Path(database).with_name(Path(database).name + ".scheduler.lock") \
                if database and database != ":memory:" else Path.cwd() / "callwatch.scheduler.lock"
            # not thread-local: the daemon takes and releases it from worker threads
            # (asyncio.to_thread), which need not be the same thread
            self._file = FileLock(str(path), thread_local=False)

    def try_acquire(self) -> bool:
        if self._file is not None:
            try:
                self._file.acquire(timeout=0)
            except Timeout:
                return False
            return True
        connection = self.engine.connect()
        self._key = advisory_key(str(connection.execute(sa.text("SELECT current_schema()")).scalar()))
        got = bool(connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                      {"key": self._key}).scalar())
        connection.commit()
        if got:
            self._connection = connection
        else:
            connection.close()
        return got

    def release(self) -> None:
        if self._file is not None and self._file.is_locked:
            self._file.release()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
                self._connection.commit()
            self._connection.close()
            self._connection = None


class Daemon:
    """Wires the schedule; every job composes the same pipeline steps as ``run_once``."""

    def __init__(self, settings: Settings, engine: Engine,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.stop = asyncio.Event()
        self.running: set[asyncio.Task[Any]] = set()
        self.notify_lock = asyncio.Lock()
        self.failures: dict[str, int] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self.notifiers: dict[str, Any] = {}
        #: a scrape ended since memory was last released (``_job``)
        self.scraped = False
        #: every scrape job's client is paced by this one (per host, ``http.delay``)
        self.pacer = host_pacer(settings.http)

    # -- jobs ------------------------------------------------------------------------------

    def _job(self, name: str, work: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            if self.stop.is_set():
                return
            task = asyncio.current_task()
            if task is not None:
                self.running.add(task)
            try:
                await work()
            except asyncio.CancelledError:
                if not self.stop.is_set():
                    raise
                # cut off by a second Ctrl-C: said once, not as APScheduler's traceback
                log.info("job=%s cut off by the stop", name)
            except CallwatchError as exc:
                log.error("job=%s failed: %s", name, exc)
            except Exception:
                log.exception("job=%s crashed", name)
            finally:
                if task is not None:
                    self.running.discard(task)
                # what the jobs freed goes back once none runs; garbage in cycles (parsed
                # pages) is collected first after a scrape (bench_daemon_rest.py, issue 15)
                self.scraped = self.scraped or name.startswith("scrape:")
                if not self.running:
                    release_free_memory(collect=self.scraped)
                    self.scraped = False
        return job

    async def scrape(self, name: str) -> None:
        """One source's job: the same steps as ``run_once``, for this source alone."""
        [outcome] = await scrape_sources(self.settings, Store(self.engine), [name], self.clock,
                                         pacer=self.pacer)
        report = outcome.report
        log.info("scraped source=%s outcome=%s items=%d new=%d changed=%d", name,
                 report.outcome.value, report.items_seen, report.new, report.changed)
        self._reschedule(name, ok=report.outcome is RunOutcome.OK)
        await report_health(self.settings, self.engine, self.notifiers, [name])
        await self.notify()
        await self.deliver()

    def _reschedule(self, name: str, *, ok: bool) -> None:
        """After a failure retry sooner (doubling from five minutes), never later than usual."""
        if ok:
            self.failures.pop(name, None)
            return
        failures = self.failures[name] = self.failures.get(name, 0) + 1
        interval = self.settings.sources[name].interval
        wait = min(FIRST_RETRY * (2.0 ** (failures - 1)), interval)
        if self.scheduler is not None and not self.stop.is_set():
            job = self.scheduler.get_job(f"scrape:{name}")
            if job is not None:
                job.modify(next_run_time=self.clock() + wait)
        log.warning("source=%s failed %d time(s) in a row; next try in %s", name, failures, wait)

    async def notify(self) -> None:
        async with self.notify_lock:
            await asyncio.to_thread(notify_step, self.settings, self.engine, self.clock(),
                                    list(self.notifiers))

    async def deliver(self) -> None:
        await dispatch_step(self.settings, self.engine, self.notifiers, self.clock, stop=self.stop)

    async def digests(self) -> None:
        async with self.notify_lock:
            await asyncio.to_thread(digests_step, self.settings, self.engine, self.clock(),
                                    list(self.notifiers))
        await self.deliver()

    async def heartbeat(self) -> None:
        """Tell `callwatch status` and /healthz, in other processes, that this scheduler lives
        and when each job runs next."""
        jobs = {job.id: job.next_run_time for job in self.scheduler.get_jobs()
                if job.id != "heartbeat"} if self.scheduler is not None else {}
        await asyncio.to_thread(write_heartbeat, self.engine, self.clock(), jobs)

    def alive(self) -> bool:
        """Whether the schedule runs (asked by /healthz)."""
        return self.scheduler is not None and self.scheduler.running and not self.stop.is_set()

    async def statuses(self) -> None:
        """Store the status the clock gave each call; tell followers of the moves."""
        moved = await asyncio.to_thread(Store(self.engine).refresh_statuses, self.clock())
        if moved:
            log.info("statuses moved by the clock calls=%d", len(moved))
            await self.notify()
            await self.deliver()

    async def reminders(self) -> None:
        async with self.notify_lock:
            await asyncio.to_thread(enqueue_reminders, self.engine, self.clock(), list(self.notifiers))
        await self.deliver()

    # -- life cycle ------------------------------------------------------------------------

    def _schedule(self) -> AsyncIOScheduler:
        scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 300})
        jitter = int(self.settings.scheduler.jitter.total_seconds())
        now = self.clock()
        for name, source in self.settings.sources.items():
            if not source.enabled:
                continue
            seconds = max(int(source.interval.total_seconds()), 1)
            scheduler.add_job(self._job(f"scrape:{name}", functools.partial(self.scrape, name)),
                              IntervalTrigger(seconds=seconds, jitter=min(jitter, seconds // 2) or None),
                              id=f"scrape:{name}", next_run_time=now)
        scheduler.add_job(self._job("dispatch", self.deliver), IntervalTrigger(minutes=1),
                          id="dispatch")
        scheduler.add_job(self._job("digests", self.digests), IntervalTrigger(minutes=5),
                          id="digests", next_run_time=now + timedelta(seconds=30))
        scheduler.add_job(self._job("statuses", self.statuses), IntervalTrigger(minutes=5),
                          id="statuses", next_run_time=now + timedelta(seconds=15))
        scheduler.add_job(self._job("reminders", self.reminders), IntervalTrigger(hours=1),
                          id="reminders", next_run_time=now + timedelta(seconds=45))
        scheduler.add_job(self._job("heartbeat", self.heartbeat), IntervalTrigger(minutes=1),
                          id="heartbeat", next_run_time=now)
        return scheduler

    def _on_signal(self) -> None:
        """The first SIGTERM or SIGINT lets the running step finish; a second one (Ctrl-C
        twice) cuts it off: its store step is one transaction, so nothing is half written,
        and a delivery it had claimed is sent again once its lease expires."""
        if not self.stop.is_set():
            log.info("stopping: finishing the running step, starting nothing new "
                     "(again to stop at once)")
            self.stop.set()
            return
        log.info("stopping at once: cutting off %d running step(s)", len(self.running))
        for task in self.running:
            task.cancel()

    async def run(self) -> int:
        await self.start()
        try:
            lock = SchedulerLock(self.engine)
            if await self.standby(lock):
                await self.lead(lock)
        finally:
            await close_notifiers(self.notifiers)
            log.info("stopped")
        return 0

    async def start(self) -> None:
        """Signals, then the start-up checks (profiles and subscribers must be valid) and channels."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal)
        await asyncio.to_thread(load_audience, self.settings, self.engine)
        self.notifiers = build_notifiers(self.settings, engine=self.engine)
        await check_notifiers(self.notifiers)  # a channel that is down: a warning, not a crash

    async def standby(self, lock: SchedulerLock) -> bool:
        """Wait until ``lock`` is ours (True), or until told to stop (False)."""
        waited = False
        while not await asyncio.to_thread(lock.try_acquire):
            if not waited:
                log.warning("another callwatch run holds the scheduler lock for this database; "
                            "waiting as a standby")
                waited = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), STANDBY_POLL)
            if self.stop.is_set():
                return False
        log.info("scheduler lock acquired%s; running", " after standby" if waited else "")
        return True

    async def lead(self, lock: SchedulerLock) -> None:
        """Run the schedule, the web app and the bot until told to stop; let running
        jobs finish, record the stop, then release ``lock`` so a standby takes over."""
        bot = None  # the Telegram bot polls in this loop (None without a token or telegram off)
        web = None  # the web app, served only when web.listen is set
        scheduler = None
        try:
            # the web app first: an address that cannot be bound stops callwatch before any
            # scrape has started
            if self.settings.web_listen()[1]:  # uvicorn and Starlette only when served
                from tracker.web.serve import start_in_loop

                web = await start_in_loop(self.settings, self.engine, self.alive, self.clock)
            self.scheduler = scheduler = self._schedule()
            scheduler.start()
            bot = await start_bot(self.settings, self.engine, self.notifiers, self.clock)
            await self.stop.wait()
        finally:
            # pause, not shutdown: APScheduler's shutdown cancels the coroutine jobs still
            # running, which would cut the running scrape or dispatch off mid-step
            if scheduler is not None:
                scheduler.pause()
            if bot is not None:
                await bot.stop()
            if self.running:
                _done, pending = await asyncio.wait(set(self.running), timeout=SHUTDOWN_GRACE)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=3)
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            if web is not None:
                await web.close()
            try:  # so `callwatch status` says "stopped" at once; never a reason to keep the lock
                await asyncio.to_thread(mark_stopped, self.engine, self.clock())
            except sa.exc.SQLAlchemyError as exc:
                log.warning("could not record the stop: %s", exc)
            await asyncio.to_thread(lock.release)


def run_forever(settings: Settings, engine: Engine) -> int:
    """``callwatch run``: run until SIGTERM or SIGINT; the exit code."""
    return asyncio.run(Daemon(settings, engine).run())
