"""The console channel: what a first run shows."""

from __future__ import annotations

import asyncio
import io

import pytest

from notifiers.console import ConsoleNotifier
from tests.notifier_support import HOSTILE_TITLE, every_kind
from tracker.errors import ChannelUnavailable
from tracker.ports import Recipient


def test_console_prints_subject_and_text() -> None:
    stream = io.StringIO()
    message = every_kind(HOSTILE_TITLE)["digest"]
    result = asyncio.run(ConsoleNotifier(stream).send(Recipient("", subscriber="ana"), message))
    out = stream.getvalue()
    assert out.startswith(f"To ana: {message.subject}\n")
    assert message.text.rstrip() in out
    assert result.channel == "console"
    stream.close()
    with pytest.raises(ChannelUnavailable):
        asyncio.run(ConsoleNotifier(stream).send(Recipient(""), message))


def test_enabled_channels_are_built_and_telegram_needs_its_token() -> None:
    from notifiers import create_notifiers
    from tracker.config import NotifierSettings
    from tracker.plugins import channel_plugins

    async def build_and_close(environ: dict[str, str]) -> list[str]:
        built = create_notifiers(NotifierSettings.model_validate({}), environ)
        for name, notifier in built.items():
            assert notifier.channel == name
            await notifier.aclose()
        return sorted(built)

    from notifiers.apprise import available

    # apprise starts whenever its extra is installed (the dev extra installs it)
    optional = ["apprise"] if available() else []
    always = ["console", "email", "webhook", "slack", "teams", *optional]
    assert asyncio.run(build_and_close({})) == sorted(always)
    assert asyncio.run(build_and_close({"CALLWATCH_TELEGRAM_TOKEN": "1:x"})) == sorted(channel_plugins())
