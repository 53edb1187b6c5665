"""``callwatch run`` (the daemon, or one cycle with ``--once``) and ``callwatch worker``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from tracker.cli.app import App, pass_app, run_closing

if TYPE_CHECKING:
    from rich.table import Table

    from tracker.pipeline import CycleReport


@click.command("run")
@click.option("--once", is_flag=True, help="one full cycle, then exit")
@pass_app
def run_command(app: App, once: bool) -> None:
    """Run callwatch: with --once, one cycle (scrape, match, enqueue, dispatch) and exit."""
    from rich.console import Console

    from tracker.pipeline import run_once

    if not once:
        from tracker.service.daemon import run_forever

        sys.exit(run_forever(app.settings, app.writable_store().engine))
    engine = app.writable_store().engine
    notifiers = app.notifiers()
    report = run_closing(notifiers, run_once(app.settings, engine, app.now, notifiers))
    Console(stderr=True).print(_cycle_table(report))
    failed = [o for o in report.scrapes if o.report.outcome.value != "ok"]
    sys.exit(1 if failed else 0)


def _cycle_table(report: CycleReport) -> Table:
    """What one cycle did, step by step."""
    from rich.table import Table

    table = Table(title="cycle")
    for column in ("step", "result"):
        table.add_column(column)
    for outcome in report.scrapes:
        r = outcome.report
        table.add_row(f"scrape {r.source}", f"{r.outcome.value}: {r.items_seen} items, {r.new} new, "
                      f"{r.changed} changed, {r.invalid} invalid")
    table.add_row("statuses", f"{report.statuses} moved by the clock (opened or closed)")
    n = report.notify
    table.add_row("match", f"{n.changes} changes, {n.matches} matches ({n.new_matches} new)")
    table.add_row("enqueue", f"{n.alerts} alerts, {n.digest_entries} digest entries, "
                  f"{report.reminders} reminders, {report.digests} digests")
    table.add_row("dispatch", ", ".join(f"{c} {o}: {k}" for (c, o), k in
                                        sorted(report.dispatch.outcomes.items())) or "nothing due")
    return table


@click.command("worker")
@click.option("--scheduler/--no-scheduler", default=True, show_default=True,
              help="also take the scheduler when no other process holds it")
@pass_app
def worker_command(app: App, scheduler: bool) -> None:
    """Dispatch deliveries until stopped; run N of these on one PostgreSQL database."""
    from tracker.service.worker import run_worker

    sys.exit(run_worker(app.settings, app.writable_store().engine, scheduler=scheduler))
