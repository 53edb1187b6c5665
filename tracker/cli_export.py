"""CLI commands for exports and operations: export ical|csv|json|atom|token, and status."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from tracker.cli import App


def _console() -> Console:
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def _write(data: bytes, output: Path | None) -> None:
    """Write to ``output`` through a temporary file (a web server serving it never sees half a
    file), or to standard output."""
    if output is None:
        click.echo(data, nl=False)
        return
    partial = output.with_name(output.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, output)
    click.echo(f"wrote {output}", err=True)


_PROFILE = click.option("--profile", "profile", metavar="NAME", help="a profile's matched calls")
_OUTPUT = click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                       help="write to FILE instead of standard output")


@click.group("export")
def export_group() -> None:
    """Export calls as a calendar, CSV, JSON or an Atom feed."""


def _profile_items(app: App, profile: str) -> list[Any]:
    from tracker import feeds

    engine = app.store().engine
    feeds.check_profile(app.settings, engine, profile)
    return feeds.profile_items(engine, profile)


def _items(app: App, profile: str | None) -> list[Any]:
    """A profile's calls, or every stored call (soonest final deadline first)."""
    from tracker import feeds

    if profile is not None:
        return _profile_items(app, profile)
    store = app.store()
    return feeds.all_items(store.engine, store.list_calls(now=app.now()))


@export_group.command("ical")
@click.option("--profile", "profile", metavar="NAME", required=True,
              help="the profile whose calls' cut-offs become events")
@_OUTPUT
@click.pass_obj
def export_ical(app: App, profile: str, output: Path | None) -> None:
    """An iCalendar file: one event per cut-off, a reminder 7 days before."""
    from tracker.exports import to_ical

    _write(to_ical(_profile_items(app, profile), name=f"callwatch: {profile}", now=app.now()),
           output)


@export_group.command("csv")
@_PROFILE
@_OUTPUT
@click.pass_obj
def export_csv(app: App, profile: str | None, output: Path | None) -> None:
    """CSV, one call a row (every stored call without --profile)."""
    from tracker.exports import to_csv

    items = _items(app, profile)
    _write(to_csv([i.call for i in items], app.now()).encode(), output)


@export_group.command("json")
@_PROFILE
@_OUTPUT
@click.pass_obj
def export_json(app: App, profile: str | None, output: Path | None) -> None:
    """JSON, an array of calls (with each call's match reasons for a profile)."""
    from tracker.exports import to_json

    items = _items(app, profile)
    _write(to_json(items, app.now(), with_reasons=profile is not None).encode(), output)


@export_group.command("atom")
@click.option("--profile", "profile", metavar="NAME", required=True,
              help="the profile whose calls become entries")
@_OUTPUT
@click.pass_obj
def export_atom(app: App, profile: str, output: Path | None) -> None:
    """An Atom feed of a profile's calls, latest change first."""
    from tracker.exports import to_atom

    _write(to_atom(_profile_items(app, profile), app.now(), profile=profile), output)


@export_group.command("token")
@click.option("--profile", "profile", metavar="NAME", required=True)
@click.option("--rotate", is_flag=True, help="replace the token: the old URLs stop working")
@click.pass_obj
def export_token(app: App, profile: str, rotate: bool) -> None:
    """The secret token of a profile's feed URLs on the health server (made on first use)."""
    from tracker import feeds

    engine = app.store().engine
    feeds.check_profile(app.settings, engine, profile)
    token = feeds.feed_token(engine, profile, app.now(), rotate=rotate)
    click.echo(token)
    listen = app.settings.health.listen
    base = f"http://{listen}" if listen else ""
    for kind in ("ics", "atom"):
        click.echo(f"{base}/feeds/{profile}.{kind}?token={token}", err=True)
    if not listen:
        click.echo("(set health.listen to serve these feeds from `callwatch run`)", err=True)


# -- status ----------------------------------------------------------------------------------

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


