"""Health, metrics and token-guarded feeds over HTTP, served inside the daemon's event loop.

``start_health_server(settings, engine, scheduler_alive)`` listens on ``health.listen``
(nothing when it is empty) and serves:

- ``/healthz``: 200 when the scheduler is alive and no enabled source is red, else 503; a
  JSON body says which and why. A source is **red** after ``drift.RED_AFTER`` (3) failed or
  suspicious runs in a row (``tracker.store.drift.source_health``, the same rule as the operator
  alert); a partial run breaks the streak, because data still arrives. Each source's state
  is its ``tracker.source_status.SourceStatus``, as `callwatch status` and `sources` show it.
- ``/metrics``: Prometheus text (prometheus-client). Every value is computed from the
  database at each scrape by a custom collector, not counted in process memory, so the
  daemon, a standby and a one-off `callwatch scrape` all agree, and a restart resets nothing.
- ``/feeds/<profile>.ics`` and ``/feeds/<profile>.atom``: the profile's calendar and Atom
  feed, only with the profile's secret ``?token=…`` (``callwatch export token``). A missing
  or wrong token and an unknown profile get the same 404, so the URL reveals nothing. The
  access log is off: it would write the tokens to the logs.
- ``/unsubscribe/<token>`` (GET: a confirm button; POST: ends that subscription, the
  one-click target of every email's List-Unsubscribe) and ``/manage/<token>``: the links of
  every email's footer (``tracker.delivery.unsubscribe``; the web app will serve the same
  URLs). An unknown token gets the same 404 as a wrong feed token.

Database reads are synchronous (SQLAlchemy) and run in a worker thread, so a slow query
never stalls the scheduler sharing the loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jinja2
import sqlalchemy as sa
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy.engine import Engine

from tracker.config import Settings
from tracker.delivery import unsubscribe
from tracker.delivery.dispatch import backlog
from tracker.delivery.outbox import DEAD, PENDING, SENDING
from tracker.errors import ConfigError, NotFoundError
from tracker.exports import formats, reading
from tracker.models import RunOutcome
from tracker.source_status import SourceStatus, read_statuses
from tracker.store.calls import Store
from tracker.store.db import calls_table, changes_table, deliveries_table
from tracker.store.db import source_runs_table as runs_table
from tracker.store.drift import RED_AFTER
from tracker.store.heartbeat import read_heartbeat

log = logging.getLogger(__name__)

# -- health (pure) -------------------------------------------------------------------------

@dataclass(frozen=True)
class HealthReport:
    """Whether callwatch is healthy, and every reason it is not."""

    scheduler_alive: bool
    #: the watched (enabled) sources; a disabled one does not count
    sources: Sequence[SourceStatus] = ()

    @property
    def red_sources(self) -> list[str]:
        return sorted(status.name for status in self.sources if status.red)

    @property
    def healthy(self) -> bool:
        return self.scheduler_alive and not self.red_sources

    @property
    def reasons(self) -> list[str]:
        reasons = [] if self.scheduler_alive else ["the scheduler is not running"]
        reasons += [f"source {status.name} is red: {status.bad_in_a_row} failed or suspicious "
                    "runs in a row" for status in sorted(self.sources, key=lambda s: s.name)
                    if status.red]
        return reasons

    def as_json(self) -> dict[str, Any]:
        """The body of /healthz: a source is ``red`` or ``ok`` (amber is ok here)."""
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "scheduler": "alive" if self.scheduler_alive else "down",
            "reasons": self.reasons,
            "sources": {
                status.name: {"state": "red" if status.red else "ok",
                              "failed_in_a_row": status.bad_in_a_row,
                              "last_outcome": status.last_outcome}
                for status in sorted(self.sources, key=lambda s: s.name)
            },
        }


def enabled_sources(settings: Settings) -> list[str]:
    """The sources whose health counts: the enabled ones (a disabled source is not watched)."""
    return sorted(name for name, source in settings.sources.items() if source.enabled)


def check_health(settings: Settings, engine: Engine, scheduler_alive: bool) -> HealthReport:
    """The health report for the enabled sources of ``settings``."""
    watched = dict.fromkeys(enabled_sources(settings), True)
    return HealthReport(scheduler_alive=scheduler_alive,
                        sources=read_statuses(Store(engine), watched))


# -- metrics -------------------------------------------------------------------------------

class DatabaseCollector(Collector):
    """Prometheus metrics read from callwatch's tables at each scrape.

    Counters are totals over the whole run log and change history, so every process that
    reads the same database reports the same numbers.
    """

    def __init__(self, engine: Engine, sources: Sequence[str]) -> None:
        self.engine = engine
        self.sources = list(sources)

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: registering must not query the database."""
        return []

    def collect(self) -> Iterable[Metric]:
        runs = CounterMetricFamily("callwatch_source_runs", "Scrapes by source and outcome.",
                                   labels=["source", "outcome"])
        failures = CounterMetricFamily("callwatch_source_failures",
                                       "Failed or suspicious scrapes by source.", labels=["source"])
        items = CounterMetricFamily("callwatch_source_items", "Items seen by all scrapes of a source.",
                                    labels=["source"])
        changes = CounterMetricFamily("callwatch_call_changes",
                                      "Change events recorded, by source and kind.",
                                      labels=["source", "kind"])
        last_success = GaugeMetricFamily("callwatch_source_last_success_timestamp_seconds",
                                         "When the last ok scrape of a source finished (Unix time).",
                                         labels=["source"])
        in_a_row = GaugeMetricFamily("callwatch_source_failed_in_a_row",
                                     "Failed or suspicious scrapes in a row (red at "
                                     f"{RED_AFTER}).", labels=["source"])
        red = GaugeMetricFamily("callwatch_source_red", "1 when the source's health is red.",
                                labels=["source"])
        calls = GaugeMetricFamily("callwatch_calls", "Stored calls by source and status.",
                                  labels=["source", "status"])
        deliveries = GaugeMetricFamily("callwatch_deliveries",
                                       "Outbox messages by channel and status (sent and dead only grow).",
                                       labels=["channel", "status"])
        queued = GaugeMetricFamily("callwatch_outbox_backlog",
                                   "Messages waiting to be sent (pending or being sent).")
        dead = GaugeMetricFamily("callwatch_dead_letters", "Messages that will not be sent.")
        heartbeat = GaugeMetricFamily("callwatch_scheduler_heartbeat_timestamp_seconds",
                                      "The scheduler's last heartbeat (Unix time).")
        with self.engine.connect() as connection:
            for source, outcome, count in connection.execute(
                    sa.select(runs_table.c.source, runs_table.c.outcome, sa.func.count())
                    .group_by(runs_table.c.source, runs_table.c.outcome)
                    .order_by(runs_table.c.source, runs_table.c.outcome)):
                runs.add_metric([source, outcome], count)
            for source, count in connection.execute(
                    sa.select(runs_table.c.source, sa.func.count())
                    .where(runs_table.c.outcome.in_([RunOutcome.FAILED.value,
                                                     RunOutcome.SUSPICIOUS.value]))
                    .group_by(runs_table.c.source).order_by(runs_table.c.source)):
                failures.add_metric([source], count)
            for source, seen in connection.execute(
                    sa.select(runs_table.c.source,
                              sa.func.coalesce(sa.func.sum(runs_table.c.items_seen), 0))
                    .group_by(runs_table.c.source).order_by(runs_table.c.source)):
                items.add_metric([source], seen)
            for source, kind, count in connection.execute(
                    sa.select(calls_table.c.source, changes_table.c.kind, sa.func.count())
                    .join(calls_table, calls_table.c.id == changes_table.c.call_id)
                    .group_by(calls_table.c.source, changes_table.c.kind)
                    .order_by(calls_table.c.source, changes_table.c.kind)):
                changes.add_metric([source, kind], count)
            for source, status, count in connection.execute(
                    sa.select(calls_table.c.source, calls_table.c.status, sa.func.count())
                    .group_by(calls_table.c.source, calls_table.c.status)
                    .order_by(calls_table.c.source, calls_table.c.status)):
                calls.add_metric([source, status], count)
            for channel, status, count in connection.execute(
                    sa.select(deliveries_table.c.channel, deliveries_table.c.status, sa.func.count())
                    .group_by(deliveries_table.c.channel, deliveries_table.c.status)
                    .order_by(deliveries_table.c.channel, deliveries_table.c.status)):
                deliveries.add_metric([channel, status], count)
        for status in read_statuses(Store(self.engine), dict.fromkeys(self.sources, True)):
            if status.last_success is not None:
                last_success.add_metric([status.name], status.last_success.timestamp())
            in_a_row.add_metric([status.name], status.bad_in_a_row)
            red.add_metric([status.name], 1 if status.red else 0)
        by_status = backlog(self.engine)
        queued.add_metric([], by_status.get(PENDING, 0) + by_status.get(SENDING, 0))
        dead.add_metric([], by_status.get(DEAD, 0))
        beat = read_heartbeat(self.engine)
        if beat is not None and beat.stopped_at is None:
            heartbeat.add_metric([], beat.beat_at.timestamp())
        return [runs, failures, items, changes, last_success, in_a_row, red, calls, deliveries,
                queued, dead, heartbeat]


