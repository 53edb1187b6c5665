"""Health and metrics, the pure parts: the health rule and the database-backed metrics.

The web app serves them (``tracker.web.service_routes``: ``/healthz``, ``/metrics``, and the
token-guarded feeds beside them), in the daemon's event loop when `callwatch run` or
`worker` has ``web.listen`` set, or alone under `callwatch web`.

- **Health**: healthy when the scheduler is alive and no enabled source is red. A source is
  **red** after ``drift.RED_AFTER`` (3) failed or suspicious runs in a row
  (``tracker.store.drift.source_health``, the same rule as the operator alert); a partial
  run breaks the streak, because data still arrives. Each source's state is its
  ``tracker.source_status.SourceStatus``, as `callwatch status` and `sources` show it.
- **Metrics**: every value is computed from the database at each scrape by a custom
  collector, not counted in process memory, so the daemon, a standby and a one-off
  `callwatch scrape` all agree, and a restart resets nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy.engine import Engine

from tracker.config import Settings
from tracker.delivery.dispatch import backlog
from tracker.delivery.outbox import DEAD, PENDING, SENDING
from tracker.models import RunOutcome
from tracker.source_status import SourceStatus, read_statuses
from tracker.store.calls import Store
from tracker.store.db import calls_table, changes_table, deliveries_table
from tracker.store.db import source_runs_table as runs_table
from tracker.store.drift import RED_AFTER
from tracker.store.heartbeat import read_heartbeat

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
