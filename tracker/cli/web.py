"""``callwatch web`` (the web app alone, served by uvicorn) and ``callwatch users`` (its accounts)."""

from __future__ import annotations

import sys

import click

from tracker.cli.app import App, pass_app


@click.command("web")
@pass_app
def web_command(app: App) -> None:
    """Serve the web app on web.listen (127.0.0.1:8080 when unset) until stopped.

    /healthz here says whether some process's scheduler runs (its heartbeat), since this
    one runs none.
    """
    from tracker.config import HEALTH_LISTEN_DEPRECATED, WEB_DEFAULT_LISTEN, split_listen
    from tracker.rules.service import load_profiles
    from tracker.rules.sources import import_files
    from tracker.web.app import create_app
    from tracker.web.serve import bind, serve

    settings = app.settings
    engine = app.store().engine
    import_files(engine, load_profiles(settings, engine), app.now())  # the YAML directory
    key, listen = settings.web_listen()
    if key == "health.listen":
        click.echo(f"callwatch: warning: {HEALTH_LISTEN_DEPRECATED}", err=True)
    host, port = split_listen(listen or WEB_DEFAULT_LISTEN)
    sock = bind(host, port, key=key)
    host, port = sock.getsockname()[:2]
    click.echo(f"callwatch web: listening on {host}:{port}, "
               f"open {settings.web.base_url(host, port)}/ (Ctrl-C stops)", err=True)
    serve(create_app(settings, engine, app.clock, warm_preview=True), sock)


def _password(from_stdin: bool) -> str:
    """The new password: the first line of standard input, or asked twice on a terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


_STDIN = click.option("--password-stdin", is_flag=True,
                      help="read the password from the first line of standard input")


@click.group("users")
def users_group() -> None:
    """Accounts of the web app: cluster managers (one tenant) and admins (every tenant)."""


@users_group.command("add")
@click.argument("email")
@click.option("--tenant", help="the cluster a manager manages (its subscribers' `tenant`)")
@click.option("--role", type=click.Choice(["manager", "admin"]), required=True)
@_STDIN
@pass_app
def users_add(app: App, email: str, tenant: str | None, role: str, password_stdin: bool) -> None:
    """Create an account with a password (argon2id); managers need --tenant."""
    from tracker.web import accounts

    engine = app.store().engine
    password = _password(password_stdin)
    user = accounts.add_user(engine, email, password, tenant=tenant,
                             role="admin" if role == "admin" else "manager", now=app.now())
    click.echo(f"added {user.email} ({user.role}{', tenant ' + user.tenant if user.tenant else ''})")


@users_group.command("passwd")
@click.argument("email")
@_STDIN
@pass_app
def users_passwd(app: App, email: str, password_stdin: bool) -> None:
    """Set a new password; the account's open sessions end."""
    from tracker.web import accounts

    engine = app.store().engine
    accounts.get_user(engine, email)  # unknown: exit 1 before asking for a password
    accounts.set_password(engine, email, _password(password_stdin), app.now())
    click.echo(f"new password set for {email.strip().lower()}; its sessions are ended")


@users_group.command("list")
@pass_app
def users_list(app: App) -> None:
    """Every account: email, role and tenant, one a line, tab-separated."""
    from tracker.web import accounts

    for user in accounts.list_users(app.store().engine):
        click.echo(f"{user.email}\t{user.role}\t{user.tenant or ''}")
