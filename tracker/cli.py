"""The ``callwatch`` command line: a thin shell over the store, config and pipeline.

Exit codes: 0 success; 1 a command ran but something failed (a source, an unknown id);
2 bad usage or bad configuration (nothing was started); 3 the database cannot be used:
unreachable, locked by another process, read-only, or not a database (nothing was started,
or the command stopped at its first database access). Each error is one line on stderr;
``-v`` logs the traceback too.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, NoReturn, TypeVar

import click
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from tracker import __version__, db, logs
from tracker.config import Settings, load_config
from tracker.dates import format_duration
from tracker.errors import (
    CallwatchError,
    ConfigError,
    DatabaseUnavailable,
    NotFoundError,
    SchemaError,
)
from tracker.models import CallStatus, RunOutcome
from tracker.store import Store
from tracker.views import (
    CSV_COLUMNS,
    call_as_json,
    call_as_row,
    call_total_text,
    deduplicated,
    format_eur,
    listed_call_as_json,
    news_items,
)

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class App:
    """What every command needs, built on first use so `--help` never reads config.

    ``clock`` is the time every command works at: the real clock, unless a program that
    embeds callwatch passes its own as the context object (``cli.main(obj=clock)``), as the
    tests do to move time across an opening date without waiting for it.
    """

    def __init__(self, config_path: str | None, database_url: str | None, verbose: bool,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.config_path = config_path
        self.database_url = database_url
        self.clock = clock
        self.verbose = verbose

    @cached_property
    def settings(self) -> Settings:
        settings = load_config(self.config_path, database_url=self.database_url)
        webhook_secret = os.environ.get(settings.notifiers.webhook.secret_env, "")
        logs.configure("DEBUG" if self.verbose else settings.log.level, settings.log.format,
                       extra_secrets=[webhook_secret])
        return settings

    @cached_property
    def engine(self) -> Any:
        return db.make_engine(self.settings.database.resolved_url())

    def store(self) -> Store:
        """The store, with the schema checked (and upgraded in place on SQLite)."""
        db.ensure_schema(self.engine)
        return Store(self.engine)

    def writable_store(self) -> Store:
        """The store, checked to take writes now: for commands that fetch or send first."""
        store = self.store()
        db.check_writable(self.engine)
        return store

    def now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        """Dispose of the engine if a command made one: its pooled connections would
        otherwise stay open until garbage collection (a program that embeds the CLI, or
        runs commands one after another in one process, would collect open sockets)."""
        engine = vars(self).get("engine")
        if engine is not None:
            engine.dispose()


class _Group(click.Group):
    """Turns callwatch's own errors into one clear line and the documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            _fail(f"configuration error: {exc}", 2)
        except SchemaError as exc:
            _fail(str(exc), 2)
        except DatabaseUnavailable as exc:
            log.debug("database unavailable", exc_info=exc)
            _fail(str(exc), 3)
        except sa.exc.DBAPIError as exc:  # SQLAlchemy's, met anywhere in the command
            engine = vars(ctx.obj).get("engine") if isinstance(ctx.obj, App) else None
            problem = db.database_problem(exc, engine.url) if engine is not None else None
            if problem is None:  # not about the database being usable: a bug, keep its traceback
                raise
            log.debug("database error", exc_info=exc)
            _fail(str(problem), 3)
        except NotFoundError as exc:
            _fail(str(exc), 1)
        except CallwatchError as exc:
            _fail(str(exc), 1)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"callwatch: {message}", err=True)
    sys.exit(code)


def _console() -> Console:
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _date(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else ""


@click.group(cls=_Group)
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="config file (default: $CALLWATCH_CONFIG, ./config/callwatch.toml, defaults)")
@click.option("--db", "database_url", help="database URL, overrides database.url")
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
@click.version_option(__version__, prog_name="callwatch")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, database_url: str | None,
        verbose: bool) -> None:
    """callwatch: tracks EU funding calls and tells clusters and SMEs what matters to them."""
    clock = ctx.obj if callable(ctx.obj) else utc_now  # an embedding program's clock
    ctx.obj = App(config_path, database_url, verbose, clock=clock)
    ctx.call_on_close(ctx.obj.close)


