"""``callwatch status``: the scheduler, each source's health, the last runs, the outbox and the
next jobs, read from the database so it works beside a running daemon.

Each source's health is its ``SourceStatus`` (``tracker.source_status``), the one `callwatch
sources`, /healthz and the bot read too. The table is printed from the values themselves, the
JSON is made from the same values: nothing is turned into text and parsed back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from tracker.cli.app import App, Column, echo_json, format_option, pass_app, print_table, utc_minute
from tracker.dates import isoformat_utc

if TYPE_CHECKING:
    from tracker.health import HealthReport  # imported when used: it loads prometheus-client
    from tracker.source_status import SourceStatus
    from tracker.store.calls import SourceRun
    from tracker.store.heartbeat import Heartbeat


@dataclass(frozen=True)
class Status:
    """What `callwatch status` shows."""

    heartbeat: Heartbeat | None
    #: ``tracker.store.heartbeat.heartbeat_summary``: the scheduler's state and its next jobs in order
    scheduler: dict[str, Any]
    #: every configured source, by name
    sources: list[SourceStatus]
    #: the health of the enabled ones, as /healthz says it
    report: HealthReport
    last_runs: list[SourceRun]
    #: outbox rows by status
    backlog: dict[str, int]

    @property
    def outbox(self) -> dict[str, int]:
        by_status = self.backlog
        return {"pending": by_status.get("pending", 0), "sending": by_status.get("sending", 0),
                "sent": by_status.get("sent", 0), "dead_letters": by_status.get("dead", 0)}

    def as_json(self) -> dict[str, Any]:
        """What `callwatch status --format json` prints."""
        return {
            "healthy": self.report.healthy,
            "reasons": self.report.reasons,
            "scheduler": self.scheduler,
            "sources": [
                {"name": s.name, "enabled": s.enabled, "state": s.state,
                 "last_run": isoformat_utc(_finished(s.last_run)),
                 "outcome": s.last_outcome, "last_success": isoformat_utc(s.last_success),
                 "failed_in_a_row": _bad_in_a_row(s), "error": s.last_error}
                for s in self.sources
            ],
            "last_runs": [
                {"source": r.source, "started_at": isoformat_utc(r.started_at),
                 "finished_at": isoformat_utc(r.finished_at), "outcome": r.outcome.value,
                 "items": r.items_seen, "new": r.new, "changed": r.changed, "error": r.error}
                for r in self.last_runs
            ],
            "outbox": self.outbox,
        }


def _bad_in_a_row(status: SourceStatus) -> int:
    return status.bad_in_a_row if status.enabled else 0


def _finished(run: SourceRun | None) -> datetime | None:
    return (run.finished_at or run.started_at) if run is not None else None


def read_status(app: App) -> Status:
    """Everything `callwatch status` shows, read once."""
    from tracker.delivery.dispatch import backlog
    from tracker.health import HealthReport
    from tracker.source_status import read_statuses
    from tracker.store.heartbeat import heartbeat_summary, read_heartbeat

    store = app.store()
    heartbeat = read_heartbeat(store.engine)
    scheduler = heartbeat_summary(heartbeat, app.now())
    names = sorted(app.settings.sources)
    sources = read_statuses(store, {n: app.settings.sources[n].enabled for n in names})
    report = HealthReport(scheduler_alive=scheduler["state"] == "running",
                          sources=[s for s in sources if s.enabled])
    return Status(heartbeat=heartbeat, scheduler=scheduler, sources=sources, report=report,
                  last_runs=store.runs(limit=10), backlog=backlog(store.engine))


def _ago(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "never"
    seconds = int((now - then).total_seconds())
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def _scheduler_line(state: str, heartbeat: Heartbeat | None, now: datetime) -> str:
    if state == "never" or heartbeat is None:
        return "scheduler: not running (no `callwatch run` has run on this database)"
    if state == "running":
        return f"scheduler: running ({heartbeat.process}, last heartbeat {_ago(heartbeat.beat_at, now)})"
    if state == "stopped":
        return (f"scheduler: not running (stopped {_ago(heartbeat.stopped_at, now)}, "
                f"{heartbeat.process})")
    return (f"scheduler: not running (no heartbeat since {_ago(heartbeat.beat_at, now)}: "
            f"{heartbeat.process} crashed or hangs)")


@click.command("status")
@format_option("json")
@pass_app
def status_command(app: App, fmt: str | None) -> None:
    """The scheduler, each source's health, the last runs, the outbox and the next jobs."""

    status = read_status(app)
    if fmt == "json":
        echo_json(status.as_json())
        return
    now = app.now()
    click.echo(_scheduler_line(status.scheduler["state"], status.heartbeat, now))
    report = status.report
    click.echo("health: " + ("healthy" if report.healthy else
                             "unhealthy: " + "; ".join(report.reasons)))
    if status.scheduler["next_jobs"]:
        beat = status.heartbeat
        next_runs = {job.id: job.next_run for job in (beat.jobs if beat is not None else ())}
        print_table((Column("job", "job"), Column("next", "next run")), [
            {"job": job["id"], "next": utc_minute(next_runs[job["id"]]) or "paused"}
            for job in status.scheduler["next_jobs"]
        ], fmt=fmt, titled=True, title="next jobs (times in UTC)")
    print_table(STATUS_SOURCE_COLUMNS, [
        {"name": s.name, "enabled": "yes" if s.enabled else "no", "health": s.state,
         "last_run": utc_minute(_finished(s.last_run)) or "never", "outcome": s.last_outcome or "",
         "last_success": utc_minute(s.last_success) or "never", "in_a_row": str(_bad_in_a_row(s))}
        for s in status.sources
    ], fmt=fmt, titled=True, title="sources (times in UTC)")
    if status.last_runs:
        print_table(RUN_COLUMNS, [
            {"source": run.source, "finished": utc_minute(run.finished_at),
             "outcome": run.outcome.value, "items": str(run.items_seen), "new": str(run.new),
             "changed": str(run.changed), "error": (run.error or "")[:120]}
            for run in status.last_runs
        ], fmt=fmt, titled=True, title="last runs (times in UTC)")
    outbox = status.outbox
    click.echo(f"outbox: {outbox['pending']} pending, {outbox['sending']} being sent, "
               f"{outbox['sent']} sent, {outbox['dead_letters']} dead letters")


STATUS_SOURCE_COLUMNS = (
    Column("name", "name"), Column("enabled", "enabled", priority=4),
    Column("health", "health"), Column("last_run", "last run", priority=1),
    Column("outcome", "outcome", priority=3), Column("last_success", "last success", priority=2),
    Column("in_a_row", "failed in a row", priority=5),
)
RUN_COLUMNS = (
    Column("source", "source"), Column("finished", "finished"), Column("outcome", "outcome"),
    Column("items", "items", priority=1), Column("new", "new", priority=2),
    Column("changed", "changed", priority=3), Column("error", "error", priority=4, wraps=True,
                                                     min_width=16),
)