def _utc(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else ""


def status_data(app: App) -> dict[str, Any]:
    """What `callwatch status` shows, as one JSON-ready dict."""
    from tracker.dates import isoformat_utc
    from tracker.dispatch import backlog
    from tracker.health import HealthReport, recent_outcomes
    from tracker.heartbeat import heartbeat_summary, read_heartbeat

    store = app.store()
    engine = store.engine
    now = app.now()
    scheduler = heartbeat_summary(read_heartbeat(engine), now)
    names = sorted(app.settings.sources)
    enabled = [n for n in names if app.settings.sources[n].enabled]
    report = HealthReport(scheduler_alive=scheduler["state"] == "running",
                          outcomes=recent_outcomes(engine, enabled))
    health_json = report.as_json()
    sources = []
    for name in names:
        health = store.health(name)
        last = health.last_run
        sources.append({
            "name": name,
            "enabled": app.settings.sources[name].enabled,
            "state": health_json["sources"].get(name, {}).get("state", "off"),
            "last_run": isoformat_utc(last.finished_at or last.started_at) if last else None,
            "outcome": last.outcome.value if last else None,
            "last_success": isoformat_utc(health.last_success),
            "failed_in_a_row": health_json["sources"].get(name, {}).get("failed_in_a_row", 0),
            "error": last.error if last else None,
        })
    by_status = backlog(engine)
    return {
        "healthy": report.healthy,
        "reasons": report.reasons,
        "scheduler": scheduler,
        "sources": sources,
        "last_runs": [
            {"source": r.source, "started_at": isoformat_utc(r.started_at),
             "finished_at": isoformat_utc(r.finished_at), "outcome": r.outcome.value,
             "items": r.items_seen, "new": r.new, "changed": r.changed, "error": r.error}
            for r in store.runs(limit=10)
        ],
        "outbox": {"pending": by_status.get("pending", 0), "sending": by_status.get("sending", 0),
                   "sent": by_status.get("sent", 0), "dead_letters": by_status.get("dead", 0)},
    }


def _scheduler_line(scheduler: dict[str, Any], now: datetime) -> str:
    beat = datetime.fromisoformat(scheduler["last_heartbeat"]) if scheduler["last_heartbeat"] else None
    state = scheduler["state"]
    if state == "running":
        return f"scheduler: running ({scheduler['process']}, last heartbeat {_ago(beat, now)})"
    if state == "never":
        return "scheduler: not running (no `callwatch run` has run on this database)"
    if state == "stopped":
        stopped = datetime.fromisoformat(scheduler["stopped_at"])
        return f"scheduler: not running (stopped {_ago(stopped, now)}, {scheduler['process']})"
    return (f"scheduler: not running (no heartbeat since {_ago(beat, now)}: "
            f"{scheduler['process']} crashed or hangs)")


@click.command("status")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def status_command(app: App, fmt: str) -> None:
    """The scheduler, each source's health, the last runs, the outbox and the next jobs."""
    data = status_data(app)
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    now = app.now()
    console = _console()
    console.print(_scheduler_line(data["scheduler"], now), highlight=False)
    health = "healthy" if data["healthy"] else "unhealthy: " + "; ".join(data["reasons"])
    console.print(f"health: {health}", highlight=False)
    if data["scheduler"]["next_jobs"]:
        jobs = Table(title="next jobs")
        jobs.add_column("job")
        jobs.add_column("next run (UTC)")
        for job in data["scheduler"]["next_jobs"]:
            at = datetime.fromisoformat(job["next_run"]) if job["next_run"] else None
            jobs.add_row(job["id"], _utc(at) or "paused")
        console.print(jobs)
    sources = Table(title="sources")
    for column in ("name", "enabled", "health", "last run (UTC)", "outcome", "last success",
                   "failed in a row"):
        sources.add_column(column)
    for row in data["sources"]:
        last_run = datetime.fromisoformat(row["last_run"]) if row["last_run"] else None
        success = datetime.fromisoformat(row["last_success"]) if row["last_success"] else None
        sources.add_row(row["name"], "yes" if row["enabled"] else "no", row["state"],
                        _utc(last_run) or "never", row["outcome"] or "", _ago(success, now),
                        str(row["failed_in_a_row"]))
    console.print(sources)
    if data["last_runs"]:
        runs = Table(title="last runs")
        for column in ("source", "finished (UTC)", "outcome", "items", "new", "changed", "error"):
            runs.add_column(column, overflow="fold")
        for run in data["last_runs"]:
            finished = datetime.fromisoformat(run["finished_at"]) if run["finished_at"] else None
            runs.add_row(run["source"], _utc(finished), run["outcome"], str(run["items"]),
                         str(run["new"]), str(run["changed"]), (run["error"] or "")[:120])
        console.print(runs)
    outbox = data["outbox"]
    console.print(f"outbox: {outbox['pending']} pending, {outbox['sending']} being sent, "
                  f"{outbox['sent']} sent, {outbox['dead_letters']} dead letters", highlight=False)
