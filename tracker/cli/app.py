"""What every command module shares: the ``App`` a command works with, the root group's
error handling (callwatch's errors → one line and the documented exit code) and the small
printing helpers.

It imports no command module, and every command module imports it, so the package has no
import cycle: ``tracker/cli/__init__.py`` builds the ``callwatch`` group and adds the
commands of each module to it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click

from tracker.errors import (
    CallwatchError,
    ConfigError,
    DatabaseUnavailable,
    NotFoundError,
    SchemaError,
)

# What a command needs is imported where it is used, not here: every command module imports
# this one, and `callwatch --version` or `--help` must not pay for SQLAlchemy, pydantic or
# rich (tests/test_startup.py checks which modules they load).
if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError

    from tracker.config import Settings
    from tracker.ports import Notifier
    from tracker.store.calls import Store

T = TypeVar("T")
log = logging.getLogger("tracker.cli")


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
        from tracker import logs
        from tracker.config import load_config

        settings = load_config(self.config_path, database_url=self.database_url)
        webhook_secret = os.environ.get(settings.notifiers.webhook.secret_env, "")
        logs.configure("DEBUG" if self.verbose else settings.log.level, settings.log.format,
                       extra_secrets=[webhook_secret])
        return settings

    @cached_property
    def engine(self) -> Any:
        from tracker.store import db

        return db.make_engine(self.settings.database.resolved_url())

    def store(self) -> Store:
        """The store, with the schema checked (and upgraded in place on SQLite)."""
        from tracker.store import db
        from tracker.store.calls import Store

        db.ensure_schema(self.engine)
        return Store(self.engine)

    def writable_store(self) -> Store:
        """The store, checked to take writes now: for commands that fetch or send first."""
        from tracker.store import db

        store = self.store()
        db.check_writable(self.engine)
        return store

    @contextlib.contextmanager
    def quiet_source_logs(self) -> Iterator[None]:
        """For a command whose table gives each source's outcome and reason (`run --once`,
        `scrape`): the sources' own log lines (each retry, each failure, each stored run:
        35 WARNING lines when the network is down) only with -v or ``log.level = "DEBUG"``.
        Errors (a scraper that crashed) are still logged; the levels are restored after."""
        loggers = [logging.getLogger(name) for name in ("scrapers", "tracker.store.calls")]
        levels = [logger.level for logger in loggers]
        if not (self.verbose or self.settings.log.level == "DEBUG"):
            for logger in loggers:
                logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)

    def notifiers(self) -> dict[str, Notifier]:
        """The configured channels (close them with ``run_closing``)."""
        from tracker.compose import build_notifiers

        return build_notifiers(self.settings, engine=self.engine)

    def now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        """Dispose of the engine if a command made one: its pooled connections would
        otherwise stay open until garbage collection (a program that embeds the CLI, or
        runs commands one after another in one process, would collect open sockets)."""
        engine = vars(self).get("engine")
        if engine is not None:
            engine.dispose()


pass_app = click.make_pass_decorator(App)


class CallwatchGroup(click.Group):
    """Turns callwatch's own errors into one clear line and the documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            fail(f"configuration error: {exc}", 2)
        except SchemaError as exc:
            fail(str(exc), 2)
        except DatabaseUnavailable as exc:
            log.debug("database unavailable", exc_info=exc)
            fail(str(exc), 3)
        except _dbapi_error() as exc:  # SQLAlchemy's, met anywhere in the command
            from tracker.store import db

            engine = vars(ctx.obj).get("engine") if isinstance(ctx.obj, App) else None
            problem = db.database_problem(exc, engine.url) if engine is not None else None
            if problem is None:  # not about the database being usable: a bug, keep its traceback
                raise
            log.debug("database error", exc_info=exc)
            fail(str(problem), 3)
        except NotFoundError as exc:
            fail(str(exc), 1)
        except CallwatchError as exc:
            fail(str(exc), 1)


class _NeverRaised(Exception):
    """Stands for SQLAlchemy's DBAPIError while SQLAlchemy is not loaded (nothing raised it)."""


def _dbapi_error() -> type[DBAPIError]:
    """SQLAlchemy's ``DBAPIError``, without importing SQLAlchemy for a command that did not
    (``--help``, ``profiles check``): an ``except`` clause is evaluated only when reached."""
    loaded = sys.modules.get("sqlalchemy.exc")
    return cast("type[DBAPIError]", loaded.DBAPIError if loaded is not None else _NeverRaised)


def fail(message: str, code: int) -> NoReturn:
    """One line on standard error, then exit with ``code``."""
    click.echo(f"callwatch: {message}", err=True)
    sys.exit(code)


def check_command(group: click.Group) -> Callable[[Callable[..., None]], click.Command]:
    """``GROUP check [PATH...]`` (profiles, subscribers): validate YAML files or directories of
    them; the function takes the App and the paths, and calls ``exit_on_problems``."""
    paths = click.argument("paths", nargs=-1, type=click.Path(path_type=Path))

    def make(function: Callable[..., None]) -> click.Command:
        return group.command("check")(paths(pass_app(function)))

    return make


def exit_on_problems(problems: Sequence[object], summary: str, *, listed_on_stderr: bool) -> None:
    """List each problem, then ``summary`` on standard error, and exit 2 (bad files are bad
    usage); nothing when there are none."""
    for problem in problems:
        click.echo(str(problem), err=listed_on_stderr)
    if problems:
        click.echo(summary, err=True)
        sys.exit(2)


