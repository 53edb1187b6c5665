"""``callwatch sources`` (each source's schedule and health) and ``callwatch scrape``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from tracker.cli.app import App, Column, echo_json, format_option, pass_app, print_table, utc_day, utc_minute


@click.command("sources")
@format_option("json")
@click.option("--accept", "accept", metavar="NAME", default=None,
              help="After a fall you have checked is real, take NAME's latest item count as "
                   "its level: the next run at that level is ok and marks the missing calls removed.")
@pass_app
def sources_command(app: App, fmt: str | None, accept: str | None) -> None:
    """Every configured source with its schedule and health."""

    from tracker.dates import format_duration, isoformat_utc
    from tracker.plugins import source_plugins
    from tracker.source_status import configured, read_statuses

    store = app.store()
    if accept is not None:
        from tracker.pipeline import select_sources

        select_sources(app.settings, [accept])  # a source not configured: exit 2, as `scrape`
        accepted = store.accept_level(accept, app.now())
        if accepted is None:
            raise click.ClickException(f"{accept} has never run: there is no level to accept")
        click.echo(f"{accept}: {accepted.items_seen} item(s) of its latest run "
                   f"({accepted.outcome.value}) accepted as its level", err=True)
    plugins = source_plugins()
    rows: list[dict[str, Any]] = []
    statuses = read_statuses(store, configured(app.settings))
    for status in statuses:
        settings = app.settings.sources[status.name]
        kind = settings.kind or status.name
        last = status.last_run
        rows.append({
            "name": status.name,
            "kind": kind,
            "description": plugins[kind].description,
            "enabled": status.enabled,
            "interval": format_duration(settings.interval),
            "last_run": isoformat_utc(last.finished_at) if last else None,
            "last_success": isoformat_utc(status.last_success),
            "outcome": status.last_outcome,
            "items": last.items_seen if last else None,
            "consecutive_failures": status.consecutive_failures,
            "health": status.level,
            "state": status.state,
            "health_reason": status.reason,
            "error": status.last_error,
        })
    if fmt == "json":
        echo_json(rows)
        return
    shown = []
    for status, row in zip(statuses, rows, strict=True):
        last = status.last_run
        finished = last.finished_at if last else None
        shown.append({
            "name": status.name, "kind": row["kind"], "enabled": "yes" if status.enabled else "no",
            "interval": row["interval"], "last_run": utc_minute(finished) or "never",
            "last_day": utc_day(finished) or "never",
            "last_success": utc_minute(status.last_success) or "never",
            "outcome": status.last_outcome or "", "items": "" if last is None else str(last.items_seen),
            "failures": str(status.consecutive_failures), "health": status.state,
            "reason": status.reason if status.enabled else "disabled",
        })
    print_table(SOURCE_COLUMNS, shown, fmt=fmt, title="sources (times in UTC)")


#: `sources`: at 80 columns the name, its last run, items and health, and why
SOURCE_COLUMNS = (
    Column("name", "name"),
    Column("kind", "kind", priority=9),
    Column("enabled", "enabled", priority=8),
    Column("interval", "interval", priority=7),
    Column("last_run", "last run", priority=2, short=Column("last_day", "last run")),
    Column("last_success", "last success", priority=5),
    Column("outcome", "outcome", priority=6),
    Column("items", "items", priority=3),
    Column("failures", "failures", priority=4),
    Column("health", "health"),
    Column("reason", "why", priority=1, wraps=True, min_width=20),
)


@click.command("scrape")
@click.argument("names", nargs=-1)
@pass_app
def scrape_command(app: App, names: tuple[str, ...]) -> None:
    """Scrape the named sources once (default: every enabled source) and store the results.

    Exit code 0 when every source succeeded, 1 when any failed or was partial; the results
    of the others are stored either way.
    """
    import asyncio

    from rich.console import Console
    from rich.progress import Progress as Bar

    from tracker.models import RunOutcome
    from tracker.pipeline import scrape_sources, select_sources

    selected = select_sources(app.settings, names)
    store = app.writable_store()
    bars = Bar(transient=True, disable=not sys.stderr.isatty(),
               console=Console(stderr=True))

    def progress_for(name: str) -> Callable[[int, int | None], None]:
        task = bars.add_task(f"{name}: pages", total=None)
        return lambda done, total: bars.update(task, completed=done, total=total)

    with bars, app.quiet_source_logs():  # the table and the error lines say what happened
        outcomes = asyncio.run(scrape_sources(app.settings, store, selected, app.now,
                                              progress_for))
    columns = [Column(key, key) for key in ("source", "items", "new", "changed", "invalid",
                                            "seconds", "outcome")]
    print_table(columns, [
        {"source": o.report.source, "items": str(o.report.items_seen), "new": str(o.report.new),
         "changed": str(o.report.changed), "invalid": str(o.report.invalid),
         "seconds": f"{o.seconds:.1f}", "outcome": o.report.outcome.value} for o in outcomes
    ], title="scrape")
    for outcome in outcomes:
        if outcome.report.error:
            click.echo(f"{outcome.report.source}: {outcome.report.error}", err=True)
    if any(o.report.outcome is not RunOutcome.OK for o in outcomes):
        sys.exit(1)
