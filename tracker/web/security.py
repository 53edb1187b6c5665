"""The web app's security headers, as one ASGI middleware around every response.

- ``Content-Security-Policy``: everything from the app itself and nothing inline
  (``script-src 'self'``, ``style-src 'self'``, no ``'unsafe-inline'``, no ``'unsafe-eval'``),
  so a scraped call title that slipped past escaping still could not run; no plugins, no
  ``<base>``, forms post only back to callwatch, and no page may be framed
  (``frame-ancestors 'none'``, with ``X-Frame-Options: DENY`` for older browsers).
- ``Referrer-Policy: same-origin``: a link to a funding portal does not tell it which
  cluster's page it came from. A route that sets its own (the feeds, whose URL holds a
  token, say ``no-referrer``) keeps it: the middleware only adds what is missing.
- ``X-Content-Type-Options: nosniff``, ``Cross-Origin-Opener-Policy: same-origin``.
"""

from __future__ import annotations

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
