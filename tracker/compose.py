"""The composition root: the one core module that imports the adapters.

Everything else in ``tracker`` knows sources and channels only through ``tracker.ports``
and the plugin registry (``tracker.plugins``). What cannot be said through a plugin is
wired here: the shared HTTP client the sources use (and the per-host pacing every client
of a process shares), the channels with their console stream
and Telegram's pacing (which needs the database), and the Telegram bot the daemon runs.
``tests/test_dependencies.py`` lists this module as the exception, and fails on any other
core module that imports ``scrapers`` or ``notifiers``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TextIO

from sqlalchemy.engine import Engine

from notifiers import create_notifiers
from notifiers.console import ConsoleNotifier
from notifiers.email import EmailNotifier
from notifiers.telegram import TOKEN_ENV, Pacer, TelegramNotifier
from notifiers.telegram.pacing import pacer_for
from scrapers._http import HostPacer, PoliteClient
from tracker.config import HttpSettings, Settings
from tracker.ports import Notifier

if TYPE_CHECKING:
    from datetime import datetime

    from notifiers.telegram.bot import TelegramBot

__all__ = ["TELEGRAM_TOKEN_ENV", "HostPacer", "build_notifiers", "host_pacer", "http_client", "start_bot"]

#: the variable holding the Telegram token (the demo sets it for its fake Bot API)
TELEGRAM_TOKEN_ENV = TOKEN_ENV


async def start_bot(settings: Settings, engine: Engine, notifiers: Mapping[str, Notifier],
                    clock: Callable[[], datetime], environ: Mapping[str, str] | None = None,
                    ) -> TelegramBot | None:
    """``notifiers.telegram.bot.start_bot``, imported when the daemon starts its bot: the
    python-telegram-bot library takes about 0.8 s to import, which ``callwatch scrape``
    paid for nothing (issue 15)."""
    from notifiers.telegram.bot import start_bot as start

    return await start(settings, engine, notifiers, clock, environ)


def host_pacer(settings: HttpSettings) -> HostPacer:
    """The per-host pacing (``http.delay``) to share between every client of a process: the
    daemon builds it once, so its scrape jobs, each with a client of its own, pace two
    sources on one host together."""
    return HostPacer(settings.delay)


def http_client(settings: HttpSettings, pacer: HostPacer | None = None) -> PoliteClient:
    """The shared polite HTTP client the sources fetch with (an async context manager);
    paced by ``pacer`` when given, else by its own."""
    return PoliteClient(settings, pacer=pacer)


def build_notifiers(settings: Settings, environ: Mapping[str, str] | None = None,
                    console: TextIO | None = None, engine: Engine | None = None, *,
                    paced: bool = True) -> dict[str, Notifier]:
    """Every enabled channel that has what it needs.

    With ``engine``, Telegram is paced as ``notifiers.telegram.pacing`` says (on PostgreSQL
    by default through a budget every worker shares, ``notifiers.telegram.pacing``);
    ``paced=False`` turns pacing off (the demo's fake Bot API has no flood limits).
    Emails link the web app (``web.public_url``) when it is set, else
    ``notifiers.email.public_url``.
    """
    notifiers = create_notifiers(settings.notifiers, environ)
    email = notifiers.get("email")
    if isinstance(email, EmailNotifier) and settings.web.public_url:
        # the web app serves /manage and /unsubscribe: the footers and List-Unsubscribe link
        # there; notifiers.email.public_url (the health server's) stays the fallback
        email.settings = email.settings.model_copy(update={"public_url": settings.web.public_url})
    if console is not None and "console" in notifiers:
        notifiers["console"] = ConsoleNotifier(console)
    telegram = notifiers.get("telegram")
    if isinstance(telegram, TelegramNotifier):
        telegram.pacer = pacer_for(settings.notifiers.telegram, engine) if paced else Pacer(enabled=False)
    return notifiers
