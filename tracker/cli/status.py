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

from tracker.cli.app import App, console, echo_json, pass_app, utc_minute
from tracker.dates import isoformat_utc

if TYPE_CHECKING:
    from tracker.service.health import HealthReport  # imported when used: it loads aiohttp
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
                {"name": s.name, "enabled": s.enabled, "state": _state(s),
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


def _state(status: SourceStatus) -> str:
    """A source's level; ``off`` when it is disabled (not watched, so not judged)."""
    return status.level.value if status.enabled else "off"


def _bad_in_a_row(status: SourceStatus) -> int:
    return status.bad_in_a_row if status.enabled else 0


def _finished(run: SourceRun | None) -> datetime | None:
    return (run.finished_at or run.started_at) if run is not None else None


def read_status(app: App) -> Status:
    """Everything `callwatch status` shows, read once."""
    from tracker.delivery.dispatch import backlog
    from tracker.service.health import HealthReport
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
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_app
def status_command(app: App, fmt: str) -> None:
    """The scheduler, each source's health, the last runs, the outbox and the next jobs."""
    from rich.table import Table

    status = read_status(app)
    if fmt == "json":
        echo_json(status.as_json())
        return
    now = app.now()
    out = console()
    out.print(_scheduler_line(status.scheduler["state"], status.heartbeat, now), highlight=False)
    report = status.report
    health = "healthy" if report.healthy else "unhealthy: " + "; ".join(report.reasons)
    out.print(f"health: {health}", highlight=False)
    if status.scheduler["next_jobs"]:
        beat = status.heartbeat
        next_runs = {job.id: job.next_run for job in (beat.jobs if beat is not None else ())}
        jobs = Table(title="next jobs")
        jobs.add_column("job")
        jobs.add_column("next run (UTC)")
        for job in status.scheduler["next_jobs"]:
            jobs.add_row(job["id"], utc_minute(next_runs[job["id"]]) or "paused")
        out.print(jobs)
    sources = Table(title="sources")
    for column in ("name", "enabled", "health", "last run (UTC)", "outcome", "last success",
                   "failed in a row"):
        sources.add_column(column)
    for s in status.sources:
        sources.add_row(s.name, "yes" if s.enabled else "no", _state(s),
                        utc_minute(_finished(s.last_run)) or "never", s.last_outcome or "",
                        _ago(s.last_success, now), str(_bad_in_a_row(s)))
    out.print(sources)
    if status.last_runs:
        runs = Table(title="last runs")
        for column in ("source", "finished (UTC)", "outcome", "items", "new", "changed", "error"):
            runs.add_column(column, overflow="fold")
        for run in status.last_runs:
            runs.add_row(run.source, utc_minute(run.finished_at), run.outcome.value,
                         str(run.items_seen), str(run.new), str(run.changed), (run.error or "")[:120])
        out.print(runs)
    outbox = status.outbox
    out.print(f"outbox: {outbox['pending']} pending, {outbox['sending']} being sent, "
              f"{outbox['sent']} sent, {outbox['dead_letters']} dead letters", highlight=False)
