"""``callwatch init DIR``: a starting config, one example profile and one example subscriber."""

from __future__ import annotations

from pathlib import Path

import click

from tracker.cli.app import fail


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init_command(directory: Path) -> None:
    """Write DIRECTORY/callwatch.toml, an example profile and an example subscriber.

    Nothing is overwritten: when any of the files exists, nothing is written and the
    command exits 1 naming it. The config is rendered from the settings (each key with its
    help); then `callwatch --config DIRECTORY/callwatch.toml profiles check` and `run --once`.
    """
    from tracker.starter import CONFIG, starter_files

    files = {directory / name: text for name, text in starter_files().items()}
    existing = [path for path in files if path.exists() or path.is_symlink()]
    if existing:
        fail(f"{existing[0]} exists: callwatch init never overwrites a file (nothing was "
             "written; choose another directory or move it away)", 1)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as handle:  # "x": never over a file made meanwhile
            handle.write(text)
        click.echo(f"wrote {path}")
    config = directory / CONFIG
    click.echo(f"next: callwatch --config {config} profiles check, then "
               f"callwatch --config {config} run --once", err=True)
