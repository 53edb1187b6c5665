"""The web app's defences: security headers on every response, CSRF, safe redirects, rate limits.

- ``Content-Security-Policy``: everything from the app itself and nothing inline
  (``script-src 'self'``, ``style-src 'self'``, no ``'unsafe-inline'``, no ``'unsafe-eval'``),
  so a scraped call title that slipped past escaping still could not run; no plugins, no
  ``<base>``, forms post only back to callwatch, and no page may be framed
  (``frame-ancestors 'none'``, with ``X-Frame-Options: DENY`` for older browsers).
- ``Referrer-Policy: same-origin``: a link to a funding portal does not tell it which
  cluster's page it came from. A route that sets its own (the feeds, whose URL holds a
  token, say ``no-referrer``) keeps it: the middleware only adds what is missing.
- ``X-Content-Type-Options: nosniff``, ``Cross-Origin-Opener-Policy: same-origin``.

Also here: the CSRF tokens of every form (:class:`Csrf`), the only places a sign-in may
lead to (:func:`local_path`) and the sign-in rate limit (:class:`SignInLimiter`).
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",  # htmx's requests
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
))

SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- forms: CSRF, the page after sign-in, the sign-in rate limit ------------------------------

#: the cookie and the hidden field of the double-submit CSRF token
CSRF_COOKIE = "callwatch_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HOURS = 12


class Csrf:
    """Double-submit CSRF tokens: the same signed random token in a cookie (HttpOnly,
    SameSite=Strict) and in each form's hidden field. A POST passes when both are there,
    equal (compared in constant time), signed with the web secret and younger than
    :data:`CSRF_HOURS`, and when its ``Origin``, if the browser sends one, is this site."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="callwatch.csrf")

    def new_token(self) -> str:
        return self._serializer.dumps(secrets.token_urlsafe(16))

    def valid(self, cookie: str | None, field: str | None, origin: str | None,
              own_origin: str) -> bool:
        if origin is not None and origin != own_origin:
            return False
        if not cookie or not field or not hmac.compare_digest(cookie.encode(), field.encode()):
            return False
        try:
            self._serializer.loads(field, max_age=CSRF_HOURS * 3600)
        except BadSignature:
            return False
        return True


def local_path(target: str | None, default: str = "/account") -> str:
    """``target`` when it is a path on this site, else ``default``: no open redirect.

    Refused: anything with a scheme or a host (``https://evil``, ``//evil``), a backslash
    (``/\\evil``, which browsers read as ``//evil``), control characters, and whatever does
    not start with one ``/``.
    """
    if not target or not target.startswith("/") or target.startswith("//") \
            or "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


class SignInLimiter:
    """At most ``attempts`` failed sign-ins per key (an address, an email) in ``window``.

    Kept in the process's memory (pure: ``now`` is passed in): each process counts its own,
    and a restart forgets, which slows guessing without a table to clean. A success clears
    the email's count, never the address's.
    """

    def __init__(self, attempts: int = 5, window: timedelta = timedelta(minutes=15),
                 max_keys: int = 100_000) -> None:
        self.attempts = attempts
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[datetime]] = {}

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def retry_after(self, keys: Sequence[str], now: datetime) -> int | None:
        """Seconds until a blocked key may try again; None when none is blocked."""
        waits = []
        for key in keys:
            failures = self._recent(key, now)
            if len(failures) >= self.attempts:
                waits.append(failures[0] + self.window - now)
        return max(1, int(max(waits).total_seconds()) + 1) if waits else None

    def failed(self, keys: Sequence[str], now: datetime) -> None:
        if len(self._failures) >= self.max_keys:  # forget the quietest keys first
            for key in [k for k, v in self._failures.items() if not self._recent(k, now)]:
                del self._failures[key]
            while len(self._failures) >= self.max_keys:
                del self._failures[next(iter(self._failures))]
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, email_key: str) -> None:
        self._failures.pop(email_key, None)
