"""The webhook channel: a JSON POST (httpx), signed as Standard Webhooks specifies.

Settings: ``[notifiers.webhook] secret_env`` (the name of the environment variable that
holds the secret, default ``CALLWATCH_WEBHOOK_SECRET``), ``timeout`` and ``allow_private``. The body is
picked per recipient (``Recipient.webhook_format``): ``generic`` is the
``callwatch.message/1`` document described in ``tracker/delivery/render.py``; ``slack`` a Slack
incoming-webhook body (Block Kit); ``teams`` a Microsoft Teams body with an Adaptive Card.

Signature (https://www.standardwebhooks.com/): three headers on every request,

    webhook-id: msg_<32 hex>        the same on every retry of the same message
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>

where ``key`` is the base64-decoded part of a ``whsec_...`` secret, or the UTF-8 bytes of
any other secret. Receivers check the HMAC, reject stale timestamps and may drop a
``webhook-id`` they have already seen. Without a secret the signature header is left out
(Slack and Teams URLs are secrets themselves).

Destinations: a URL at a link-local or cloud metadata address, with a user name or
password, or (without ``allow_private``) at a private address is refused before anything is
sent (``ChannelRejected``), the host name resolved first (``tracker.destinations`` says
which addresses are which; loopback is allowed).

Answers: 2xx delivered; 408, 429 (Retry-After honoured, read by ``tracker.retry_after``:
delta-seconds or an HTTP-date, at most an hour, garbage ignored), 5xx, timeouts and connection
errors ``ChannelUnavailable``; 410 ``ChannelGone``; any other status (redirects included:
they are not followed) ``ChannelRejected``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field

from tracker.destinations import (
    Address,
    address_problem,
    host_address,
    is_loopback_host,
    webhook_url_problem,
)
from tracker.errors import ChannelGone, ChannelRejected, ChannelUnavailable, ConfigError
from tracker.plugins import channel_plugins
from tracker.ports import ChannelPlugin, ChannelSettings, Message, Notifier, Recipient, SendResult
from tracker.retry_after import retry_after_seconds

if TYPE_CHECKING:
    import httpx

USER_AGENT = "callwatch-webhook/1 (+https://github.com/callwatch/callwatch)"
#: looks a host name up: every address it has, for the port the request goes to
Resolver = Callable[[str, int], Awaitable[Sequence[Address]]]


async def resolve_host(host: str, port: int) -> list[Address]:
    """Every address the system's resolver gives ``host`` (getaddrinfo, as the client uses)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def signing_key(secret: str) -> bytes:
    """The HMAC key: base64-decoded after ``whsec_``, else the secret's UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except ValueError as exc:
            raise ConfigError("a whsec_ webhook secret must be base64 after the prefix",
                              key="notifiers.webhook.secret_env") from exc
    return secret.encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def json_bytes(document: dict[str, Any]) -> bytes:
    """The bytes of a JSON body as every webhook-style channel POSTs them."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def generic_body(message: Message) -> dict[str, Any]:
    """The ``callwatch.message/1`` document, as rendered."""
    return message.document


def webhook_body(message: Message, fmt: str) -> bytes:
    """The bytes to POST for ``fmt``: ``generic``, or the name of the channel whose body a
    ``webhook_format`` asks for (``slack``, ``teams``), rendered by that channel's plugin so
    both forms of a Slack or Teams subscriber send the same bytes."""
    render = generic_body if fmt == "generic" else channel_plugins()[fmt].render
    if render is None:
        raise ChannelRejected(f"webhook: no body for the format {fmt!r}")
    return json_bytes(render(message))


class WebhookSettings(ChannelSettings):
    secret_env: str = Field(
        "CALLWATCH_WEBHOOK_SECRET",
        description="the environment variable holding the HMAC secret that signs each POST",
    )
    timeout: float = Field(10.0, gt=0, description="seconds to wait for the webhook's answer")
    allow_private: bool = Field(
        False, description="allow webhook URLs at private addresses (10/8, 172.16/12, 192.168/16, "
        "100.64/10, fc00::/7: a cluster's own intranet); loopback (127.0.0.0/8, `::1`, "
        "`localhost`) is always allowed, link-local and cloud metadata addresses "
        "(169.254.169.254…) and URLs with a user name or password never; checked by "
        "`subscribers check` and at start, and again before each POST with the host name resolved"
    )


