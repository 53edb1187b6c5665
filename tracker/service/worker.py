"""``callwatch worker``: one of several processes that share one database.

Every worker dispatches: it sends due deliveries from the outbox every
``dispatch.interval`` and at once when its own scheduler enqueued something, claiming rows
with ``FOR UPDATE SKIP LOCKED`` and a lease (``dispatch.lease``), so no two workers claim
the same row and the rows of a worker that dies go back to the queue when the lease runs
out. On PostgreSQL a worker without the scheduler also takes shares of a digest round
the scheduler started (``tracker.delivery.outbox.help_digest_rounds``) before each
dispatch pass, so the round's rendering is split among the workers. One worker also runs
the scheduler: the one that holds the database's scheduler lock
(``tracker.service.daemon.SchedulerLock``: the PostgreSQL advisory lock); the others stand by and
the first to see the lock free takes over. ``--no-scheduler`` makes a dispatch-only worker.

Telegram's flood limits hold across workers because on PostgreSQL the pacer keeps its
budget in the database (``notifiers.telegram.pacing``).

SIGTERM or SIGINT: the scheduler part stops as ``callwatch run`` does; the dispatcher
finishes the send in flight, gives its other claimed rows back, and the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine

from tracker.config import Settings
from tracker.pipeline import close_notifiers, dispatch_step
from tracker.service.daemon import SHUTDOWN_GRACE, Daemon, SchedulerLock, utc_now

log = logging.getLogger(__name__)


class Worker(Daemon):
    """A ``Daemon`` whose dispatcher runs all the time, scheduler or not."""

    def __init__(self, settings: Settings, engine: Engine, clock: Callable[[], datetime] = utc_now,
                 *, scheduler: bool = True) -> None:
        super().__init__(settings, engine, clock)
        self.with_scheduler = scheduler
        self.wake = asyncio.Event()

    async def deliver(self) -> None:
        """Scheduled jobs that enqueued something wake the dispatch loop instead of sending
        themselves, so one process never runs two dispatchers on one SMTP connection."""
        self.wake.set()

    def _on_signal(self) -> None:
        super()._on_signal()
        self.wake.set()

    async def dispatch_loop(self) -> None:
        """Send what is due, then sleep until woken or ``dispatch.interval`` passed."""
        from tracker.delivery.outbox import help_digest_rounds

        options = self.settings.dispatch
        while not self.stop.is_set():
            self.wake.clear()
            try:
                if self.scheduler is None:  # the scheduler's own process runs its round
                    await asyncio.to_thread(help_digest_rounds, self.engine,
                                            self.settings.digests.schedule())
            except Exception:  # a database hiccup must not end the worker; try again later
                log.exception("helping with a digest round failed")
            try:
                await dispatch_step(self.settings, self.engine, self.notifiers, self.clock,
                                    stop=self.stop)
            except Exception:  # a database hiccup must not end the worker; try again later
                log.exception("dispatch pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), options.interval.total_seconds())

    async def run(self) -> int:
        await self.start()
        dispatcher = asyncio.create_task(self.dispatch_loop())
        try:
            if self.with_scheduler:
                lock = SchedulerLock(self.engine)
                if await self.standby(lock):
                    await self.lead(lock)
            else:
                await self.stop.wait()
        finally:
            self._on_signal()  # a crash in the scheduler part stops the dispatcher too
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dispatcher, SHUTDOWN_GRACE)
            await close_notifiers(self.notifiers)
            log.info("stopped")
        return 0


def run_worker(settings: Settings, engine: Engine, *, scheduler: bool = True) -> int:
    """``callwatch worker``: run until SIGTERM or SIGINT; the exit code."""
    return asyncio.run(Worker(settings, engine, scheduler=scheduler).run())