def metrics_registry(engine: Engine, sources: Sequence[str]) -> CollectorRegistry:
    """A registry holding only callwatch's database collector (no process metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(engine, sources))
    return registry


# -- the server ----------------------------------------------------------------------------

FEED_TYPES = {
    "ics": "text/calendar; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
}
_NOT_FOUND = "not found\n"


class HealthServer:
    """A running (or, when ``health.listen`` is empty, absent) health server."""

    def __init__(self, runner: web.AppRunner | None = None) -> None:
        self._runner = runner

    @property
    def url(self) -> str | None:
        """``http://host:port`` it listens on (the real port when configured with 0); None if off."""
        if self._runner is None or not self._runner.addresses:
            return None
        host, port = self._runner.addresses[0][:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop listening and finish open requests."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _feed_body(settings: Settings, engine: Engine, profile: str, kind: str,
               token: str | None) -> bytes | None:
    """The feed, or None when the token or profile is wrong (the caller answers 404)."""
    if not reading.token_is_valid(engine, profile, token):
        return None
    try:
        reading.check_profile(settings, engine, profile)
    except NotFoundError:
        return None
    items = reading.profile_items(engine, profile)
    if kind == "ics":
        return formats.to_ical(items, name=f"callwatch: {profile}")
    return formats.to_atom(items, datetime.now(UTC), profile=profile)