pass_app = click.make_pass_decorator(App)


# -- db ----------------------------------------------------------------------------------

@cli.group("db")
def db_group() -> None:
    """Database schema management."""


@db_group.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Apply pending schema migrations (needed once per release on PostgreSQL)."""
    before, after = db.upgrade(app.engine)
    if before == after:
        click.echo(f"database already at revision {after}")
    else:
        click.echo(f"database upgraded from {before or 'empty'} to {after}")


# -- calls -------------------------------------------------------------------------------

STATUS_CHOICES = ("open", "forthcoming", "closed", "all")


@cli.group("calls")
def calls_group() -> None:
    """Browse stored calls and their history."""


@calls_group.command("list")
@click.option("--status", "statuses", type=click.Choice(STATUS_CHOICES), multiple=True,
              help="repeatable; default: open and forthcoming")
@click.option("--programme", help="canonical programme name, e.g. 'Horizon Europe'")
@click.option("--source", help="configured source name")
@click.option("--search", help="text in title, summary, id or keywords")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@pass_app
def calls_list(app: App, statuses: tuple[str, ...], programme: str | None, source: str | None,
               search: str | None, fmt: str) -> None:
    """List calls, soonest final deadline first; a call seen at several sources is listed once.

    Each call's status is the one it has now by its dates, even before the cycle stores it.
    """
    wanted: list[CallStatus] | None
    if "all" in statuses:
        wanted = None
    else:
        wanted = [CallStatus(s) for s in statuses] or [CallStatus.OPEN, CallStatus.FORTHCOMING]
    now = app.now()
    calls = app.store().list_calls(statuses=wanted, programme=programme, source=source,
                                   search=search, now=now)
    listed = deduplicated(calls)  # the store keeps one record per source; show each call once
    if fmt == "json":
        _echo_json([listed_call_as_json(group, now) for group in listed])
        return
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for group in listed:
            row = call_as_row(group[0], now)
            row["source"] = " | ".join(dict.fromkeys(c.record.source for c in group))
            writer.writerow(row)
        return
    table = Table(title=f"{len(listed)} calls", show_lines=False)
    for column in ("id", "sources", "programme", "status", "next deadline (UTC)", "budget",
                   "title"):
        table.add_column(column, overflow="fold")
    for group in listed:
        r = group[0].record
        sources = ", ".join(dict.fromkeys(c.record.source for c in group))
        budget = format_eur(r.budget_eur) or call_total_text(r)  # the topic's, else the call's
        table.add_row(r.id, sources, r.programme or "", r.status.value,
                      _date(r.next_deadline(now)), budget, r.title)
    _console().print(table)


@calls_group.command("show")
@click.argument("call_id")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_app
def calls_show(app: App, call_id: str, fmt: str) -> None:
    """Show every field of one call; its news items as a dated list, newest first."""
    now = app.now()
    call = app.store().get_call(call_id, now=now)
    data = call_as_json(call, now)
    if fmt == "json":
        _echo_json(data)
        return
    news = news_items(call.record.updates)
    table = Table(show_header=False, title=data["id"])
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        if key == "updates":
            shown = f"{len(news)}, listed below (newest first)" if news else ""
        else:
            shown = _cell(value)
        table.add_row(key, shown)
    console = _console()
    console.print(table)
    if news:
        listing = Table(title=f"news and notices of {data['id']}, newest first")
        listing.add_column("date", no_wrap=True)
        listing.add_column("news", overflow="fold")
        for item in news:
            listing.add_row(item.day.isoformat() if item.day else "", item.text)
        console.print(listing)


def _cell(value: Any) -> str:
    """One field's value in the `calls show` table: a list one item a line, a document as
    ``title <url>``, nothing for an empty value."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(_cell(item) for item in value)
    if isinstance(value, dict):
        if set(value) >= {"title", "url"}:
            return f"{value['title']} <{value['url']}>"
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@calls_group.command("history")
@click.argument("call_id")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_app
def calls_history(app: App, call_id: str, fmt: str) -> None:
    """The change history of one call, oldest first."""
    changes = app.store().history(call_id)
    if fmt == "json":
        _echo_json([c.as_json() for c in changes])
        return
    table = Table(title=f"history of {call_id}")
    for column in ("at (UTC)", "kind", "field", "old", "new"):
        table.add_column(column, overflow="fold")
    for change in changes:
        table.add_row(_date(change.at), change.kind.value, change.field or "",
                      _short(change.old), _short(change.new))
    _console().print(table)


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:199] + "…"


