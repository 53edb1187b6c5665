"""``callwatch run`` (the daemon, or one cycle with ``--once``) and ``callwatch worker``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from tracker.cli.app import App, Column, pass_app, print_table, run_closing

if TYPE_CHECKING:
    from tracker.pipeline import CycleReport
    from tracker.store.calls import RunReport


@click.command("run")
@click.option("--once", is_flag=True, help="one full cycle, then exit")
@pass_app
def run_command(app: App, once: bool) -> None:
    """Run callwatch: with --once, one cycle (scrape, match, enqueue, dispatch) and exit.

    With --once the cycle's table on standard error gives each source's outcome and, for
    one that failed, why; the sources' own log lines (each retry, each invalid item) are
    shown with -v. The daemon logs them all. Ctrl-C stops the daemon after the running
    step; a second Ctrl-C stops it at once.
    """
    from tracker.pipeline import run_once

    if not once:
        from tracker.service.daemon import run_forever

        try:
            sys.exit(run_forever(app.settings, app.writable_store().engine))
        except KeyboardInterrupt:  # Ctrl-C before the daemon took the signal over
            sys.exit(130)
    engine = app.writable_store().engine
    notifiers = app.notifiers()
    with app.quiet_source_logs():
        report = run_closing(notifiers, run_once(app.settings, engine, app.now, notifiers))
    print_table(CYCLE_COLUMNS, cycle_rows(report), title="cycle", err=True)
    failed = [o for o in report.scrapes if o.report.outcome.value != "ok"]
    if (failed or any(o.report.invalid for o in report.scrapes)) and not app.verbose:
        click.echo("(-v logs every retry and each invalid item)", err=True)
    sys.exit(1 if failed else 0)


CYCLE_COLUMNS = (Column("step", "step"), Column("result", "result", wraps=True))


def scrape_result(report: RunReport) -> str:
    """One source's row of the cycle table: its outcome, why when it was not ok, its counts."""
    counts = (f"{report.items_seen} items, {report.new} new, {report.changed} changed, "
              f"{report.invalid} invalid")
    if report.outcome.value == "ok":
        return f"ok: {counts}"
    return f"{report.outcome.value}: {report.error or 'no reason given'} ({counts})"


def cycle_rows(report: CycleReport) -> list[dict[str, str]]:
    """What one cycle did, step by step."""
    n = report.notify
    dispatched = ", ".join(f"{c} {o}: {k}" for (c, o), k in sorted(report.dispatch.outcomes.items()))
    return [
        *({"step": f"scrape {o.report.source}", "result": scrape_result(o.report)}
          for o in report.scrapes),
        {"step": "statuses", "result": f"{report.statuses} moved by the clock (opened or closed)"},
        {"step": "match", "result": f"{n.changes} changes, {n.matches} matches ({n.new_matches} new)"},
        {"step": "enqueue", "result": f"{n.alerts} alerts, {n.digest_entries} digest entries, "
                                      f"{report.reminders} reminders, {report.digests} digests"},
        {"step": "dispatch", "result": dispatched or "nothing due"},
    ]


@click.command("worker")
@click.option("--scheduler/--no-scheduler", default=True, show_default=True,
              help="also take the scheduler when no other process holds it")
@pass_app
def worker_command(app: App, scheduler: bool) -> None:
    """Dispatch deliveries until stopped; run N of these on one PostgreSQL database."""
    from tracker.service.worker import run_worker

    sys.exit(run_worker(app.settings, app.writable_store().engine, scheduler=scheduler))
