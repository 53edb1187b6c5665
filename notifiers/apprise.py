"""The apprise channel (optional): every service apprise supports, one URL per subscriber.

Install the extra (``pip install 'callwatch[apprise]'``) and give a subscriber an apprise
URL (``channels: {apprise: "discord://<webhook id>/<token>"}``); see
https://github.com/caronc/apprise/wiki for every service's URL. As the URL holds the
service's token, the file may name an environment variable instead
(``apprise: env:CALLWATCH_APPRISE_OPS``): only the name is stored, and the URL is read from
the environment at each send. The channel has no settings: everything a service needs is
in its URL. It starts whenever the package is installed; without it, a subscriber with an
apprise address is a configuration error naming the extra.

What is sent: the message's subject as the title and its plain text as the body
(``body_format=text``, so apprise escapes it for services that want HTML or Markdown;
scraped text stays inert). Length limits are the service's: add apprise's own
``?overflow=split`` (or ``truncate``) to a URL to have apprise cut long digests.

Apprise URLs carry tokens and passwords, so they are never logged or put in an error:
errors name the service (``Discord``) and apprise's outcome, and the address returned
in ``SendResult`` is the ``env:`` name or just the scheme (``discord://…``). Apprise's own logger, which
prints URLs at DEBUG, is kept out of callwatch's logs (it does not propagate), and so are
urllib3's DEBUG request lines (a path can hold a token); apprise's warning about a failed
send is read from the result it returns instead, with every part of the URL scrubbed out.

Apprise's ``notify`` is synchronous (requests under the hood), so it runs in a worker
thread; apprise's own timeouts bound it (4 s to connect, 4 s to read, changeable per URL
with ``cto`` and ``rto``). Errors:

- a URL apprise cannot parse or has no service for, or an ``env:`` variable that is not
  set: ``ChannelRejected`` (dead letter);
- the service did not accept the message (apprise says only that, not why: a 500, a
  timeout and a revoked token look alike): ``ChannelUnavailable``, retried with backoff
  until the dispatcher's attempt limit makes it a dead letter;
- an exception escaping apprise (a plugin bug for this message): ``ChannelRejected``.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import logging
import os
import re
from collections.abc import Mapping
from types import ModuleType
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator

from tracker.errors import ChannelRejected, ChannelUnavailable, ConfigError
from tracker.ports import ChannelPlugin, Message, Notifier, Recipient, SendResult

logger = logging.getLogger(__name__)
EXTRA = "pip install 'callwatch[apprise]'"
_ENV_REFERENCE = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
#: URL parts shorter than this are left in apprise's messages (ports, "json", "a")
_MIN_SECRET = 4


def available() -> bool:
    """Whether the apprise package is installed (the ``apprise`` extra), found without
    importing it: the daemon builds this channel whenever the package is there, and
    importing apprise and its plugins held 18 MiB in a daemon no subscriber of which uses
    it (issue 15). It is imported at the first send, or to check a URL."""
    try:
        return importlib.util.find_spec("apprise") is not None
    except (ImportError, ValueError):  # a broken installation: no channel, as when missing
        return False


def _library() -> ModuleType:
    try:
        module = importlib.import_module("apprise")
    except ImportError as exc:
        raise ConfigError(f"the apprise channel needs the apprise package: {EXTRA}",
                          key="notifiers.apprise") from exc
    # Keep URLs out of callwatch's logs: apprise prints them at DEBUG, and urllib3 (under
    # requests) prints each request's path and query, where services like Discord keep tokens.
    apprise_logger = logging.getLogger("apprise")
    apprise_logger.propagate = False
    # its own level, not the root's: apprise reports why a send failed only through warnings
    # it logs (and captures for the result); `log.level = "ERROR"` must not silence them
    apprise_logger.setLevel(logging.WARNING)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)
    return module


def env_reference(address: str) -> str | None:
    """The variable an ``env:NAME`` address names, or None for a plain URL."""
    match = _ENV_REFERENCE.match(address.strip())
    return match.group(1) if match else None


def resolve(address: str, environ: Mapping[str, str]) -> str | None:
    """The apprise URL an address stands for (None: its ``env:`` variable is not set)."""
    name = env_reference(address)
    if name is None:
        return address.strip()
    return environ.get(name, "").strip() or None


def _scheme(url: str) -> str:
    scheme, separator, _ = url.partition("://")
    return scheme if separator and scheme.replace("+", "").isalnum() else ""


def _instantiate(library: ModuleType, url: str) -> Any:
    """Apprise's service object for ``url``, or None when apprise cannot use it."""
    if not _scheme(url):
        return None
    try:
        return library.Apprise.instantiate(url)
    except Exception:  # apprise returns None for what it cannot parse; a crash means the same
        return None


def url_problem(url: str) -> str | None:
    """Why apprise cannot use ``url``, or None. Never quotes the URL: it holds secrets."""
    scheme = _scheme(url.strip())
    if not scheme:
        return "not an apprise URL (expected service://…, e.g. discord://…)"
    if _instantiate(_library(), url.strip()) is None:
        return f"apprise cannot use this {scheme}:// URL (an unknown service or a malformed URL)"
    return None


