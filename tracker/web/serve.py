"""Serving the web app with uvicorn: bind first (a clear error when the address is taken),
then serve on that socket until stopped, either alone (`callwatch web`) or as a task in the
daemon's event loop (`callwatch run`, `worker`: :func:`start_in_loop`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from datetime import datetime
from types import FrameType

import uvicorn
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp

from tracker.config import HEALTH_LISTEN_DEPRECATED, Settings, split_listen
from tracker.errors import ConfigError

log = logging.getLogger(__name__)


def bind(host: str, port: int, key: str = "web.listen") -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one); ConfigError naming the
    setting ``key`` when it cannot be bound (in use, not an address of this machine)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                          key=key) from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                          key=key) from exc
    sock.set_inheritable(True)
    return sock


def _config(app: ASGIApp) -> uvicorn.Config:
    """callwatch's logging, no access log (the feeds' and the footer links' URLs hold
    tokens), no ``Server`` header, no lifespan (the app opens nothing at start)."""
    return uvicorn.Config(app, log_config=None, access_log=False, server_header=False,
                          lifespan="off", timeout_graceful_shutdown=10)


def server(app: ASGIApp) -> uvicorn.Server:
    """A uvicorn server for ``app`` (see :func:`_config`)."""
    return uvicorn.Server(_config(app))


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


# -- inside the daemon's loop -------------------------------------------------------------------

class _GuestServer(uvicorn.Server):
    """uvicorn in a loop it does not own: the daemon keeps SIGTERM and SIGINT (its first
    one lets the running step finish), and stops this server itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class LoopServer:
    """The web app served by uvicorn as a task of the running loop; :meth:`close` stops it."""

    def __init__(self, uvicorn_server: uvicorn.Server, task: asyncio.Task[None], url: str) -> None:
        self._server = uvicorn_server
        self._task = task
        #: ``http://host:port`` it listens on (the real port when configured with 0)
        self.url = url

    @classmethod
    async def start(cls, app: ASGIApp, sock: socket.socket) -> LoopServer:
        """Serve ``app`` on ``sock``; returns once uvicorn accepts connections."""
        url = _url(sock)
        guest = _GuestServer(_config(app))
        task = asyncio.create_task(guest.serve(sockets=[sock]), name="callwatch web")
        while not guest.started:
            if task.done():  # it failed to start: its exception, here
                await task
                raise ConfigError(f"the web app did not start on {url}", key="web.listen")
            await asyncio.sleep(0.01)
        return cls(guest, task, url)

    async def close(self) -> None:
        """Stop accepting, let the open requests finish (10 s at most), and end the task."""
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 15)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def start_in_loop(settings: Settings, engine: Engine, scheduler_alive: Callable[[], bool],
                        clock: Callable[[], datetime]) -> LoopServer | None:
    """Serve the web app on ``web.listen`` (or the deprecated ``health.listen``) in the
    running loop; None when neither is set. ``scheduler_alive`` answers /healthz's question.

    Raises ConfigError naming the setting when the address cannot be bound, before any
    request is served, so `callwatch run` stops before its first scrape.
    """
    key, listen = settings.web_listen()
    if not listen:
        return None
    if key == "health.listen":
        log.warning(HEALTH_LISTEN_DEPRECATED)
    host, port = split_listen(listen)
    sock = bind(host, port, key=key)
    from tracker.web.app import create_app  # the pages, templates and accounts: only when served

    try:
        app = create_app(settings, engine, clock, scheduler_alive=scheduler_alive)
        web = await LoopServer.start(app, sock)
    except BaseException:
        sock.close()
        raise
    log.info("web app listening url=%s", web.url)
    return web
