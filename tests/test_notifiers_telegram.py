"""The Telegram channel against the fake Bot API on loopback, through python-telegram-bot."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import telegram

from notifiers.telegram import Pacer, TelegramNotifier, TelegramSettings
from tests.notifier_support import HOSTILE_TITLE, LONG_TITLE, big_digest, every_kind
from tracker.demo.fakes.telegram_api import FakeTelegram, parse_telegram_html
from tracker.errors import ChannelGone, ChannelRejected, ChannelUnavailable, ConfigError
from tracker.ports import Message, Recipient, SendResult

T = TypeVar("T")
TOKEN = "123456:TEST-TOKEN"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN) as server:
        yield server


class FakeTime:
    """A clock that only moves when someone sleeps: pacing is tested without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run(factory: Callable[[TelegramNotifier], Awaitable[T]], fake: FakeTelegram,
        **options: Any) -> T:
    async def main() -> T:
        notifier = TelegramNotifier.from_settings(
            TelegramSettings(base_url=fake.base_url), {"CALLWATCH_TELEGRAM_TOKEN": TOKEN},
            pacer=options.pop("pacer", Pacer(enabled=False)))
        for name, value in options.items():
            setattr(notifier, name, value)
        try:
            return await factory(notifier)
        finally:
            await notifier.aclose()
    return asyncio.run(main())


def send(fake: FakeTelegram, chat: str, message: Message, **options: Any) -> SendResult:
    return run(lambda n: n.send(Recipient(chat), message), fake, **options)


@pytest.mark.parametrize("title", [None, HOSTILE_TITLE, LONG_TITLE])
def test_every_message_kind_is_accepted_by_the_bot_api(fake: FakeTelegram, title: str | None) -> None:
    messages = every_kind(title)

    async def send_all(notifier: TelegramNotifier) -> list[SendResult]:
        return [await notifier.send(Recipient(str(1000 + n)), message)
                for n, message in enumerate(messages.values())]

    results = run(send_all, fake)
    assert fake.rejected == []
    assert [r.address for r in results] == ["1000", "1001", "1002", "1003"]
    assert [s.chat_id for s in fake.sent] == ["1000", "1001", "1002", "1003"]
    for sent, message in zip(fake.sent, messages.values(), strict=True):
        assert sent.parse_mode == "HTML"
        assert sent.text == message.telegram[0]
        parse_telegram_html(sent.text)
    assert all(r.message_ids for r in results)


def test_alert_buttons_arrive_as_inline_keyboard(fake: FakeTelegram) -> None:
    send(fake, "42", every_kind()["alert_new"])
    [sent] = fake.sent
    assert sent.reply_markup == {"inline_keyboard": [[
        {"text": "Dismiss", "callback_data": "dismiss:ft_portal:HORIZON-A"},
        {"text": "Switch to daily digest", "callback_data": "mode:hydrogen-valley:daily"}]]}


def test_a_long_digest_goes_out_as_several_messages_in_order(fake: FakeTelegram) -> None:
    message = big_digest(60)
    result = send(fake, "-100777", message)
    assert [s.text for s in fake.sent] == list(message.telegram)
    assert len(result.message_ids) == len(message.telegram) > 1
    assert all(len(s.text) <= 4096 for s in fake.sent)


def test_short_retry_after_is_waited_out_in_place(fake: FakeTelegram) -> None:
    fake.flood(retry_after=2, chat_id="42")
    time = FakeTime()
    result = send(fake, "42", every_kind()["alert_new"], _sleep=time.sleep)
    assert time.sleeps == [2.0]
    assert len(result.message_ids) == 1
    assert [method for method, _ in fake.rejected] == ["sendMessage"]


def test_long_retry_after_is_a_transient_error_carrying_the_wait(fake: FakeTelegram) -> None:
    fake.flood(retry_after=60, chat_id="42")
    with pytest.raises(ChannelUnavailable) as caught:
        send(fake, "42", every_kind()["alert_new"])
    assert caught.value.retry_after == 60
    assert caught.value.sent_parts == 0
    assert fake.sent == []


def test_a_chat_under_a_long_hold_fails_fast_without_calling_the_api(fake: FakeTelegram) -> None:
    """The next message to a flooded chat must not sit out the hold inside one dispatch pass."""
    fake.flood(retry_after=60, chat_id="42")
    time = FakeTime()
    pacer = Pacer(clock=time.clock, sleep=time.sleep)
    with pytest.raises(ChannelUnavailable):
        send(fake, "42", every_kind()["alert_new"], pacer=pacer)
    calls = len(fake.rejected)
    time.now += 15.5
    with pytest.raises(ChannelUnavailable) as caught:
        send(fake, "42", every_kind()["alert_new"], pacer=pacer, _sleep=time.sleep)
    assert caught.value.retry_after == 45  # whole seconds left of the hold, rounded up
    assert len(fake.rejected) == calls and fake.sent == []
    assert time.sleeps == []
    time.now += 45
    assert pacer.held_for("42") == 0