def build_app(settings: Settings, engine: Engine,
              scheduler_alive: Callable[[], bool]) -> web.Application:
    """The aiohttp application: /healthz, /metrics, /feeds/<profile>.ics|.atom."""
    registry = metrics_registry(engine, enabled_sources(settings))

    async def healthz(_request: web.Request) -> web.Response:
        report = await asyncio.to_thread(check_health, settings, engine, scheduler_alive())
        return web.json_response(report.as_json(), status=200 if report.healthy else 503,
                                 headers={"Cache-Control": "no-store"})

    async def metrics(_request: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def feed(request: web.Request) -> web.Response:
        profile, _, kind = request.match_info["name"].rpartition(".")
        body = None
        if profile and kind in FEED_TYPES:
            body = await asyncio.to_thread(_feed_body, settings, engine, profile, kind,
                                           request.query.get("token"))
        if body is None:
            return web.Response(status=404, text=_NOT_FOUND)
        return web.Response(body=body, headers={
            "Content-Type": FEED_TYPES[kind],
            "Cache-Control": "private, max-age=300",
            "Referrer-Policy": "no-referrer",  # the URL holds the token
        })

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/feeds/{name}", feed)
    add_subscription_pages(app, engine)
    return app


# -- the subscription pages: unsubscribe (one-click) and manage ----------------------------

#: the pages hold a secret in their URL and have no script: nothing loads from elsewhere,
#: the forms post only back here, no other site may frame them or see the URL as referrer
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
_MODES = {"instant": "instant alerts", "daily": "daily digest", "weekly": "weekly digest"}


@functools.cache
def _pages() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("tracker.service", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, auto_reload=False)


def _page(name: str, **values: Any) -> web.Response:
    body = _pages().get_template(name).render(**values)
    return web.Response(text=body, content_type="text/html", charset="utf-8",
                        headers=PAGE_HEADERS)


def add_subscription_pages(app: web.Application, engine: Engine) -> None:
    """``/unsubscribe/{token}`` (GET: a confirm button; POST: ends that subscription, the
    RFC 8058 one-click target) and ``/manage/{token}``: thin over
    ``tracker.delivery.unsubscribe``, whose docstring fixes the URL shapes the web app keeps.

    GET never unsubscribes: mail scanners and link previews fetch every link. An unknown
    token gets the same 404 as any other unknown URL here.
    """

    def answer(view: unsubscribe.SubscriptionView | None, token: str) -> web.Response:
        if view is None:
            return web.Response(status=404, text=_NOT_FOUND, headers=PAGE_HEADERS)
        return _page("unsubscribe.html", view=view, mode=_MODES.get(view.mode, view.mode),
                     manage_path=f"../manage/{quote(token, safe='')}")

    async def unsubscribe_page(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        return answer(await asyncio.to_thread(unsubscribe.find_subscription, engine, token),
                      token)

    async def unsubscribe_now(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        view = await asyncio.to_thread(unsubscribe.unsubscribe, engine, token, datetime.now(UTC))
        if view is not None:
            log.info("unsubscribed from a link subscriber=%s profile=%s", view.subscriber,
                     view.profile)
        return answer(view, token)

    async def manage_page(request: web.Request) -> web.Response:
        views = await asyncio.to_thread(unsubscribe.manage_view, engine, request.match_info["token"])
        if views is None:
            return web.Response(status=404, text=_NOT_FOUND, headers=PAGE_HEADERS)
        rows = [(view, _MODES.get(view.mode, view.mode),
                 f"../unsubscribe/{quote(view.token, safe='')}") for view in views]
        return _page("manage.html", subscriptions=rows)

    app.router.add_get(unsubscribe.UNSUBSCRIBE_PATH, unsubscribe_page)
    app.router.add_post(unsubscribe.UNSUBSCRIBE_PATH, unsubscribe_now)
    app.router.add_get(unsubscribe.MANAGE_PATH, manage_page)


async def start_health_server(settings: Settings, engine: Engine,
                              scheduler_alive: Callable[[], bool]) -> HealthServer:
    """Start serving on ``health.listen`` in the running loop; a no-op handle when it is empty.

    ``scheduler_alive`` is asked at each /healthz request. Call ``close()`` on shutdown.
    Raises ConfigError when the address cannot be bound (in use, not a local address).
    """
    address = settings.health.address()
    if address is None:
        return HealthServer()
    host, port = address
    runner = web.AppRunner(build_app(settings, engine, scheduler_alive), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"cannot listen on {settings.health.listen}: {exc.strerror or exc}",
                          key="health.listen") from exc
    server = HealthServer(runner)
    log.info("health server listening url=%s", server.url)
    return server

