"""``callwatch db upgrade``: the schema migrations."""

from __future__ import annotations

import click

from tracker.cli.app import App, pass_app


@click.group("db")
def db_group() -> None:
    """Database schema management."""


@db_group.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Apply pending schema migrations (needed once per release on PostgreSQL)."""
    from tracker.store import db

    before, after = db.upgrade(app.engine)
    if before == after:
        click.echo(f"database already at revision {after}")
    else:
        click.echo(f"database upgraded from {before or 'empty'} to {after}")