def test_a_failure_mid_digest_says_how_many_parts_went_out(fake: FakeTelegram) -> None:
    message = big_digest(60)

    async def flood_after_first(notifier: TelegramNotifier) -> SendResult:
        original = notifier.bot.send_message
        calls = 0

        async def send_message(*args: Any, **kwargs: Any) -> telegram.Message:
            nonlocal calls
            calls += 1
            if calls == 3:
                fake.flood(retry_after=120)
            return await original(*args, **kwargs)

        object.__setattr__(notifier, "bot", _Proxy(notifier.bot, send_message=send_message))
        return await notifier.send(Recipient("42"), message)

    with pytest.raises(ChannelUnavailable) as caught:
        run(flood_after_first, fake)
    assert caught.value.sent_parts == 2
    assert [s.text for s in fake.sent] == list(message.telegram[:2])


class _Proxy:
    """Wraps a Bot and replaces some of its methods."""

    def __init__(self, bot: telegram.Bot, **methods: Any) -> None:
        self._bot = bot
        self._methods = methods

    def __getattr__(self, name: str) -> Any:
        return self._methods.get(name) or getattr(self._bot, name)


def test_blocked_bot_means_deactivate_the_channel(fake: FakeTelegram) -> None:
    fake.block(42)
    with pytest.raises(ChannelGone) as caught:
        send(fake, "42", every_kind()["alert_new"])
    assert caught.value.status == 403
    assert "blocked" in str(caught.value)


def test_a_chat_that_does_not_exist_means_deactivate_the_channel(fake: FakeTelegram) -> None:
    """A wrong chat id or a deleted group: every later message would fail the same way."""
    fake.forget(-4343)
    with pytest.raises(ChannelGone) as caught:
        send(fake, "-4343", every_kind()["alert_new"])
    assert caught.value.status == 400
    assert "chat not found" in str(caught.value).lower()
    assert fake.rejected == [("sendMessage", "Bad Request: chat not found")]


def test_migrated_group_gets_the_message_at_its_new_id(fake: FakeTelegram) -> None:
    fake.migrate(-4242, -1004242)
    result = send(fake, "-4242", every_kind()["digest"])
    assert result.new_address == "-1004242"
    assert result.address == "-1004242"
    assert [s.chat_id for s in fake.sent] == ["-1004242"]


def test_a_message_the_api_refuses_is_rejected_for_good(fake: FakeTelegram) -> None:
    broken = every_kind()["alert_new"].model_copy(update={"telegram": ("<b>unclosed",)})
    with pytest.raises(ChannelRejected) as caught:
        send(fake, "42", broken)
    assert caught.value.status == 400
    assert "parse entities" in str(caught.value)


def test_an_unreachable_api_is_transient() -> None:
    with FakeTelegram(TOKEN) as gone:
        url = gone.base_url
    settings = TelegramSettings(base_url=url)

    async def main() -> None:
        notifier = TelegramNotifier.from_settings(settings, {"CALLWATCH_TELEGRAM_TOKEN": TOKEN})
        try:
            await notifier.send(Recipient("42"), every_kind()["alert_new"])
        finally:
            await notifier.aclose()

    with pytest.raises(ChannelUnavailable):
        asyncio.run(main())


def test_token_comes_from_the_environment_and_a_rejected_one_is_a_config_error(
        fake: FakeTelegram) -> None:
    with pytest.raises(ConfigError, match="CALLWATCH_TELEGRAM_TOKEN is not set"):
        TelegramNotifier.from_settings(TelegramSettings(base_url=fake.base_url), {})

    async def main() -> None:
        notifier = TelegramNotifier.from_settings(
            TelegramSettings(base_url=fake.base_url), {"CALLWATCH_TELEGRAM_TOKEN": "999:WRONG"})
        try:
            await notifier.send(Recipient("42"), every_kind()["alert_new"])
        finally:
            await notifier.aclose()

    with pytest.raises(ConfigError, match="rejected"):
        asyncio.run(main())


# --- pacing -------------------------------------------------------------------------------


def _pace(pacer: Pacer, chats: list[str]) -> list[float]:
    """The clock time at which each send would go out."""
    times: list[float] = []

    async def main() -> None:
        for chat in chats:
            await pacer.wait(chat)
            times.append(pacer._clock())

    asyncio.run(main())
    return times


