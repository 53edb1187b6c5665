"""``callwatch sources`` (each source's schedule and health) and ``callwatch scrape``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from tracker.cli.app import App, console, echo_json, pass_app


@click.command("sources")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--accept", "accept", metavar="NAME", default=None,
              help="After a fall you have checked is real, take NAME's latest item count as "
                   "its level: the next run at that level is ok and marks the missing calls removed.")
@pass_app
def sources_command(app: App, fmt: str, accept: str | None) -> None:
    """Every configured source with its schedule and health."""
    from rich.table import Table

    from tracker.dates import format_duration
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
    for status in read_statuses(store, configured(app.settings)):
        settings = app.settings.sources[status.name]
        kind = settings.kind or status.name
        last = status.last_run
        rows.append({
            "name": status.name,
            "kind": kind,
            "description": plugins[kind].description,
            "enabled": status.enabled,
            "interval": format_duration(settings.interval),
            "last_run": last.finished_at.isoformat() if last and last.finished_at else None,
            "last_success": status.last_success.isoformat() if status.last_success else None,
            "outcome": status.last_outcome,
            "items": last.items_seen if last else None,
            "consecutive_failures": status.consecutive_failures,
            "health": status.level,
            "health_reason": status.reason,
            "error": status.last_error,
        })
    if fmt == "json":
        echo_json(rows)
        return
    table = Table(title="sources")
    for column in ("name", "kind", "enabled", "interval", "last run (UTC)", "last success",
                   "outcome", "items", "failures", "health"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"], row["kind"], "yes" if row["enabled"] else "no", row["interval"],
            (row["last_run"] or "never")[:16], (row["last_success"] or "never")[:16],
            row["outcome"] or "", "" if row["items"] is None else str(row["items"]),
            str(row["consecutive_failures"]), f"{row['health']}: {row['health_reason']}",
        )
    console().print(table)


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
    from rich.table import Table

    from tracker.models import RunOutcome
    from tracker.pipeline import scrape_sources, select_sources

    selected = select_sources(app.settings, names)
    store = app.writable_store()
    bars = Bar(transient=True, disable=not sys.stderr.isatty(),
               console=Console(stderr=True))

    def progress_for(name: str) -> Callable[[int, int | None], None]:
        task = bars.add_task(f"{name}: pages", total=None)
        return lambda done, total: bars.update(task, completed=done, total=total)

    with bars:
        outcomes = asyncio.run(scrape_sources(app.settings, store, selected, app.now,
                                              progress_for))
    table = Table(title="scrape")
    for column in ("source", "items", "new", "changed", "invalid", "seconds", "outcome"):
        table.add_column(column)
    for outcome in outcomes:
        r = outcome.report
        table.add_row(r.source, str(r.items_seen), str(r.new), str(r.changed), str(r.invalid),
                      f"{outcome.seconds:.1f}", r.outcome.value)
    console().print(table)
    for outcome in outcomes:
        if outcome.report.error:
            click.echo(f"{outcome.report.source}: {outcome.report.error}", err=True)
    if any(o.report.outcome is not RunOutcome.OK for o in outcomes):
        sys.exit(1)
