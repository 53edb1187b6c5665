"""A real SMTP server (aiosmtpd) on a free 127.0.0.1 port that keeps what it receives.

Messages are parsed with the standard ``email`` package so tests can check both parts,
the headers and the escaping; they can also be written as ``.eml`` files for a person to
open (``callwatch demo`` does). Fault switches refuse a recipient (550), answer the next
messages with a temporary failure (451), or hold every message ``delay`` seconds before
accepting it (a slow relay). With ``keep=False`` it only counts, so a benchmark
of ten thousand messages measures the sender's memory, not the sink's.

With ``tls`` (a server-side SSLContext) it offers STARTTLS and refuses mail and logins
before it; with ``implicit_tls`` as well, it speaks TLS from the first byte (port 465
style). Each message and each accepted login records whether it came over TLS.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tracker.demo.fakes._server import Background


@dataclass(frozen=True)
class ReceivedEmail:
    """One message as the server got it: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    tls: bool = False


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address.lower() in self.sink.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.sink.delay > 0:
            await asyncio.sleep(self.sink.delay)
        return self.sink._receive(envelope, tls=_over_tls(server))


def _over_tls(server: SMTP) -> bool:
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class _QuietSession(Session):
    """aiosmtpd sets the deprecated ``login_data`` after every login and warns about it.

    Tests turn warnings into errors, which would kill the server thread mid-login.
    """

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _Server(SMTP):
    def __init__(self, *args: Any, sessions: set[_Server], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sessions = sessions

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._sessions.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._sessions.discard(self)
        super().connection_lost(error)


class _Controller(Controller):
    """aiosmtpd's Controller, bound to port 0 and told the port the system picked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: set[_Server] = set()  # connections open now (touched on the loop's thread)

    def factory(self) -> SMTP:
        return _Server(self.handler, sessions=self.sessions, **self.SMTP_kwargs)

    def stop(self, no_assert: bool = False) -> None:
        """Abort the connections still open first: aiosmtpd's stop only stops the loop and
        closes the listening socket, so a session still open (a client that gave up in the
        middle of STARTTLS, say) would keep its socket until garbage collection."""
        def abort_sessions() -> None:
            for session in list(self.sessions):
                if isinstance(session.transport, asyncio.Transport):
                    session.transport.abort()

        if self._thread is not None:
            self.loop.call_soon_threadsafe(abort_sessions)
        super().stop(no_assert)

    def _trigger_server(self) -> None:
        if not isinstance(self.server, asyncio.Server):
            raise RuntimeError("the SMTP server did not start")
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]  # aiosmtpd leaves it untyped


class SmtpSink(Background):
    """Start with ``start()`` or as a context manager; ``host`` and ``port`` say where."""

    def __init__(self, *, keep: bool = True, directory: Path | None = None,
                 credentials: tuple[str, str] | None = None, tls: ssl.SSLContext | None = None,
                 implicit_tls: bool = False) -> None:
        self.keep = keep
        self.directory = directory
        self.credentials = credentials
        self.messages: list[ReceivedEmail] = []
        self.logins: list[tuple[str, bool]] = []  # (user name, over TLS) of each accepted login
        self.count = 0
        self.refused: set[str] = set()
        self.temporary_failures = 0  # answer the next N messages with 451
        self.delay = 0.0  # seconds to wait before accepting each message (a slow relay)
        self._lock = threading.Lock()
        self._names = itertools.count(1)
        options: dict[str, Any] = {}
        if tls is not None and implicit_tls:
            options.update(ssl_context=tls)
        elif tls is not None:
            options.update(tls_context=tls, require_starttls=True)
        if credentials is not None:
            # aiosmtpd counts only STARTTLS as TLS for AUTH: over implicit TLS it would
            # refuse every login, so there (and without TLS) it must not insist
            options.update(authenticator=self._authenticate,
                           auth_require_tls=tls is not None and not implicit_tls)
        self._controller = _Controller(_Handler(self), hostname="127.0.0.1", port=0, **options)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def refuse(self, address: str) -> None:
        """Answer RCPT TO for ``address`` with 550 (a mailbox that does not exist)."""
        self.refused.add(address.lower())

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and self.credentials is not None and (
            auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        if ok:
            with self._lock:
                self.logins.append((auth_data.login.decode(), _over_tls(server)))
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535

    def _receive(self, envelope: Envelope, *, tls: bool = False) -> str:
        with self._lock:
            if self.temporary_failures > 0:
                self.temporary_failures -= 1
                return "451 4.3.0 Try again later"
            self.count += 1
            if not self.keep and self.directory is None:
                return "250 Message accepted for delivery"
        raw = envelope.original_content or b""
        if isinstance(envelope.content, str):  # pragma: no cover - SMTPUTF8 decoding off
            raw = envelope.content.encode()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        if not isinstance(parsed, EmailMessage):  # the default policy always makes one
            raise TypeError(type(parsed).__name__)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / f"{next(self._names):05d}.eml").write_bytes(raw)
        if self.keep:
            received = ReceivedEmail(str(envelope.mail_from), tuple(envelope.rcpt_tos), parsed, raw,
                                     tls=tls)
            with self._lock:
                self.messages.append(received)
        return "250 Message accepted for delivery"

    def open_connections(self, wait: float = 0.0) -> int:
        """How many client connections the server still has open, after waiting up to
        ``wait`` seconds for the count to reach zero: a client's close reaches the server's
        thread a moment later, so a test that asks at once would see a closing socket."""
        deadline = time.monotonic() + wait
        while (count := len(self._controller.sessions)) and time.monotonic() < deadline:
            time.sleep(0.01)
        return count

    def start(self) -> Self:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
