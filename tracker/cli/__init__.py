"""The ``callwatch`` command line: a thin shell over the store, config and pipeline.

Exit codes: 0 success; 1 a command ran but something failed (a source, an unknown id);
2 bad usage or bad configuration (nothing was started); 3 the database cannot be used:
unreachable, locked by another process, read-only, or not a database (nothing was started,
or the command stopped at its first database access). Each error is one line on stderr;
``-v`` logs the traceback too.

One module per group of commands (``calls``, ``sources``, ``rules``, ``delivery``, ``run``,
``export``, ``status``, ``demo``, ``database``, ``web``, ``init``); what they share (``App``, the error → exit
code handling, the printing helpers) is in ``tracker.cli.app``. This file only builds the
root group and adds their commands to it. ``main`` is the console script
(``tracker.cli:main``); ``python -m tracker`` runs it too.
"""

from __future__ import annotations

import click

from tracker import __version__
from tracker.cli import (
    calls,
    database,
    delivery,
    demo,
    export,
    init,
    rules,
    run,
    sources,
    status,
    web,
)
from tracker.cli.app import App, CallwatchGroup, pass_app, utc_now

__all__ = ["App", "cli", "main", "pass_app"]


@click.group(cls=CallwatchGroup)
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


for _command in (
    init.init_command,
    database.db_group,
    calls.calls_group,
    sources.sources_command,
    sources.scrape_command,
    rules.profiles_group,
    rules.match_command,
    rules.dismiss_command,
    delivery.subscribers_group,
    delivery.notify_command,
    delivery.digest_command,
    delivery.deliveries_command,
    run.run_command,
    run.worker_command,
    export.export_group,
    status.status_command,
    demo.demo_command,
    web.web_command,
    web.users_group,
):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="callwatch")
