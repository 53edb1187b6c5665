"""``callwatch web``: the web app alone (the calls of each cluster), served by uvicorn."""

from __future__ import annotations

import click

from tracker.cli.app import App, pass_app


@click.command("web")
@pass_app
def web_command(app: App) -> None:
    """Serve the web app on web.listen (127.0.0.1:8080 when unset) until stopped."""
    from tracker.web.app import create_app
    from tracker.web.serve import bind, serve

    settings = app.settings
    engine = app.store().engine
    host, port = settings.web.address()
    sock = bind(host, port)
    host, port = sock.getsockname()[:2]
    click.echo(f"callwatch web: listening on {host}:{port}, "
               f"open {settings.web.base_url(host, port)}/ (Ctrl-C stops)", err=True)
    serve(create_app(settings, engine, app.clock), sock)