class WebhookNotifier:
    """POSTs rendered messages to webhook URLs."""

    def __init__(self, *, secret: str | None = None, timeout: float = 10.0,
                 client: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.time, allow_private: bool = False,
                 resolve: Resolver = resolve_host, fmt: str | None = None,
                 channel: str = "webhook") -> None:
        import httpx  # here, not at the top: loading the channel's settings stays cheap

        if secret:
            signing_key(secret)  # a malformed secret is a start-up error, not a send error
        self._secret = secret or None
        self._clock = clock
        self._allow_private = allow_private
        self._resolve = resolve
        self._format = fmt
        self.channel = channel
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, headers={"User-Agent": USER_AGENT})

    @classmethod
    def from_settings(cls, settings: WebhookSettings,
                      environ: Mapping[str, str] | None = None) -> WebhookNotifier:
        """Build from ``[notifiers.webhook]``; the secret comes from the variable it names."""
        env = os.environ if environ is None else environ
        return cls(secret=env.get(settings.secret_env), timeout=settings.timeout,
                   allow_private=settings.allow_private)

    def headers(self, url: str, body: bytes) -> dict[str, str]:
        """Content type and the Standard Webhooks headers for one request."""
        message_id = "msg_" + hashlib.sha256(url.encode() + b"\n" + body).hexdigest()[:32]
        timestamp = int(self._clock())
        headers = {"Content-Type": "application/json", "webhook-id": message_id,
                   "webhook-timestamp": str(timestamp)}
        if self._secret:
            headers["webhook-signature"] = sign(self._secret, message_id, timestamp, body)
        return headers

    async def send(self, recipient: Recipient, message: Message) -> SendResult:
        """POST once; see the module docstring for what each answer means."""
        import httpx

        url = recipient.address
        if not url.startswith(("https://", "http://")):
            raise ChannelRejected(f"{self.channel}: not an http(s) URL: {url[:80]!r}")
        problem = await self.destination_problem(url)
        if problem:
            raise ChannelRejected(f"{self.channel}: {problem}")
        body = webhook_body(message, self._format or recipient.webhook_format)
        headers = self.headers(url, body)
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ChannelUnavailable(f"{self.channel}: timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise ChannelUnavailable(f"{self.channel}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(channel=self.channel, address=url,
                              message_ids=(headers["webhook-id"],))
        text = f"{self.channel}: HTTP {status} from the receiver"
        if status in (408, 429) or status >= 500:
            now = datetime.fromtimestamp(self._clock(), UTC)
            raise ChannelUnavailable(
                text, retry_after=retry_after_seconds(response.headers.get("retry-after"), now))
        if status == 410:
            raise ChannelGone(text, status=status)
        raise ChannelRejected(text, status=status)

    async def destination_problem(self, url: str) -> str | None:
        """Why ``url`` may not be POSTed to now (``tracker.destinations``), or None.

        Subscriber files were checked when loaded; this catches what they cannot: a name
        that resolves to a forbidden address, and rows queued under other settings. A name
        that does not resolve here is left to the client (its own lookup fails the same
        way, or a proxy resolves it). The client looks the name up again when it connects,
        so a DNS server that changes its answer within that moment is not caught.
        """
        import httpx

        problem = webhook_url_problem(url, allow_private=self._allow_private)
        if problem:
            return problem
        parsed = httpx.URL(url)
        host = parsed.host
        if host_address(host) is not None or is_loopback_host(host):
            return None  # an address literal was judged above; localhost is this machine
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = await self._resolve(host, port)
        except (OSError, UnicodeError):
            return None
        for address in addresses:
            problem = address_problem(address, allow_private=self._allow_private)
            if problem:
                return f"{host} resolves to {problem}"
        return None

    async def check(self) -> None:
        """Nothing to reach at start: every subscriber has an endpoint of its own."""
        return None

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()


def url_address(value: str | None, *, allow_private: bool = True) -> str | None:
    """A subscriber's URL: http(s), at no address that is never allowed (``tracker.destinations``).

    Private addresses depend on ``notifiers.webhook.allow_private``, which a subscriber file
    does not know: ``read_subscribers`` checks those for ``channels.webhook``.
    """
    if value is None:
        return None
    # webhook_url_problem reads the URL as the client will and never quotes it: a Slack or
    # Teams URL, with or without its scheme, is the secret itself
    problem = webhook_url_problem(value, allow_private=allow_private)
    if problem:
        raise ValueError(problem)
    return value.strip()


def create(settings: WebhookSettings, environ: Mapping[str, str]) -> Notifier | None:
    return WebhookNotifier.from_settings(settings, environ) if settings.enabled else None


PLUGIN = ChannelPlugin(
    name="webhook", description="JSON POST", settings=WebhookSettings, create=create,
    address=Annotated[str | None, AfterValidator(url_address)],
    address_help="http(s) URL receiving JSON POSTs; not at a link-local, metadata or (without "
    "notifiers.webhook.allow_private) private address, no user name or password",
    reads=frozenset({"subject", "document"}), render=generic_body,
)


class ServiceHookSettings(ChannelSettings):
    """A chat service's incoming webhook (Slack, Teams): the URL is the secret, so no
    signing secret; a private address is never one of theirs."""

    timeout: float = Field(10.0, gt=0, description="seconds to wait for the service's answer")


def _service_address(value: str | None) -> str | None:
    return url_address(value, allow_private=False)


def service_hook_plugin(name: str, description: str, render: Callable[[Message], dict[str, Any]],
                        address_help: str) -> ChannelPlugin:
    """The plugin of a chat service reached by an incoming webhook: this module's POST (the
    same headers, destination checks and answers as ``webhook``) with ``render``'s body."""

    def create(settings: ServiceHookSettings, environ: Mapping[str, str]) -> Notifier | None:
        if not settings.enabled:
            return None
        return WebhookNotifier(timeout=settings.timeout, fmt=name, channel=name)

    return ChannelPlugin(
        name=name, description=description, settings=ServiceHookSettings, create=create,
        address=Annotated[str | None, AfterValidator(_service_address)], address_help=address_help,
        reads=frozenset({"subject", "document"}), render=render,
    )
