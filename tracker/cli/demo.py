"""CLI command ``demo``: two offline cycles over bundled sample pages into a folder you can open."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tracker.cli.app import App, fail, pass_app

DEFAULT_OUT = Path("callwatch-demo")


@click.command("demo")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="folder for what was delivered (default: a new ./callwatch-demo, "
                   "./callwatch-demo-2…); must be empty if it exists")
@click.option("--language", "language", default=None, metavar="CODE",
              help="write every subscriber's messages in this language (de, pl, …) instead "
                   "of each example subscriber's own")
@pass_app
def demo_command(app: App, out: Path | None, language: str | None) -> None:
    """Run two full cycles offline, two months apart: bundled sample pages (a few real,
    most written in the sites' shape; in the second, a deadline moved, a topic opened, a
    budget raised, a new topic), example profiles and subscribers, local SMTP, Telegram and
    webhook stand-ins; write what they received to a folder.

    Never reads your configuration or database: the demo's database is a new SQLite file
    in the output folder. Exit 1 if a source failed or a message was not delivered.
    """
    from tracker import logs
    from tracker.demo.run import DemoError, callwatch_command, format_summary, fresh_folder, run_demo

    if app.database_url:
        raise click.UsageError("demo keeps its own database in --out; drop --db")
    from tracker.i18n import LANGUAGES, normalize

    if language is not None and normalize(language) != language.lower():
        raise click.BadParameter(f"one of {', '.join(LANGUAGES)}", param_hint="--language")
    logs.configure("DEBUG" if app.verbose else "ERROR")  # skipped items are in the summary
    try:
        report = run_demo(out if out is not None else fresh_folder(DEFAULT_OUT),
                          language=language.lower() if language else None)
    except DemoError as exc:
        fail(str(exc), 2)
    click.echo(format_summary(report, callwatch_command()))
    sys.exit(0 if report.ok else 1)