# -- sources -----------------------------------------------------------------------------

@cli.command("sources")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--accept", "accept", metavar="NAME", default=None,
              help="After a fall you have checked is real, take NAME's latest item count as "
                   "its level: the next run at that level is ok and marks the missing calls removed.")
@pass_app
def sources_command(app: App, fmt: str, accept: str | None) -> None:
    """Every configured source with its schedule and health."""
    from tracker.plugins import source_plugins

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
    for name, settings in app.settings.sources.items():
        kind = settings.kind or name
        health = store.health(name)
        last = health.last_run
        rows.append({
            "name": name,
            "kind": kind,
            "description": plugins[kind].description,
            "enabled": settings.enabled,
            "interval": format_duration(settings.interval),
            "last_run": last.finished_at.isoformat() if last and last.finished_at else None,
            "last_success": health.last_success.isoformat() if health.last_success else None,
            "outcome": last.outcome.value if last else None,
            "items": last.items_seen if last else None,
            "consecutive_failures": health.consecutive_failures,
            "health": health.state,
            "health_reason": health.reason,
            "error": last.error if last else None,
        })
    if fmt == "json":
        _echo_json(rows)
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
    _console().print(table)


# -- scrape ------------------------------------------------------------------------------

@cli.command("scrape")
@click.argument("names", nargs=-1)
@pass_app
def scrape_command(app: App, names: tuple[str, ...]) -> None:
    """Scrape the named sources once (default: every enabled source) and store the results.

    Exit code 0 when every source succeeded, 1 when any failed or was partial; the results
    of the others are stored either way.
    """
    from rich.progress import Progress as Bar

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
    _console().print(table)
    for outcome in outcomes:
        if outcome.report.error:
            click.echo(f"{outcome.report.source}: {outcome.report.error}", err=True)
    if any(o.report.outcome is not RunOutcome.OK for o in outcomes):
        sys.exit(1)


# -- rules: profiles, match, dismiss (tracker/cli_rules.py) ------------------------------

from tracker.cli_rules import dismiss_command, match_command, profiles_group  # noqa: E402 - registered after `cli` exists

cli.add_command(profiles_group)
cli.add_command(match_command)
cli.add_command(dismiss_command)

from tracker.cli_delivery import (  # noqa: E402 - registered after `cli` exists
    deliveries_command,
    digest_command,
    notify_command,
    run_command,
    subscribers_group,
    worker_command,
)

cli.add_command(subscribers_group)
cli.add_command(notify_command)
cli.add_command(digest_command)
cli.add_command(deliveries_command)
cli.add_command(run_command)
cli.add_command(worker_command)

from tracker.cli_export import export_group, status_command  # noqa: E402 - registered after `cli` exists

cli.add_command(export_group)
cli.add_command(status_command)

from tracker.cli_demo import demo_command  # noqa: E402 - registered after `cli` exists

cli.add_command(demo_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="callwatch")


if __name__ == "__main__":
    main()
