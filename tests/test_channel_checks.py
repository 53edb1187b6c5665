"""Start-up channel checks: a channel that is down is a warning; rejected credentials stop.

Against the real local servers: aiosmtpd for email, the fake Bot API for Telegram, and a
port nobody listens on for a server that is down.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import warnings
from collections.abc import Iterator

import pytest

from notifiers.email import EmailNotifier, EmailSettings
from notifiers.telegram import TelegramNotifier, TelegramSettings
from notifiers.webhook import WebhookNotifier, WebhookSettings
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.demo.fakes.telegram_api import FakeTelegram
from tracker.errors import ChannelUnavailable, ConfigError
from tracker.pipeline import check_notifiers, close_notifiers
from tracker.ports import Notifier

TOKEN = "123456:CHECK-TOKEN"


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A port that is bound but never listens: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def check_all(notifiers: dict[str, Notifier]) -> dict[str, str]:
    async def main() -> dict[str, str]:
        try:
            return await check_notifiers(notifiers)
        finally:
            await close_notifiers(notifiers)
    return asyncio.run(main())


def test_reachable_channels_pass_and_a_dead_one_is_reported_not_raised(
    dead_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    with SmtpSink() as sink, FakeTelegram(TOKEN) as fake:
        good: dict[str, Notifier] = {
            "email": EmailNotifier(EmailSettings(host=sink.host, port=sink.port)),
            "telegram": TelegramNotifier.from_settings(
                TelegramSettings(base_url=fake.base_url), {"CALLWATCH_TELEGRAM_TOKEN": TOKEN}),
            "webhook": WebhookNotifier.from_settings(WebhookSettings(), {}),
        }
        assert check_all(good) == {}
        assert [r.path.rsplit("/", 1)[-1] for r in fake.requests] == ["getMe"]
        assert sink.messages == []  # checking sends nothing
    with caplog.at_level(logging.WARNING, logger="tracker.pipeline"):
        down = check_all({"email": EmailNotifier(EmailSettings(host="127.0.0.1", port=dead_port))})
    assert list(down) == ["email"] and f"127.0.0.1:{dead_port}" in down["email"]
    assert "channel email is not reachable now" in caplog.text


def test_a_token_the_bot_api_rejects_is_a_configuration_error() -> None:
    with FakeTelegram(TOKEN) as fake:
        notifier = TelegramNotifier.from_settings(
            TelegramSettings(base_url=fake.base_url), {"CALLWATCH_TELEGRAM_TOKEN": "999:WRONG"})
        with pytest.raises(ConfigError, match="rejected"):
            check_all({"telegram": notifier})


def test_a_rejected_token_leaves_no_connection_open() -> None:
    """getMe opened the Bot API connection before the token was rejected: closing the
    notifier closes it too, so no socket is left for the garbage collector to warn about."""
    with FakeTelegram(TOKEN) as fake, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        notifier = TelegramNotifier.from_settings(
            TelegramSettings(base_url=fake.base_url), {"CALLWATCH_TELEGRAM_TOKEN": "999:WRONG"})
        with pytest.raises(ConfigError, match="rejected"):
            check_all({"telegram": notifier})
        del notifier
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_an_unreachable_bot_api_is_transient(dead_port: int) -> None:
    notifier = TelegramNotifier.from_settings(
        TelegramSettings(base_url=f"http://127.0.0.1:{dead_port}/bot"),
        {"CALLWATCH_TELEGRAM_TOKEN": TOKEN})

    async def main() -> None:
        try:
            await notifier.check()
        finally:
            await notifier.aclose()

    with pytest.raises(ChannelUnavailable, match="cannot reach the Bot API"):
        asyncio.run(main())
