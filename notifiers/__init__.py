"""Delivery channels: one module per channel (Telegram, email, webhook, apprise, console).

Each module exports a class with a ``channel`` name, ``from_settings`` and the
``tracker.ports.Notifier`` methods (``send``, ``aclose``). ``CHANNELS`` is the one
registry; ``create_notifiers`` builds every enabled channel that can work with the
environment it is given (Telegram only when its token is set, apprise only when its extra
is installed), for the composition root.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from tracker.config import NotifierSettings
from tracker.ports import Notifier

logger = logging.getLogger(__name__)


def _console(settings: NotifierSettings, environ: Mapping[str, str]) -> Notifier | None:
    from notifiers.console import ConsoleNotifier

    return ConsoleNotifier() if settings.console.enabled else None


def _telegram(settings: NotifierSettings, environ: Mapping[str, str]) -> Notifier | None:
    from notifiers.telegram import TOKEN_ENV, TelegramNotifier

    if not settings.telegram.enabled:
        return None
    if not environ.get(TOKEN_ENV):
        logger.info("channel=telegram not started: %s is not set", TOKEN_ENV)
        return None
    return TelegramNotifier.from_settings(settings.telegram, environ)


def _email(settings: NotifierSettings, environ: Mapping[str, str]) -> Notifier | None:
    from notifiers.email import EmailNotifier

    return EmailNotifier.from_settings(settings.email, environ) if settings.email.enabled else None


def _webhook(settings: NotifierSettings, environ: Mapping[str, str]) -> Notifier | None:
    from notifiers.webhook import WebhookNotifier

    return WebhookNotifier.from_settings(settings.webhook, environ) if settings.webhook.enabled else None


def _apprise(settings: NotifierSettings, environ: Mapping[str, str]) -> Notifier | None:
    from notifiers.apprise import EXTRA, AppriseNotifier, available

    if not available():
        logger.debug("channel=apprise not started: the apprise package is missing (%s)", EXTRA)
        return None
    return AppriseNotifier.from_settings(settings, environ)


#: channel name → factory; a new channel adds one line here and one module beside this one
CHANNELS: dict[str, Callable[[NotifierSettings, Mapping[str, str]], Notifier | None]] = {
    "console": _console,
    "telegram": _telegram,
    "email": _email,
    "webhook": _webhook,
    "apprise": _apprise,
}


def create_notifiers(settings: NotifierSettings,
                     environ: Mapping[str, str] | None = None) -> dict[str, Notifier]:
    """Every enabled, usable channel by name. Close each with ``await notifier.aclose()``."""
    env = os.environ if environ is None else environ
    built = {name: factory(settings, env) for name, factory in CHANNELS.items()}
    return {name: notifier for name, notifier in built.items() if notifier is not None}
