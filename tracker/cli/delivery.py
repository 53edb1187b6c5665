"""Commands for delivery: ``subscribers check``, ``notify``, ``digest`` and ``deliveries``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from tracker.cli.app import (
    App,
    Column,
    check_command,
    echo_json,
    exit_on_problems,
    format_option,
    pass_app,
    print_table,
    run_closing,
    utc_minute,
)

if TYPE_CHECKING:
    from tracker.delivery.dispatch import DispatchReport


@click.group("subscribers")
def subscribers_group() -> None:
    """Subscriber files: check them; erase a member (GDPR art. 17)."""


@check_command(subscribers_group)
def subscribers_check(app: App, paths: tuple[Path, ...]) -> None:
    """Validate subscriber files (default: the subscribers directory); exit 2 on any error.

    Profiles come from the profile files and, when the database already exists, from it
    too; a check never creates a database (nor upgrades one).
    """
    from tracker.delivery.subscribers import read_subscribers
    from tracker.rules.service import load_profiles
    from tracker.store import db

    targets = list(paths) or [Path(app.settings.subscribers.directory)]
    existing = db.database_exists(app.settings.database.resolved_url())
    if existing and db.current_revision(app.engine) is None:
        existing = False  # a file or database without callwatch's tables: nothing stored
    profiles = load_profiles(app.settings, app.engine if existing else None)
    names = [p.name for p in profiles]
    subscribers, problems = read_subscribers(
        targets, names, allow_private=app.settings.notifiers.webhook.allow_private)
    exit_on_problems(problems, f"{len(problems)} problem(s) in subscribers", listed_on_stderr=True)
    click.echo(f"{len(subscribers)} subscriber(s) OK")


@subscribers_group.command("erase")
@click.argument("email")
@click.option("--tenant", required=True, help="the tenant (cluster) the member belongs to")
@pass_app
def subscribers_erase(app: App, email: str, tenant: str) -> None:
    """Erase a member by email address (GDPR art. 17): every row naming them goes.

    The same erasure as the member's "Erase my data" and a manager's member page
    (``tracker.delivery.erasure``). A subscriber that a subscriber file still lists is not
    erased (the next cycle would re-create it): remove it from the file, then run this
    again. Exit 1 when no member of the tenant has the address (or one stays).
    """
    from tracker.delivery import erasure
    from tracker.delivery.subscribers import read_subscribers

    engine = app.writable_store().engine
    with engine.connect() as connection:
        found = erasure.find_by_email(connection, tenant, email)
    if not found:
        raise click.ClickException(f"no member of {tenant} has the address {email}")
    listed, problems = read_subscribers([Path(app.settings.subscribers.directory)], None,
                                        allow_private=True)
    in_files = {s.name for s in listed}
    kept = 0
    for member in found:
        if member.origin == erasure.FILE_ORIGIN and (problems or member.name in in_files):
            kept += 1
            why = ("the subscriber files have problems: fix them first" if problems else
                   f"remove subscriber {member.name!r} from its file in "
                   f"{app.settings.subscribers.directory} first (the next cycle would re-create "
                   "it), then run this again")
            click.echo(f"not erased: {why}", err=True)
            continue
        erased = erasure.erase_subscriber(engine, member.subscriber_id)
        if erased is not None:
            click.echo(f"erased subscriber {member.name}: {erased.channels} address(es), "
                       f"{erased.subscriptions} subscription(s), {erased.opt_outs} ended, "
                       f"{erased.deliveries} outbox row(s), {erased.consents} consent record(s)")
    if kept:
        raise SystemExit(1)


@click.command("notify")
@pass_app
def notify_command(app: App) -> None:
    """One dispatch pass: send every due message in the outbox."""
    from tracker.delivery.dispatch import send_due

    engine = app.writable_store().engine
    notifiers = app.notifiers()
    _print_dispatch(run_closing(notifiers, send_due(app.settings, engine, notifiers, app.now)))


def _print_dispatch(report: DispatchReport) -> None:
    columns = (Column("channel", "channel"), Column("outcome", "outcome"), Column("count", "count"))
    print_table(columns, [{"channel": channel, "outcome": outcome, "count": str(count)}
                          for (channel, outcome), count in sorted(report.outcomes.items())],
                title="deliveries")


@click.command("digest")
@click.option("--subscriber", help="only this subscriber")
@click.option("--preview", is_flag=True, help="print the digests without sending anything")
@pass_app
def digest_command(app: App, subscriber: str | None, preview: bool) -> None:
    """Build digests now (also outside their usual hour) and send them; --preview only prints."""
    import asyncio

    from tracker.delivery.dispatch import send_due
    from tracker.delivery.outbox import enqueue_digests, preview_digests
    from tracker.pipeline import close_notifiers, sync_audience

    engine = app.writable_store().engine
    sync_audience(app.settings, engine, app.now())
    notifiers = app.notifiers()
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
    _print_dispatch(run_closing(notifiers, send_due(app.settings, engine, notifiers, app.now)))


@click.command("deliveries")
@click.option("--failed", is_flag=True, help="only dead letters")
@click.option("--limit", default=50, show_default=True)
@format_option("json")
@pass_app
def deliveries_command(app: App, failed: bool, limit: int, fmt: str | None) -> None:
    """The latest deliveries from the outbox, newest first."""

    from tracker.dates import isoformat_utc
    from tracker.delivery.dispatch import list_deliveries

    rows = list_deliveries(app.store().engine, failed=failed, limit=limit)
    data = [{"id": r.id, "key": r.key, "subscriber": r.subscriber_name, "channel": r.channel,
             "kind": r.kind, "call_id": r.call_id, "status": r.status, "attempts": r.attempts,
             "subject": r.message.get("subject"), "last_error": r.last_error,
             "created_at": isoformat_utc(r.created_at), "sent_at": isoformat_utc(r.sent_at)}
            for r in rows]
    if fmt == "json":
        echo_json(data)
        return
    shown = [{"id": str(r.id), "subscriber": r.subscriber_name, "channel": r.channel,
              "kind": r.kind, "call": r.call_id or "", "status": r.status,
              "attempts": str(r.attempts), "created": utc_minute(r.created_at),
              "subject": str(r.message.get("subject") or ""), "error": r.last_error or ""}
             for r in rows]
    print_table(DELIVERY_COLUMNS, shown, fmt=fmt,
                title=("dead letters" if failed else "deliveries") + ", newest first (times in UTC)")


#: `deliveries`: at 80 columns the row id, who, the status, the subject and the error
DELIVERY_COLUMNS = (
    Column("id", "id"),
    Column("created", "created", priority=6),
    Column("subscriber", "subscriber", priority=1),
    Column("channel", "channel", priority=2),
    Column("kind", "kind", priority=4),
    Column("call", "call", priority=5),
    Column("status", "status"),
    Column("attempts", "attempts", priority=7),
    Column("subject", "subject", wraps=True, min_width=20),
    Column("error", "error", priority=3, wraps=True, min_width=16),
)
