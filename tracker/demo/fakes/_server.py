"""A small threaded HTTP server on a free loopback port, the base of every fake server.

Subclasses implement ``handle(request) -> Reply``; the server runs in a daemon thread so
both synchronous tests and the asyncio demo can use it. Only 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """What the fake server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """What the fake server answers."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (slow-server faults)

    @classmethod
    def json(cls, value: Any, status: int = 200, **headers: str) -> Reply:
        return cls(status, json.dumps(value, ensure_ascii=False).encode(),
                   {"Content-Type": "application/json", **headers})

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8",
             **headers: str) -> Reply:
        return cls(status, text.encode(), {"Content-Type": content_type, **headers})


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (a timeout, a cancelled task, a finished demo) is
    normal for a test server: socketserver would print a traceback to stderr for it, which
    landed in the demo's output on a loaded machine. Other errors are still logged."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        log.exception("fake server: the request from %s failed", client_address)


#: How often a fake's serving thread looks whether ``stop()`` was asked: ``shutdown()`` waits
#: for it, so socketserver's default (0.5 s) made stopping the demo's eight servers one after
#: another take up to 4 s of its run (issue 15); 20 wake-ups a second cost nothing measurable.
POLL_INTERVAL = 0.05


class Background:
    """A stand-in that serves from its own thread: ``start()`` then ``stop()``, or a
    ``with`` block that does both (the HTTP fakes here, the SMTP sink)."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeServer(Background):
    """Start with ``start()`` (or as a context manager); ``url`` is its base URL."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path, parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                with owner._lock:
                    owner.requests.append(request)
                try:
                    reply = owner.handle(request)
                except Exception as exc:  # a bug in a fake must show up as a 500, not a hang
                    reply = Reply.text(f"fake server error: {exc!r}", 500)
                if reply.delay:
                    owner._stopping.wait(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": POLL_INTERVAL},
                                        name=type(self).__name__)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
