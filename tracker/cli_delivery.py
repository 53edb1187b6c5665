"""CLI commands for delivery: subscribers check, notify, digest, deliveries, run, worker."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from tracker.cli import App


def _console() -> Console:
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


@click.group("subscribers")
def subscribers_group() -> None:
    """Subscriber files: check them."""


@subscribers_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.pass_obj
def subscribers_check(app: App, paths: tuple[Path, ...]) -> None:
    """Validate subscriber files (default: the subscribers directory); exit 2 on any error."""
    from tracker.rules.runner import load_profiles
    from tracker.subscribers import read_subscribers

    targets = list(paths) or [Path(app.settings.subscribers.directory)]
    names = [p.name for p in load_profiles(app.settings, app.store().engine)]
    subscribers, problems = read_subscribers(
        targets, names, allow_private=app.settings.notifiers.webhook.allow_private)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) in subscribers", err=True)
        sys.exit(2)
    click.echo(f"{len(subscribers)} subscriber(s) OK")


def _notifiers(app: App) -> dict[str, Any]:
    from tracker.compose import build_notifiers

    return build_notifiers(app.settings, engine=app.engine)


@click.command("notify")
@click.pass_obj
def notify_command(app: App) -> None:
    """One dispatch pass: send every due message in the outbox."""
    from tracker.dispatch import send_due
    from tracker.pipeline import close_notifiers

    engine = app.writable_store().engine
    notifiers = _notifiers(app)

    async def go() -> Any:
        try:
            return await send_due(app.settings, engine, notifiers, app.now)
        finally:
            await close_notifiers(notifiers)

    report = asyncio.run(go())
    _print_dispatch(report)


def _print_dispatch(report: Any) -> None:
    table = Table(title="deliveries")
    for column in ("channel", "outcome", "count"):
        table.add_column(column)
    for (channel, outcome), count in sorted(report.outcomes.items()):
        table.add_row(channel, outcome, str(count))
    _console().print(table)


@click.command("digest")
@click.option("--subscriber", help="only this subscriber")
@click.option("--preview", is_flag=True, help="print the digests without sending anything")
@click.pass_obj
def digest_command(app: App, subscriber: str | None, preview: bool) -> None:
    """Build digests now (also outside their usual hour) and send them; --preview only prints."""
    from tracker.delivery import enqueue_digests, preview_digests
    from tracker.dispatch import send_due
    from tracker.pipeline import close_notifiers, sync_audience

    engine = app.writable_store().engine
    sync_audience(app.settings, engine, app.now())
    notifiers = _notifiers(app)
    if preview:
        previews = preview_digests(engine, app.now(), list(notifiers), subscriber)
        for name, mode, message in previews:
            click.echo(f"== {mode} digest for {name}: {message.subject}\n{message.text}\n")
        if not previews:
            click.echo("nothing to put in a digest")
        asyncio.run(close_notifiers(notifiers))
        return
    count = enqueue_digests(engine, app.now(), list(notifiers), subscriber=subscriber, force=True,
                            schedule=app.settings.digests.schedule())
    click.echo(f"{count} digest message(s) enqueued")

    async def go() -> Any:
        try:
            return await send_due(app.settings, engine, notifiers, app.now)
        finally:
            await close_notifiers(notifiers)

    _print_dispatch(asyncio.run(go()))


@click.command("deliveries")
@click.option("--failed", is_flag=True, help="only dead letters")
@click.option("--limit", default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def deliveries_command(app: App, failed: bool, limit: int, fmt: str) -> None:
    """The latest deliveries from the outbox, newest first."""
    import json

    from tracker.dates import isoformat_utc
    from tracker.dispatch import list_deliveries

    rows = list_deliveries(app.store().engine, failed=failed, limit=limit)
    data = [{"id": r.id, "key": r.key, "subscriber": r.subscriber_name, "channel": r.channel,
             "kind": r.kind, "call_id": r.call_id, "status": r.status, "attempts": r.attempts,
             "subject": r.message.get("subject"), "last_error": r.last_error,
             "created_at": isoformat_utc(r.created_at), "sent_at": isoformat_utc(r.sent_at)}
            for r in rows]
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    table = Table(title="dead letters" if failed else "deliveries")
    for column in ("id", "subscriber", "channel", "kind", "status", "attempts", "subject", "error"):
        table.add_column(column, overflow="fold")
    for row in data:
        table.add_row(str(row["id"]), row["subscriber"], row["channel"], row["kind"], row["status"],
                      str(row["attempts"]), row["subject"] or "", row["last_error"] or "")
    _console().print(table)


@click.command("run")
@click.option("--once", is_flag=True, help="one full cycle, then exit")
@click.pass_obj
def run_command(app: App, once: bool) -> None:
    """Run callwatch: with --once, one cycle (scrape, match, enqueue, dispatch) and exit."""
    from tracker.pipeline import close_notifiers, run_once

    if not once:
        from tracker.daemon import run_forever

        sys.exit(run_forever(app.settings, app.writable_store().engine))
    engine = app.writable_store().engine
    notifiers = _notifiers(app)

    async def go() -> Any:
        try:
            return await run_once(app.settings, engine, app.now, notifiers)
        finally:
            await close_notifiers(notifiers)

    report = asyncio.run(go())
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
    Console(stderr=True).print(table)
    failed = [o for o in report.scrapes if o.report.outcome.value != "ok"]
    sys.exit(1 if failed else 0)


@click.command("worker")
@click.option("--scheduler/--no-scheduler", default=True, show_default=True,
              help="also take the scheduler when no other process holds it")
@click.pass_obj
def worker_command(app: App, scheduler: bool) -> None:
    """Dispatch deliveries until stopped; run N of these on one PostgreSQL database."""
    from tracker.worker import run_worker

    sys.exit(run_worker(app.settings, app.writable_store().engine, scheduler=scheduler))
