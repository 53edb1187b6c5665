"""``callwatch export ical|csv|json|atom|token``: a profile's calls, or every call, as files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tracker.cli.app import App, pass_app


def _write(data: bytes, output: Path | None) -> None:
    """Write to ``output`` through a temporary file (a web server serving it never sees half a
    file), or to standard output."""
    if output is None:
        click.echo(data, nl=False)
        return
    partial = output.with_name(output.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, output)
    click.echo(f"wrote {output}", err=True)


#: an export command's function, before and after its options are added
Command = Callable[..., None]


def _options(profile_help: str, required: bool = True) -> Callable[[Command], Command]:
    """What every export of calls takes: --profile NAME, -o FILE, and the App."""
    profile = click.option("--profile", "profile", metavar="NAME", required=required,
                           help=profile_help)
    output = click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                          help="write to FILE instead of standard output")

    def apply(command: Command) -> Command:
        return profile(output(pass_app(command)))

    return apply


@click.group("export")
def export_group() -> None:
    """Export calls as a calendar, CSV, JSON or an Atom feed."""


def _profile_items(app: App, profile: str) -> list[Any]:
    from tracker.exports import reading

    engine = app.store().engine
    reading.check_profile(app.settings, engine, profile)
    return reading.profile_items(engine, profile)


def _items(app: App, profile: str | None) -> list[Any]:
    """A profile's calls, or every stored call (soonest final deadline first)."""
    from tracker.exports import reading

    if profile is not None:
        return _profile_items(app, profile)
    store = app.store()
    return reading.all_items(store.engine, store.list_calls(now=app.now()))


@export_group.command("ical")
@_options("the profile whose calls' cut-offs become events")
def export_ical(app: App, profile: str, output: Path | None) -> None:
    """An iCalendar file: one event per cut-off, a reminder 7 days before."""
    from tracker.exports.formats import to_ical

    _write(to_ical(_profile_items(app, profile), name=f"callwatch: {profile}", now=app.now()),
           output)


@export_group.command("csv")
@_options("a profile's matched calls", required=False)
def export_csv(app: App, profile: str | None, output: Path | None) -> None:
    """CSV, one call a row (every stored call without --profile)."""
    from tracker.exports.formats import to_csv

    _write(to_csv([i.call for i in _items(app, profile)], app.now()).encode(), output)


@export_group.command("json")
@_options("a profile's matched calls", required=False)
def export_json(app: App, profile: str | None, output: Path | None) -> None:
    """JSON, an array of calls (with each call's match reasons for a profile)."""
    from tracker.exports.formats import to_json

    _write(to_json(_items(app, profile), app.now(), with_reasons=profile is not None).encode(),
           output)


@export_group.command("atom")
@_options("the profile whose calls become entries")
def export_atom(app: App, profile: str, output: Path | None) -> None:
    """An Atom feed of a profile's calls, latest change first."""
    from tracker.exports.formats import to_atom

    _write(to_atom(_profile_items(app, profile), app.now(), profile=profile), output)


@export_group.command("token")
@click.option("--profile", "profile", metavar="NAME", required=True)
@click.option("--rotate", is_flag=True, help="replace the token: the old URLs stop working")
@pass_app
def export_token(app: App, profile: str, rotate: bool) -> None:
    """The secret token of a profile's feed URLs on the web app (made on first use)."""
    from tracker.exports import reading

    engine = app.store().engine
    reading.check_profile(app.settings, engine, profile)
    token = reading.feed_token(engine, profile, app.now(), rotate=rotate)
    click.echo(token)
    from tracker.config import split_listen

    _key, listen = app.settings.web_listen()
    web = app.settings.web
    base = web.base_url(*split_listen(listen)) if listen else web.public_url
    for kind in ("ics", "atom"):
        click.echo(f"{base}/feeds/{profile}.{kind}?token={token}", err=True)
    if not listen:
        click.echo("(set web.listen to serve these feeds from `callwatch run`)", err=True)
