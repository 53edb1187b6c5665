"""Serving the web app with uvicorn: bind first (a clear error when the address is taken),
then serve on that socket until stopped."""

from __future__ import annotations

import signal
import socket
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from tracker.errors import ConfigError


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one); ConfigError naming
    ``web.listen`` when it cannot be bound (in use, not an address of this machine)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                          key="web.listen") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                          key="web.listen") from exc
    sock.set_inheritable(True)
    return sock


def server(app: ASGIApp) -> uvicorn.Server:
    """A uvicorn server for ``app``: callwatch's logging, no access log (the feeds' URLs
    will hold tokens), no ``Server`` header, forwarded headers trusted from loopback only
    (a reverse proxy on the same machine)."""
    config = uvicorn.Config(app, log_config=None, access_log=False, server_header=False,
                            lifespan="off", timeout_graceful_shutdown=10)
    return uvicorn.Server(config)


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM, then exit 0 as `callwatch run` does
    (run it in the main thread).

    uvicorn finishes the open requests, then raises the signal it caught again for the
    handler that was there before it: this one, which makes it a clean exit rather than a
    death by SIGTERM or a KeyboardInterrupt.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopped)
    server(app).run(sockets=[sock])