def scrub(text: str, url: str) -> str:
    """``text`` with the URL and each of its parts (host, user, password, path, query) masked."""
    parts = urlsplit(url)
    secrets = {url, parts.netloc, parts.path, parts.query}
    secrets.update(part for part in parts.path.split("/"))
    secrets.update(value for pair in parts.query.split("&") for value in pair.split("=", 1))
    secrets.update(value for value in (parts.username, parts.password, parts.hostname) if value)
    secrets |= {unquote(secret) for secret in secrets}
    for secret in sorted((s for s in secrets if len(s) >= _MIN_SECRET), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _notify_type(message: Message) -> str:
    return "warning" if message.kind == "reminder" else "info"


class AppriseNotifier:
    """Sends rendered messages through apprise, one apprise URL per recipient."""

    channel = "apprise"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        if not available():
            _library()  # the ConfigError that names the extra
        self._environ = os.environ if environ is None else environ

    @functools.cached_property
    def _apprise(self) -> ModuleType:
        """The library, imported at the first send (see ``available``)."""
        return _library()

    @classmethod
    def from_settings(cls, settings: object = None,
                      environ: Mapping[str, str] | None = None) -> AppriseNotifier:
        """Build it (no settings: a URL holds all); ConfigError naming the extra when it is missing."""
        return cls(environ)

    async def send(self, recipient: Recipient, message: Message) -> SendResult:
        """Notify the recipient's apprise URL once; see the module docstring for failures."""
        return await asyncio.to_thread(self._send, recipient.address, message)

    def _send(self, address: str, message: Message) -> SendResult:
        url = resolve(address, self._environ)
        if url is None:
            raise ChannelRejected(f"apprise: the environment variable {env_reference(address)} "
                                  "is not set")
        scheme = _scheme(url)
        plugin = _instantiate(self._apprise, url)
        if plugin is None:
            raise ChannelRejected(f"apprise: cannot use this {scheme or 'non-URL'} address "
                                  "(an unknown service or a malformed URL)")
        service = str(getattr(plugin, "service_name", scheme))
        notifier = self._apprise.Apprise()
        notifier.add(plugin)
        try:
            result = notifier.notify(body=message.text, title=message.subject,
                                     body_format="text", notify_type=_notify_type(message))
        except Exception as exc:  # apprise catches its own; one that escapes is a bug for this message
            # "from None": the library's message and traceback may quote the URL
            raise ChannelRejected(f"apprise: {service}: {type(exc).__name__}") from None
        if not result:
            raise ChannelUnavailable(f"apprise: {service} did not accept the message"
                                     f"{self._why(result, url)}")
        # not even apprise's privacy form: it masks passwords but keeps paths, where tokens live
        return SendResult(channel=self.channel, address=address if env_reference(address)
                          else f"{scheme}://…")

    @staticmethod
    def _why(result: Any, url: str) -> str:
        """Apprise's outcome and last warning, scrubbed of the URL (apprise 2 returns both)."""
        status = getattr(getattr(result, "status", None), "name", None)
        logs = getattr(result, "logs", None)
        warnings = [entry.message for entry in logs()
                    if entry.level in ("WARNING", "ERROR", "CRITICAL")] if callable(logs) else []
        detail = "; ".join(part for part in (status, warnings[-1] if warnings else None) if part)
        return f" ({scrub(detail, url)[:300]})" if detail else ""

    async def check(self) -> None:
        """Nothing to reach at start: every subscriber has a service URL of its own."""
        return None

    async def aclose(self) -> None:
        """Nothing to close: apprise opens a connection per send."""


#: subscriber_channels.address is a VARCHAR(500)
_MAX_ADDRESS = 500


def _address(value: str | None) -> str | None:
    """Checked by apprise itself when loaded, so a typo fails `subscribers check`, not a send.

    The URL holds tokens: messages name its scheme at most, never the URL. ``env:NAME``
    stands for the URL in that environment variable, which must be set.
    """
    if value is None:
        return None
    if not available():
        raise ValueError(f"the apprise channel needs the apprise package: {EXTRA}")
    if len(value.strip()) > _MAX_ADDRESS:
        raise ValueError(f"an apprise URL of at most {_MAX_ADDRESS} characters is stored")
    url = resolve(value, os.environ)
    if url is None:
        raise ValueError(f"the environment variable {env_reference(value)} is not set")
    problem = url_problem(url)
    if problem:
        raise ValueError(problem)
    return value.strip()


def create(settings: object, environ: Mapping[str, str]) -> Notifier | None:
    """The channel whenever the package is installed (it has no settings)."""
    if not available():
        logger.debug("channel=apprise not started: the apprise package is missing (%s)", EXTRA)
        return None
    return AppriseNotifier.from_settings(settings, environ)


PLUGIN = ChannelPlugin(
    name="apprise", description="every service apprise supports (extra)", settings=None,
    create=create, address=Annotated[str | None, AfterValidator(_address)],
    address_help="an apprise URL, or env:NAME to read it from the environment (apprise extra)",
)