def test_pacer_keeps_thirty_a_second_overall() -> None:
    time = FakeTime()
    times = _pace(Pacer(clock=time.clock, sleep=time.sleep), [str(n) for n in range(91)])
    assert times[90] - times[0] == pytest.approx(3.0)
    assert all(b - a == pytest.approx(1 / 30) for a, b in itertools.pairwise(times))


def test_pacer_keeps_one_a_second_per_chat() -> None:
    time = FakeTime()
    times = _pace(Pacer(clock=time.clock, sleep=time.sleep), ["7", "8", "7", "7"])
    assert times[2] - times[0] == pytest.approx(1.0)
    assert times[3] - times[2] == pytest.approx(1.0)
    assert times[1] - times[0] == pytest.approx(1 / 30)


def test_pacer_keeps_twenty_a_minute_per_group() -> None:
    time = FakeTime()
    times = _pace(Pacer(clock=time.clock, sleep=time.sleep), ["-5"] * 21)
    assert times[19] - times[0] == pytest.approx(19.0)
    assert times[20] - times[0] == pytest.approx(60.0)


def test_pacer_holds_a_chat_after_retry_after_and_can_be_switched_off() -> None:
    time = FakeTime()
    pacer = Pacer(clock=time.clock, sleep=time.sleep)
    pacer.hold("9", 5.0)
    assert _pace(pacer, ["9"]) == [pytest.approx(1005.0)]
    time_off = FakeTime()
    assert _pace(Pacer(enabled=False, clock=time_off.clock, sleep=time_off.sleep),
                 ["1"] * 5) == [1000.0] * 5


def test_the_fake_counts_flood_limit_violations_and_pacing_avoids_them() -> None:
    with FakeTelegram(TOKEN, enforce_limits=True) as strict:
        message = every_kind()["alert_new"]
        # unpaced: a second message to the same chat at once breaks the 1/s per-chat limit
        with pytest.raises(ChannelUnavailable):
            run(lambda n: _twice(n, "5", message), strict, max_retry_wait=0.0)
        assert strict.throttled == 1
        # paced with the real clock: two messages to each of three chats, no 429
        run(lambda n: _spread(n, ["6", "7", "8"] * 2, message), strict, pacer=Pacer())
        assert strict.throttled == 1
        assert [s.chat_id for s in strict.sent][-6:] == ["6", "7", "8"] * 2


async def _twice(notifier: TelegramNotifier, chat: str, message: Message) -> None:
    await notifier.send(Recipient(chat), message)
    await notifier.send(Recipient(chat), message)


async def _spread(notifier: TelegramNotifier, chats: list[str], message: Message) -> None:
    for chat in chats:
        await notifier.send(Recipient(chat), message)


# --- the fake's other methods, used by the bot command tests ------------------------------


def test_fake_serves_updates_and_bot_housekeeping_methods(fake: FakeTelegram) -> None:
    fake.queue_command(42, "/subscribe hydrogen-valley")
    fake.queue_callback(42, "dismiss:ft_portal:X", message_id=7)

    async def main() -> list[telegram.Update]:
        bot = telegram.Bot(TOKEN, base_url=fake.base_url)
        async with bot:
            await bot.delete_webhook()
            await bot.set_my_commands([("digest", "send my digest now")])
            updates = list(await bot.get_updates(timeout=0))
            await bot.answer_callback_query(updates[1].callback_query.id, text="Dismissed")
            await bot.edit_message_reply_markup(chat_id=42, message_id=7, reply_markup=None)
            assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == ()
            return updates

    updates = asyncio.run(main())
    assert updates[0].message is not None and updates[0].message.text == "/subscribe hydrogen-valley"
    assert updates[0].message.entities[0].type == "bot_command"
    assert updates[1].callback_query is not None
    assert updates[1].callback_query.data == "dismiss:ft_portal:X"
    assert fake.webhook_deleted == 1
    assert fake.commands == [{"command": "digest", "description": "send my digest now"}]
    assert fake.callback_answers[0]["text"] == "Dismissed"
    assert fake.markup_edits[0]["message_id"] == "7"


def test_a_message_without_telegram_parts_sends_its_escaped_text(fake: FakeTelegram) -> None:
    plain = every_kind(HOSTILE_TITLE)["alert_new"].model_copy(update={"telegram": (), "buttons": ()})
    send(fake, "42", plain)
    [sent] = fake.sent
    assert "&lt;script&gt;" in sent.text
    assert parse_telegram_html(sent.text).startswith(plain.text[:40])