def run_closing(notifiers: dict[str, Notifier], work: Awaitable[T]) -> T:
    """Run ``work`` in a new event loop, then close the channels it used, also on an error."""
    import asyncio

    from tracker.pipeline import close_notifiers

    async def go() -> T:
        try:
            return await work
        finally:
            await close_notifiers(notifiers)

    return asyncio.run(go())


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def utc_minute(value: datetime | None) -> str:
    """``2026-11-25 12:00`` in UTC: the one form of every time a command prints in a table
    (the header or the title says "UTC"); nothing for None."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else ""


def utc_day(value: datetime | None) -> str:
    """``2026-11-25``: the day of ``utc_minute``, the short form a narrow table shows."""
    return utc_minute(value)[:10]


# -- tables ------------------------------------------------------------------------------------
#
# At 80 columns a table of every column wrapped titles 8-12 characters wide and broke ids in
# the middle, and piped output was 200 columns of box drawing. A table is now declared as
# columns that say how much they matter; ``fit_columns`` keeps what fits the terminal, and a
# pipe gets tab-separated lines.

#: the characters between two columns (" ┃ "); a table has no outer edge
GAP = 3

#: ``--format`` of a command that prints a table: the default is ``table`` on a terminal and
#: ``plain`` (tab-separated, a header line first) when standard output is not one
TABLE_FORMATS = ("table", "plain")


@dataclass(frozen=True)
class Column:
    """One column a table may show, and what may happen to it when the terminal is narrow.

    A column that does not wrap keeps each value on one line (an id is never split); a
    wrapping one (a title, a reason) takes the room the others leave.
    """

    #: the field of each row it shows
    key: str
    header: str
    #: 0: always shown; the higher, the sooner it is shortened or dropped when space is short
    priority: int = 0
    wraps: bool = False
    #: a wrapping column's narrowest width (less when its widest value is narrower)
    min_width: int = 24
    #: a narrower form of the column (another key and header), shown before it is dropped
    short: Column | None = None
    #: the room it needs, set by ``measure``: its widest value, or a wrapping one's minimum
    width: int = 0


def measure(columns: Sequence[Column], rows: Sequence[Mapping[str, str]]) -> list[Column]:
    """``columns`` (and their short forms) with the width each needs to show ``rows``."""
    from rich.cells import cell_len

    def widest(column: Column) -> int:
        texts = [column.header, *(str(row.get(column.key, "")) for row in rows)]
        return max(cell_len(line) for text in texts for line in (text.splitlines() or [""]))

    def sized(column: Column) -> Column:
        width = widest(column)
        short = sized(column.short) if column.short is not None else None
        return replace(column, short=short,
                       width=min(width, column.min_width) if column.wraps else width)

    return [sized(column) for column in columns]


def table_width(columns: Sequence[Column], gap: int = GAP) -> int:
    """The width ``columns`` need side by side (their measured widths and the gaps)."""
    return sum(c.width for c in columns) + gap * max(len(columns) - 1, 0)


def fit_columns(columns: Sequence[Column], width: int, gap: int = GAP) -> list[Column]:
    """The columns to show in ``width`` characters, in their order (pure; widths measured).

    While the table is too wide, the least important column left (the highest priority
    number, the rightmost of equals) gives way: to its short form if it has one, else it
    is dropped. Columns of priority 0 always stay, so a terminal too narrow even for them
    gets them all and wraps as it can.
    """
    chosen = list(columns)
    while table_width(chosen, gap) > width:
        movable = [i for i, c in enumerate(chosen) if c.priority > 0]
        if not movable:
            break
        worst = max(movable, key=lambda i: (chosen[i].priority, i))
        short = chosen[worst].short
        if short is not None:
            chosen[worst] = replace(short, priority=chosen[worst].priority)
        else:
            del chosen[worst]
    return chosen


def _one_line(text: str) -> str:
    """A cell of plain output: its lines joined with " | ", no tab left."""
    return " | ".join(line.strip() for line in text.replace("\t", " ").splitlines() if line.strip())


def plain_lines(columns: Sequence[Column], rows: Sequence[Mapping[str, str]]) -> list[str]:
    """Tab-separated lines, the header first: every column in full, for a pipe or a script."""
    return ["\t".join(c.header for c in columns),
            *("\t".join(_one_line(str(row.get(c.key, ""))) for c in columns) for row in rows)]


def print_table(columns: Sequence[Column], rows: Sequence[Mapping[str, str]], *, title: str,
                fmt: str | None = None, err: bool = False, titled: bool = False) -> None:
    """Print ``rows`` on standard output (standard error with ``err``).

    ``fmt`` None is ``table`` on a terminal, ``plain`` otherwise. ``table`` fits the
    terminal's width (``COLUMNS`` when set, 80 when there is no terminal at all); ``plain``
    is tab-separated with every column, and no title unless ``titled`` (a command that
    prints several tables).
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    stream = sys.stderr if err else sys.stdout
    if fmt == "plain" or (fmt is None and not stream.isatty()):
        for line in ([title] if titled else []) + plain_lines(columns, rows):
            click.echo(line, err=err)
        return
    out = Console(stderr=err, soft_wrap=False)
    table = Table(title=title, show_edge=False, pad_edge=False)
    shown = fit_columns(measure(columns, rows), out.width)
    for column in shown:
        table.add_column(column.header, no_wrap=not column.wraps, overflow="fold",
                         min_width=column.width if column.wraps else None)
    for row in rows:  # Text: a title with [brackets] is not read as markup
        table.add_row(*(Text(str(row.get(c.key, ""))) for c in shown))
    out.print(table)


def format_option(*more: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--format``: table or plain (the default fits where the output goes), and ``more``."""
    return click.option(
        "--format", "fmt", type=click.Choice([*TABLE_FORMATS, *more]), default=None,
        help="table (the default on a terminal), plain (tab-separated, the default when "
             "piped)" + "".join(f", {name}" for name in more))

