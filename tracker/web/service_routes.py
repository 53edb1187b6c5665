"""The daemon's service URLs, served by the web app: /healthz, /metrics and the feeds.

These were the aiohttp health server's (``health.listen``); they keep its URLs and answers:

- ``/healthz``: 200 when the scheduler is alive and no enabled source is red, else 503,
  with a JSON body that says which and why (:class:`tracker.health.HealthReport`).
  Whether the scheduler is alive is asked of ``scheduler_alive`` at each request: the
  daemon passes its own scheduler's state; `callwatch web`, which runs none, the
  heartbeat another process writes (:func:`heartbeat_alive`).
- ``/metrics``: Prometheus text, read from the database at each scrape
  (:class:`tracker.health.DatabaseCollector`).
- ``/feeds/<profile>.ics`` and ``/feeds/<profile>.atom``: only with the profile's secret
  ``?token=…``. A missing or wrong token, an unknown profile and an unknown kind get the
  same plain ``404 not found``, so the URL reveals nothing; a feed says
  ``Referrer-Policy: no-referrer`` (its URL holds the token), which the security middleware
  keeps, as it keeps every header a route sets.

The database is read in Starlette's thread pool, so a slow query never stalls the loop the
daemon's scheduler shares.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.exposition import generate_latest
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from tracker.config import Settings
from tracker.errors import NotFoundError
from tracker.exports import formats, reading
from tracker.health import check_health, enabled_sources, metrics_registry
from tracker.store.heartbeat import read_heartbeat, scheduler_state

FEED_TYPES = {
    "ics": "text/calendar; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
}
NOT_FOUND = "not found\n"


def heartbeat_alive(engine: Engine, clock: Callable[[], datetime]) -> Callable[[], bool]:
    """Whether some process's scheduler runs, by its heartbeat row: for a process that runs
    no scheduler of its own (`callwatch web`), so its /healthz still says whether callwatch
    as a whole is being run."""
    return lambda: scheduler_state(read_heartbeat(engine), clock()) == "running"


def feed_body(settings: Settings, engine: Engine, profile: str, kind: str, token: str | None,
              now: datetime) -> bytes | None:
    """The feed, or None when the token or the profile is wrong (answered with a 404)."""
    if not reading.token_is_valid(engine, profile, token):
        return None
    try:
        reading.check_profile(settings, engine, profile)
    except NotFoundError:
        return None
    items = reading.profile_items(engine, profile)
    if kind == "ics":
        return formats.to_ical(items, name=f"callwatch: {profile}")
    return formats.to_atom(items, now, profile=profile)


class ServiceRoutes:
    """The handlers of /healthz, /metrics and /feeds/…, sharing the settings and the engine."""

    def __init__(self, settings: Settings, engine: Engine, scheduler_alive: Callable[[], bool],
                 clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.engine = engine
        self.scheduler_alive = scheduler_alive
        self.clock = clock
        # built once: registering the collector does not query the database
        self.registry = metrics_registry(engine, enabled_sources(settings))

    async def healthz(self, _request: Request) -> Response:
        report = await run_in_threadpool(
            lambda: check_health(self.settings, self.engine, self.scheduler_alive()))
        return JSONResponse(report.as_json(), status_code=200 if report.healthy else 503,
                            headers={"Cache-Control": "no-store"})

    async def metrics(self, _request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, self.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def feed(self, request: Request) -> Response:
        profile, _, kind = request.path_params["name"].rpartition(".")
        body = None
        if profile and kind in FEED_TYPES:
            body = await run_in_threadpool(feed_body, self.settings, self.engine, profile, kind,
                                           request.query_params.get("token"), self.clock())
        if body is None:
            return PlainTextResponse(NOT_FOUND, status_code=404)
        return Response(body, media_type=FEED_TYPES[kind], headers={
            "Cache-Control": "private, max-age=300",
            "Referrer-Policy": "no-referrer",  # the URL holds the token
        })

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/healthz", self.healthz, methods=["GET"], name="healthz"),
            Route("/metrics", self.metrics, methods=["GET"], name="metrics"),
            Route("/feeds/{name}", self.feed, methods=["GET"], name="feed"),
        ]
