"""The Telegram channel: python-telegram-bot 22 against the Bot API at ``notifiers.telegram.base_url``.

Settings: ``[notifiers.telegram] base_url`` (default ``https://api.telegram.org/bot``; a
self-hosted Bot API server or the fake in ``tracker.demo.fakes.telegram_api``), ``admin_chats``.
Secret: ``CALLWATCH_TELEGRAM_TOKEN``, read from the environment only.

A message goes out as its Telegram HTML parts (``Message.telegram``, each ≤4096
characters), the inline buttons under the last part. Errors are turned into what the
dispatcher should do next:

==========================  ==============================================================
python-telegram-bot         raised here
==========================  ==============================================================
RetryAfter                  waited out in place when short (≤ ``max_retry_wait``), else
                            ``ChannelUnavailable(retry_after=…)``
ChatMigrated                sent again to the new chat id at once; the result carries
                            ``new_address`` (``ChatMigrated`` error only if that fails too)
Forbidden                   ``ChannelGone``: the bot was blocked or removed, deactivate
BadRequest "chat not found" ``ChannelGone``: no such chat (a wrong id, a deleted group);
                            every later message would fail the same way, so deactivate
BadRequest                  ``ChannelRejected``: this message will never go through
InvalidToken                ``ConfigError``: fix the token; nothing can be sent
TimedOut, NetworkError      ``ChannelUnavailable``: retry later
==========================  ==============================================================

Every error carries ``sent_parts`` (parts of a long digest already delivered) so a retry
can send only the rest. A ``TimedOut`` after the request left may still have delivered the
message: that is the one window where a retry can duplicate, and nothing on our side can
close it (the Bot API has no idempotency key).

Pacing (``Pacer``): Telegram allows about 30 messages a second overall, one a second per
chat and 20 a minute per group (negative chat ids). The pacer keeps to that in process: a
send waits for its chat to be free, then takes the next overall slot. Its clock and sleep
are injectable so tests run without waiting; ``enabled=False`` turns it off.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BeforeValidator, Field

from tracker.errors import ChannelGone, ChannelRejected, ChannelUnavailable, ChatMigrated, ConfigError
from tracker.ports import ChannelPlugin, ChannelSettings, Message, Notifier, Recipient, SendResult

# python-telegram-bot and the renderer are imported where a message is sent: the settings
# and the plugin below are read by every command that loads the configuration.
if TYPE_CHECKING:
    import telegram
    from telegram.error import RetryAfter

logger = logging.getLogger(__name__)

TOKEN_ENV = "CALLWATCH_TELEGRAM_TOKEN"  # noqa: S105  # the variable's name, not a token

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
#: BadRequest descriptions (lower case) that mean the chat does not exist for this bot,
#: rather than that this one message is wrong; python-telegram-bot strips "Bad Request: "
CHAT_GONE = ("chat not found", "peer_id_invalid")
_CHAT = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,})$")


class TelegramSettings(ChannelSettings):
    base_url: str = Field(
        "https://api.telegram.org/bot",
        description="Bot API server: a self-hosted one or a test server",
    )
    admin_chats: tuple[str, ...] = Field(
        (), description="chat ids that get operator alerts and admin commands"
    )
    pacing: Literal["auto", "process", "database", "off"] = Field(
        "auto", description="flood-limit pacing (30 messages/s overall, 1/s per chat, 20/min per "
        "group): `auto` shares one budget in the database on PostgreSQL (several workers) and "
        "paces in process on SQLite; `process`, `database`, or `off` (only for tests and "
        "benchmarks against a fake Bot API)"
    )


class Pacer:
    """Telegram's flood limits kept in process: overall rate, per chat, per group."""

    def __init__(
        self,
        *,
        per_second: float = 30.0,
        chat_interval: float = 1.0,
        group_per_minute: int = 20,
        enabled: bool = True,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.enabled = enabled
        self._interval = 1.0 / per_second
        self._chat_interval = chat_interval
        self._group_limit = group_per_minute
        self._clock = clock
        self._sleep = sleep
        self._next_slot = 0.0
        self._chat_free: dict[str, float] = {}
        self._group_sends: dict[str, deque[float]] = {}
        self._held: dict[str, float] = {}

    @staticmethod
    def is_group(chat_id: str) -> bool:
        return chat_id.startswith("-")

    def _chat_ready(self, chat_id: str) -> float:
        ready = self._chat_free.get(chat_id, 0.0)
        sends = self._group_sends.get(chat_id)
        if sends is not None and len(sends) >= self._group_limit:
            ready = max(ready, sends[-self._group_limit] + 60.0)
        return ready

    def reserve(self, chat_id: str) -> float | None:
        """Take a slot for ``chat_id`` if its chat is free now; return the slot time, else None."""
        now = self._clock()
        if self._chat_ready(chat_id) > now:
            return None
        slot = max(now, self._next_slot)
        self._next_slot = slot + self._interval
        self._chat_free[chat_id] = max(self._chat_free.get(chat_id, 0.0), slot + self._chat_interval)
        if self.is_group(chat_id):
            sends = self._group_sends.setdefault(chat_id, deque(maxlen=self._group_limit))
            sends.append(slot)
        if len(self._chat_free) > 10_000:  # forget chats that are long free
            self._forget(now)
        return slot

    def _forget(self, now: float) -> None:
        for chat_id in [c for c, free in self._chat_free.items() if free < now - 60.0]:
            del self._chat_free[chat_id]
            self._group_sends.pop(chat_id, None)

    async def wait(self, chat_id: str) -> None:
        """Wait until a message to ``chat_id`` keeps within every limit, and claim that slot."""
        if not self.enabled:
            return
        while (slot := self.reserve(chat_id)) is None:
            await self._sleep(max(self._chat_ready(chat_id) - self._clock(), 0.001))
        delay = slot - self._clock()
        if delay > 0:
            await self._sleep(delay)

    def hold(self, chat_id: str, seconds: float) -> None:
        """Telegram said RetryAfter for this chat: send nothing to it for ``seconds``."""
        until = self._clock() + seconds
        self._chat_free[chat_id] = max(self._chat_free.get(chat_id, 0.0), until)
        self._held[chat_id] = max(self._held.get(chat_id, 0.0), until)

    def held_for(self, chat_id: str) -> float:
        """Seconds left of a flood-control hold on ``chat_id`` (0 when there is none).

        The sender asks before waiting: a long hold fails the message at once (it is retried
        later from the outbox) instead of blocking the whole dispatch pass behind one chat.
        """
        until = self._held.get(chat_id)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._held[chat_id]
            return 0.0
        return float(math.ceil(left))  # whole seconds, as Telegram gives them


def _retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the type will become timedelta
        warnings.simplefilter("ignore", DeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramNotifier:
    """Sends rendered messages to Telegram chats."""

    channel = "telegram"

    def __init__(
        self,
        bot: telegram.Bot,
        *,
        pacer: Pacer | None = None,
        max_retry_wait: float = 10.0,
        max_retries: int = 3,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.bot = bot
        self.pacer = pacer if pacer is not None else Pacer()
        self.max_retry_wait = max_retry_wait
        self.max_retries = max_retries
        self._sleep = sleep
        self._ready = False

    @classmethod
    def from_settings(cls, settings: TelegramSettings, environ: Mapping[str, str] | None = None,
                      *, pacer: Pacer | None = None) -> TelegramNotifier:
        """Build from ``[notifiers.telegram]`` and the token in ``CALLWATCH_TELEGRAM_TOKEN``."""
        import telegram
        from telegram.request import HTTPXRequest

        token = (os.environ if environ is None else environ).get(TOKEN_ENV, "").strip()
        if not token:
            raise ConfigError(f"{TOKEN_ENV} is not set", key="notifiers.telegram")
        request = HTTPXRequest(connection_pool_size=64, read_timeout=15.0, pool_timeout=10.0)
        bot = telegram.Bot(token, base_url=settings.base_url, request=request)
        return cls(bot, pacer=pacer)

    async def _start(self) -> None:
        from telegram.error import InvalidToken, TelegramError

        if self._ready:
            return
        try:
            await self.bot.initialize()
        except InvalidToken as exc:
            raise ConfigError(f"the Bot API rejected {TOKEN_ENV}", key="notifiers.telegram") from exc
        except TelegramError as exc:
            raise ChannelUnavailable(f"telegram: cannot reach the Bot API: {exc}") from exc
        self._ready = True

    @staticmethod
    def _markup(message: Message) -> telegram.InlineKeyboardMarkup | None:
        import telegram

        if not message.buttons:
            return None
        return telegram.InlineKeyboardMarkup([[
            telegram.InlineKeyboardButton(button.label, callback_data=button.data)
            for button in message.buttons]])

    async def send(self, recipient: Recipient, message: Message) -> SendResult:
        """Send every part in order; see the module docstring for what each error means."""
        import telegram
        from telegram.constants import ParseMode
        from telegram.error import (
            BadRequest,
            Forbidden,
            InvalidToken,
            NetworkError,
            RetryAfter,
            TelegramError,
        )
        from telegram.error import ChatMigrated as TgChatMigrated

        from tracker.delivery.render import TELEGRAM_LIMIT, tg_escape, truncate_html

        await self._start()
        chat = recipient.address
        parts = message.telegram or (truncate_html(tg_escape(message.text), TELEGRAM_LIMIT),)
        ids: list[str] = []
        new_address: str | None = None
        for index, part in enumerate(parts):
            markup = self._markup(message) if index == len(parts) - 1 else None
            attempts = 0
            while True:
                if (held := self.pacer.held_for(chat)) > self.max_retry_wait:
                    raise ChannelUnavailable(f"telegram: flood control, retry in {held:g} s",
                                             retry_after=held, sent_parts=index)
                await self.pacer.wait(chat)
                try:
                    sent = await self.bot.send_message(
                        chat_id=chat, text=part, parse_mode=ParseMode.HTML, reply_markup=markup,
                        link_preview_options=telegram.LinkPreviewOptions(is_disabled=True))
                except RetryAfter as exc:
                    wait = _retry_seconds(exc)
                    self.pacer.hold(chat, wait)
                    attempts += 1
                    if wait > self.max_retry_wait or attempts > self.max_retries:
                        raise ChannelUnavailable(f"telegram: flood control, retry in {wait:g} s",
                                                 retry_after=wait, sent_parts=index) from exc
                    logger.info("flood control, waiting channel=telegram chat=%s seconds=%g", chat, wait)
                    await self._sleep(wait)
                    continue
                except TgChatMigrated as exc:
                    if new_address is not None:
                        raise ChatMigrated("telegram: chat migrated twice",
                                           new_address=str(exc.new_chat_id), sent_parts=index) from exc
                    new_address = chat = str(exc.new_chat_id)
                    logger.info("chat migrated channel=telegram chat=%s new_chat=%s",
                                recipient.address, chat)
                    continue
                except Forbidden as exc:
                    raise ChannelGone(f"telegram: {exc.message}", status=403, sent_parts=index) from exc
                except InvalidToken as exc:
                    raise ConfigError(f"the Bot API rejected {TOKEN_ENV}",
                                      key="notifiers.telegram") from exc
                except BadRequest as exc:  # before NetworkError: BadRequest subclasses it
                    if any(marker in exc.message.lower() for marker in CHAT_GONE):
                        raise ChannelGone(f"telegram: {exc.message}", status=400,
                                          sent_parts=index) from exc
                    raise ChannelRejected(f"telegram: {exc.message}", status=400,
                                          sent_parts=index) from exc
                except NetworkError as exc:  # TimedOut included
                    raise ChannelUnavailable(f"telegram: {exc.message}", sent_parts=index) from exc
                except TelegramError as exc:
                    raise ChannelRejected(f"telegram: {exc.message}", sent_parts=index) from exc
                ids.append(str(sent.message_id))
                break
        return SendResult(channel=self.channel, address=chat, message_ids=tuple(ids),
                          new_address=new_address)

    async def check(self) -> None:
        """getMe through ``initialize``: the Bot API answers and accepts the token."""
        await self._start()

    async def aclose(self) -> None:
        # Always: a getMe that failed (rejected token, Bot API down) has already opened the
        # connection pool, and ``Bot.shutdown`` is a no-op when nothing was opened.
        self._ready = False
        await self.bot.shutdown()


def _chat(value: object) -> object:
    """A chat id as a subscriber file gives it (a YAML number too), as text."""
    if value is None:
        return None
    text = str(value).strip()
    if not _CHAT.match(text):
        raise ValueError(f"{text!r} is not a Telegram chat id (digits, -100… for groups, or @channel)")
    return text


def create(settings: TelegramSettings, environ: Mapping[str, str]) -> Notifier | None:
    """The channel, or None when it is off or the token is not set (the bot cannot work)."""
    if not settings.enabled:
        return None
    if not environ.get(TOKEN_ENV):
        logger.info("channel=telegram not started: %s is not set", TOKEN_ENV)
        return None
    return TelegramNotifier.from_settings(settings, environ)


PLUGIN = ChannelPlugin(
    name="telegram", description="Telegram Bot API", settings=TelegramSettings, create=create,
    address=Annotated[str | None, BeforeValidator(_chat)],
    address_help="chat id of a user, group or channel",
    reads=frozenset({"subject", "telegram", "buttons"}), fallbacks={"telegram": "text"},
)
