"""What every command module shares: the ``App`` a command works with, the root group's
error handling (callwatch's errors → one line and the documented exit code) and the small
printing helpers.

It imports no command module, and every command module imports it, so the package has no
import cycle: ``tracker/cli/__init__.py`` builds the ``callwatch`` group and adds the
commands of each module to it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
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
    from rich.console import Console
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


def console() -> Console:
    """Standard output for tables: 200 columns when it is not a terminal, so pipes get whole rows."""
    from rich.console import Console

    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def utc_minute(value: datetime | None) -> str:
    """``2026-11-25 12:00`` in UTC, the form of every time in a table; nothing for None."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else ""
