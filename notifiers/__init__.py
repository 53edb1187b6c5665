"""Delivery channels: one module per channel (console, Telegram, email, webhook, apprise,
Slack, Teams), each exporting a ``tracker.ports.ChannelPlugin`` as ``PLUGIN``.

A channel is registered in the ``callwatch.channels`` entry-point group (pyproject.toml) and
found by ``tracker.plugins.channel_plugins``; the plugin declares its settings, the address
a subscriber gives it, the parts of a message it reads, and builds its ``Notifier``.
``create_notifiers`` builds every enabled channel that can work with the environment it is
given (Telegram only when its token is set, apprise only when its extra is installed), for
the composition root (``tracker/compose.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tracker.config import NotifierSettings
from tracker.plugins import channel_plugins
from tracker.ports import Notifier


def create_notifiers(settings: NotifierSettings,
                     environ: Mapping[str, str] | None = None) -> dict[str, Notifier]:
    """Every enabled, usable channel by name. Close each with ``await notifier.aclose()``."""
    env = os.environ if environ is None else environ
    built = {name: plugin.create(getattr(settings, name, None), env)
             for name, plugin in channel_plugins().items()}
    return {name: notifier for name, notifier in built.items() if notifier is not None}
