"""The Telegram bot: chat commands and inline buttons that read and change the subscriber tables.

The bot is python-telegram-bot 22's ``Application``, built with ``[notifiers.telegram]
base_url`` and the token in ``CALLWATCH_TELEGRAM_TOKEN``, polling getUpdates inside the
daemon's event loop (``start_bot``/``TelegramBot.stop``). The handlers are thin: each one
runs a plain function here that takes ``(engine, chat_id, args, now)``, works on the
database in a worker thread and returns the Telegram-HTML reply, so every command is
tested without Telegram.

Commands (everyone): /start, /help, /profiles, /subscribe NAME [MODE], /unsubscribe NAME,
/mode NAME instant|daily|weekly, /digest, /deadlines, /dismiss CALL_ID, /mute HOURS, /stop.
Admin-only (chats in ``notifiers.telegram.admin_chats``): /subscribers, /sources. Buttons
under alerts carry ``dismiss:<call id>`` and ``mode:<profile>:daily``.

Who a chat is. A chat is every subscriber whose Telegram channel has this chat id as its
address: the bot's own subscriber (origin ``bot``, named ``tg-<chat id>``, created by /start
or the first /subscribe) and any subscriber from a YAML file that names this chat. Matching
by address, not name, means a chat that migrated to a supergroup (the dispatcher stores the
new id) is still recognised. The rules for a file subscriber's chat:

- reading and feedback work on it: /profiles, /deadlines, /digest, /dismiss, /mute, the
  dismiss button;
- /stop and /start switch its Telegram channel off and on (its email and webhook go on);
- its subscriptions are not changed from the chat (/subscribe, /unsubscribe, /mode, the
  switch-to-digest button): the file is their source of truth, and ``sync_subscribers``
  would undo such a change at the next cycle. The reply says so. If the chat also has a
  bot subscriber, those commands change the bot subscriber's subscriptions.

In a group chat every member can use the commands (limiting them to the group's
administrators would need a getChatMember call per command; not done yet).

Dismissals are per profile (the rules layer's ``dismissals`` table), so /dismiss hides the
call for everyone who follows the same profiles. /mute skips the subscriber while it is
muted: alerts for that time are not queued for later.

Operator alerts: ``notify_admins`` sends a short notice to every admin chat through a
``TelegramNotifier`` (paced with every other message) or a bare ``telegram.Bot``. What the
admins are told, and when (a source turned red, a dispatch pass's dead letters), is core
logic in ``tracker.delivery.operator_alerts``.
"""

from __future__ import annotations

import asyncio
import difflib
import html
import logging
import os
import re
import secrets
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import telegram
from sqlalchemy.engine import Connection, Engine
from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from notifiers.telegram import TOKEN_ENV
from tracker.config import Settings
from tracker.delivery.dispatch import send_due
from tracker.delivery.operator_alerts import notice
from tracker.delivery.outbox import enqueue_digests, mode_change
from tracker.delivery.planning import DEFAULT_SCHEDULE, DigestSchedule
from tracker.delivery.render import (
    TELEGRAM_LIMIT,
    clip,
    days_left,
    describe_days,
    format_deadline,
    safe_url,
    tg_escape,
    truncate_html,
    utf16_len,
)
from tracker.errors import CallwatchError
from tracker.models import CallStatus
from tracker.ports import Notifier, Recipient
from tracker.rules.store import RulesStore
from tracker.source_status import SourceStatus, read_statuses
from tracker.store.calls import Store
from tracker.store.db import (
    calls_table,
    channels_table,
    deliveries_table,
    subscribers_table,
    subscriptions_table,
)

log = logging.getLogger(__name__)

MODES = ("instant", "daily", "weekly")
BOT_ORIGIN = "bot"
BOT_TIMEZONE = "Europe/Brussels"
BOT_LANGUAGE = "en"
BOT_REMINDERS = [30, 7, 1]  # the YAML default (tracker.delivery.subscribers.Subscriber.reminders)
MAX_MUTE_HOURS = 24 * 365
DEADLINES_SHOWN = 10

#: (command, description) as registered with setMyCommands; admin commands are not listed
PUBLIC_COMMANDS = (
    ("start", "register this chat"),
    ("help", "what the bot can do"),
    ("profiles", "the profiles you can follow"),
    ("subscribe", "NAME [instant|daily|weekly]: follow a profile"),
    ("unsubscribe", "NAME: stop following a profile"),
    ("mode", "NAME instant|daily|weekly: alerts or a digest"),
    ("digest", "send my digest now"),
    ("deadlines", "my next 10 cut-offs"),
    ("dismiss", "CALL_ID: never show this call again"),
    ("mute", "HOURS: no alerts for a while (0 ends it)"),
    ("stop", "stop all messages to this chat"),
)
ADMIN_COMMANDS = (
    ("subscribers", "every subscriber, its channels and subscriptions"),
    ("sources", "the health of every source"),
)

Clock = Callable[[], datetime]


# -- who a chat is -------------------------------------------------------------------------

@dataclass(frozen=True)
class ChatSubscriber:
    """A subscriber whose Telegram channel is this chat."""

    id: int
    name: str
    origin: str
    timezone: str
    muted_until: datetime | None
    active: bool  # its Telegram channel

    @property
    def from_file(self) -> bool:
        return self.origin != BOT_ORIGIN


def bot_subscriber_name(chat_id: str) -> str:
    return f"tg-{chat_id}"


def chat_subscribers(connection: Connection, chat_id: str) -> list[ChatSubscriber]:
    """Every subscriber whose Telegram address is ``chat_id``: the bot's own first, then by name."""
    rows = connection.execute(
        sa.select(subscribers_table.c.id, subscribers_table.c.name, subscribers_table.c.origin,
                  subscribers_table.c.timezone, subscribers_table.c.muted_until,
                  channels_table.c.active)
        .join(channels_table, channels_table.c.subscriber_id == subscribers_table.c.id)
        .where(channels_table.c.channel == "telegram", channels_table.c.address == chat_id))
    found = [ChatSubscriber(r.id, r.name, r.origin, r.timezone, r.muted_until, bool(r.active))
             for r in rows]
    return sorted(found, key=lambda s: (s.from_file, s.name))


def _followed(connection: Connection, subscriber_ids: Iterable[int]) -> dict[str, str]:
    """Profile → mode over the given subscribers (the first subscriber's mode wins)."""
    ids = list(subscriber_ids)
    result: dict[str, str] = {}
    for subscriber_id in ids:
        for row in connection.execute(sa.select(subscriptions_table.c.profile, subscriptions_table.c.mode)
                                      .where(subscriptions_table.c.subscriber_id == subscriber_id)
                                      .order_by(subscriptions_table.c.profile)):
            result.setdefault(row.profile, row.mode)
    return result


def _set_telegram_active(connection: Connection, subscriber_ids: Iterable[int], chat_id: str,
                         active: bool, note: str | None) -> None:
    connection.execute(channels_table.update().where(
        channels_table.c.subscriber_id.in_(list(subscriber_ids)),
        channels_table.c.channel == "telegram", channels_table.c.address == chat_id,
    ).values(active=active, note=note))


def _register(connection: Connection, chat_id: str, now: datetime) -> ChatSubscriber:
    """The chat's bot subscriber, created when missing; its Telegram channel switched on."""
    found = [s for s in chat_subscribers(connection, chat_id) if not s.from_file]
    if found:
        _set_telegram_active(connection, [found[0].id], chat_id, True, None)
        return found[0]
    name = bot_subscriber_name(chat_id)
    subscriber_id = int(connection.execute(subscribers_table.insert().values(
        name=name, tenant=None, timezone=BOT_TIMEZONE, language=BOT_LANGUAGE, quiet_hours=None,
        reminders=BOT_REMINDERS, origin=BOT_ORIGIN, muted_until=None, created_at=now,
        updated_at=now)).inserted_primary_key[0])  # type: ignore[index]  # set by INSERT
    connection.execute(channels_table.insert().values(
        subscriber_id=subscriber_id, channel="telegram", address=chat_id,
        configured_address=chat_id, webhook_format="generic", active=True))
    log.info("bot subscriber created subscriber=%s", name)
    return ChatSubscriber(subscriber_id, name, BOT_ORIGIN, BOT_TIMEZONE, None, True)


def _file_refusal(subscribers: Sequence[ChatSubscriber]) -> str:
    names = ", ".join(f"<b>{tg_escape(s.name)}</b>" for s in subscribers)
    return (f"This chat's subscriptions belong to {names}, which is set up in a subscriber file. "
            "Ask whoever runs callwatch to change them there.")


def _editable(connection: Connection, chat_id: str, now: datetime,
              create: bool) -> ChatSubscriber | str:
    """The subscriber whose subscriptions this chat may change, or the reply saying why not."""
    found = chat_subscribers(connection, chat_id)
    own = [s for s in found if not s.from_file]
    if own:
        return own[0]
    if found:
        return _file_refusal(found)
    if create:
        return _register(connection, chat_id, now)
    return "You follow no profiles yet. Send /profiles to see them, then /subscribe NAME."


_NOT_REGISTERED = "This chat is not registered. Send /start first."


# -- replies to commands (pure database work; every reply is Telegram HTML) ---------------

def help_text(admin: bool = False) -> str:
    """What every command does; admin commands only for admin chats."""
    lines = ["<b>callwatch</b> tells you about EU funding calls that match your profiles.", ""]
    lines += [f"/{name} — {tg_escape(text)}" for name, text in PUBLIC_COMMANDS]
    lines += ["", "<b>How to stop</b>",
              "/unsubscribe NAME stops one profile, /mute HOURS pauses alerts, and /stop ends "
              "every message to this chat at once (/start turns them back on). If this chat "
              "was set up in a subscriber file, /stop works here too; ask whoever keeps the "
              "file to change its profiles. Emails have their own Unsubscribe link."]
    if admin:
        lines += ["", "<b>Admin</b>"] + [f"/{name} — {tg_escape(text)}" for name, text in ADMIN_COMMANDS]
    return "\n".join(lines)


def start(engine: Engine, chat_id: str, args: Sequence[str], now: datetime) -> str:
    """Register the chat (a bot subscriber), or switch its Telegram messages back on."""
    with engine.begin() as connection:
        found = chat_subscribers(connection, chat_id)
        files = [s for s in found if s.from_file]
        if files and len(files) == len(found):
            _set_telegram_active(connection, [s.id for s in files], chat_id, True, None)
            names = ", ".join(f"<b>{tg_escape(s.name)}</b>" for s in files)
            resumed = " Messages to this chat are on again." if not all(s.active for s in files) else ""
            return (f"This chat receives callwatch messages as {names} (set up in a subscriber "
                    f"file).{resumed} Send /help for what you can do here.")
        subscriber = _register(connection, chat_id, now)
        _set_telegram_active(connection, [s.id for s in found], chat_id, True, None)
        followed = _followed(connection, [subscriber.id])
    if not found:
        return ("Welcome to callwatch. This chat is registered as "
                f"<b>{tg_escape(subscriber.name)}</b> (time zone {tg_escape(BOT_TIMEZONE)}).\n"
                "Send /profiles to see what you can follow, then /subscribe NAME.")
    state = (f"You follow {len(followed)} profile(s)." if followed
             else "You follow no profiles yet: /profiles, then /subscribe NAME.")
    return f"Welcome back, messages to this chat are on. {state}"


def profiles_text(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
                  profiles: Mapping[str, str]) -> str:
    """Every profile (name → description) and which of them this chat follows, in what mode."""
    if not profiles:
        return "No profiles are configured yet."
    with engine.connect() as connection:
        followed = _followed(connection, [s.id for s in chat_subscribers(connection, chat_id)])
    lines = ["<b>Profiles</b>"]
    for name in sorted(profiles):
        mark = f" — <i>you follow it ({followed[name]})</i>" if name in followed else ""
        description = f": {tg_escape(clip(profiles[name], 200))}" if profiles[name] else ""
        lines.append(f"• <code>{tg_escape(name)}</code>{description}{mark}")
    lines.append("\nFollow one with /subscribe NAME (instant alerts) or /subscribe NAME daily.")
    return "\n".join(lines)


def resolve_profile(name: str, known: Iterable[str]) -> tuple[str | None, list[str]]:
    """The profile ``name`` means (exact, else the only case-insensitive match), or suggestions."""
    names = sorted(known)
    if name in names:
        return name, []
    folded = [n for n in names if n.casefold() == name.casefold()]
    if len(folded) == 1:
        return folded[0], []
    return None, difflib.get_close_matches(name, names, n=3, cutoff=0.5)


def _unknown_profile(name: str, suggestions: Sequence[str]) -> str:
    text = f"There is no profile called <code>{tg_escape(clip(name, 100))}</code>."
    if suggestions:
        text += " Did you mean " + " or ".join(f"<code>{tg_escape(s)}</code>" for s in suggestions) + "?"
    return text + " Send /profiles for the list."


def subscribe(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
              profiles: Iterable[str]) -> str:
    """Follow a profile, instant unless a mode is given; registers the chat when needed."""
    if not 1 <= len(args) <= 2 or (len(args) == 2 and args[1] not in MODES):
        return "Usage: /subscribe NAME [instant|daily|weekly]"
    profile, suggestions = resolve_profile(args[0], profiles)
    if profile is None:
        return _unknown_profile(args[0], suggestions)
    mode = args[1] if len(args) == 2 else "instant"
    with engine.begin() as connection:
        subscriber = _editable(connection, chat_id, now, create=True)
        if isinstance(subscriber, str):
            return subscriber
        current = connection.execute(sa.select(subscriptions_table.c.id, subscriptions_table.c.mode)
                                     .where(subscriptions_table.c.subscriber_id == subscriber.id,
                                            subscriptions_table.c.profile == profile)).first()
        if current is not None and current.mode == mode:
            return f"You already follow <code>{tg_escape(profile)}</code> ({mode})."
        if current is not None:
            connection.execute(subscriptions_table.update()
                               .where(subscriptions_table.c.id == current.id)
                               .values(mode=mode, **mode_change(current.mode, mode)))
        else:
            connection.execute(subscriptions_table.insert().values(
                subscriber_id=subscriber.id, profile=profile, mode=mode, channels=None,
                token=secrets.token_urlsafe(24)))
    log.info("bot subscribe subscriber=%s profile=%s mode=%s", subscriber.name, profile, mode)
    return f"You now follow <code>{tg_escape(profile)}</code> ({_describe_mode(mode)})."


def _describe_mode(mode: str) -> str:
    return {"instant": "an alert for each new or changed call",
            "daily": "a daily digest", "weekly": "a weekly digest"}[mode]


def unsubscribe(engine: Engine, chat_id: str, args: Sequence[str], now: datetime) -> str:
    """Stop following a profile."""
    if len(args) != 1:
        return "Usage: /unsubscribe NAME"
    with engine.begin() as connection:
        found = _followed_profile(connection, chat_id, now, args[0])
        if isinstance(found, str):
            return found
        subscriber, profile, _ = found
        connection.execute(subscriptions_table.delete().where(
            subscriptions_table.c.subscriber_id == subscriber.id,
            subscriptions_table.c.profile == profile))
    log.info("bot unsubscribe subscriber=%s profile=%s", subscriber.name, profile)
    return f"You no longer follow <code>{tg_escape(profile)}</code>."


def _followed_profile(connection: Connection, chat_id: str, now: datetime,
                      name: str) -> tuple[ChatSubscriber, str, dict[str, str]] | str:
    """The chat's subscriber, the followed profile ``name`` means and every profile it
    follows (profile → mode); or the reply saying why not (no subscriber, not followed)."""
    subscriber = _editable(connection, chat_id, now, create=False)
    if isinstance(subscriber, str):
        return subscriber
    followed = _followed(connection, [subscriber.id])
    profile, _ = resolve_profile(name, followed)
    if profile is None:
        return _not_following(name, followed)
    return subscriber, profile, followed


def _not_following(name: str, followed: Mapping[str, str]) -> str:
    text = f"You do not follow <code>{tg_escape(clip(name, 100))}</code>."
    if followed:
        text += " You follow: " + ", ".join(f"<code>{tg_escape(p)}</code>" for p in sorted(followed)) + "."
    return text


def set_mode(engine: Engine, chat_id: str, args: Sequence[str], now: datetime) -> str:
    """Switch a followed profile between instant alerts and a daily or weekly digest."""
    if len(args) != 2 or args[1] not in MODES:
        return "Usage: /mode NAME instant|daily|weekly"
    mode = args[1]
    with engine.begin() as connection:
        found = _followed_profile(connection, chat_id, now, args[0])
        if isinstance(found, str):
            return found
        subscriber, profile, followed = found
        old = followed[profile]
        connection.execute(subscriptions_table.update().where(
            subscriptions_table.c.subscriber_id == subscriber.id,
            subscriptions_table.c.profile == profile).values(mode=mode, **mode_change(old, mode)))
    log.info("bot mode subscriber=%s profile=%s mode=%s", subscriber.name, profile, mode)
    return f"<code>{tg_escape(profile)}</code>: you now get {_describe_mode(mode)}."


def request_digest(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
                   available: Iterable[str],
                   schedule: DigestSchedule = DEFAULT_SCHEDULE) -> tuple[str, int]:
    """Queue this chat's digest now (``enqueue_digests(force=True)``): the reply, messages queued.

    The caller dispatches when something was queued, so the digest comes right after.
    """
    channels = list(available)
    with engine.connect() as connection:
        found = chat_subscribers(connection, chat_id)
        modes = {s.name: set(_followed(connection, [s.id]).values()) for s in found}
    if not found:
        return _NOT_REGISTERED, 0
    muted = [s for s in found if s.muted_until is not None and s.muted_until > now]
    if len(muted) == len(found):
        return "You are muted, so there is no digest. Send /mute 0 to end it.", 0
    digesting = [s for s in found if modes[s.name] & {"daily", "weekly"}]
    if not digesting:
        return ("Your subscriptions are instant: alerts go out as calls change. "
                "Switch one to a digest with /mode NAME daily."), 0
    # counted in the outbox, not from enqueue_digests' return value: psycopg reports -1 rows
    # for INSERT … ON CONFLICT DO NOTHING, so that count is 0 on PostgreSQL
    before = _digests_queued(engine, [s.id for s in digesting])
    for chosen in digesting:
        enqueue_digests(engine, now, channels, subscriber=chosen.name, force=True,
                        schedule=schedule)
    queued = _digests_queued(engine, [s.id for s in digesting]) - before
    if not queued:
        return "Nothing new for your digest since the last one.", 0
    log.info("bot digest chat=%s messages=%d", chat_id, queued)
    return "Your digest is on its way.", queued


def _digests_queued(engine: Engine, subscriber_ids: Sequence[int]) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            sa.select(sa.func.count()).select_from(deliveries_table).where(
                deliveries_table.c.subscriber_id.in_(list(subscriber_ids)),
                deliveries_table.c.kind == "digest")).scalar() or 0)


@dataclass(frozen=True)
class Cutoff:
    """One upcoming cut-off of a matched, not dismissed call."""

    at: datetime
    call_id: str
    title: str
    identifier: str
    url: str | None


def upcoming_cutoffs(engine: Engine, profiles: Iterable[str], now: datetime,
                     limit: int = DEADLINES_SHOWN) -> list[Cutoff]:
    """The next ``limit`` cut-offs over the calls matched for ``profiles`` and not dismissed."""
    wanted = sorted(set(profiles))
    rules = RulesStore(engine)
    dismissed = rules.dismissed(wanted)
    ids = {call_id for profile in wanted for call_id in rules.matched_calls(profile)
           if (profile, call_id) not in dismissed}
    found: list[Cutoff] = []
    for stored in rules.calls(ids):
        call = stored.record
        if call.status is CallStatus.CLOSED:
            continue
        identifier = call.topic_identifier or call.call_identifier or call.native_id
        found += [Cutoff(at, call.id, call.title, identifier, call.url)
                  for at in call.deadlines if at >= now]
    return sorted(found, key=lambda c: (c.at, c.call_id))[:limit]


def deadlines(engine: Engine, chat_id: str, args: Sequence[str], now: datetime) -> str:
    """This chat's next ten cut-offs across the profiles it follows."""
    with engine.connect() as connection:
        found = chat_subscribers(connection, chat_id)
        followed = _followed(connection, [s.id for s in found])
    if not found:
        return _NOT_REGISTERED
    if not followed:
        return "You follow no profiles yet. Send /profiles, then /subscribe NAME."
    cutoffs = upcoming_cutoffs(engine, followed, now)
    if not cutoffs:
        return "No upcoming cut-offs among the calls matched for your profiles."
    zone = ZoneInfo(found[0].timezone)
    lines = [f"<b>Your next {len(cutoffs)} cut-off(s)</b>"]
    for number, cutoff in enumerate(cutoffs, 1):
        title = tg_escape(clip(cutoff.title, 160))
        link = safe_url(cutoff.url)
        shown = f'<a href="{html.escape(link)}">{title}</a>' if link else title
        lines.append(f"\n{number}. <b>{format_deadline(cutoff.at, zone)}</b> "
                     f"({describe_days(days_left(cutoff.at, now, zone))})")
        lines.append(f"{shown} · {tg_escape(clip(cutoff.identifier, 100))}")
        lines.append(f"<code>{tg_escape(cutoff.call_id)}</code>")
    return "\n".join(lines)


def _find_call(connection: Connection, text: str) -> str | None:
    """A call by its id, else by a topic identifier only one call has."""
    if connection.execute(sa.select(calls_table.c.id).where(calls_table.c.id == text)).first():
        return text
    ids = list(connection.execute(sa.select(calls_table.c.id)
                                  .where(calls_table.c.topic_identifier == text).limit(2)).scalars())
    return str(ids[0]) if len(ids) == 1 else None


def _dismiss(engine: Engine, chat_id: str, text: str, now: datetime) -> tuple[str, bool]:
    with engine.connect() as connection:
        found = chat_subscribers(connection, chat_id)
        followed = _followed(connection, [s.id for s in found])
        call_id = _find_call(connection, text)
    if not found:
        return _NOT_REGISTERED, False
    if call_id is None:
        return f"There is no call <code>{tg_escape(clip(text, 120))}</code>.", False
    if not followed:
        return "You follow no profiles, so there is nothing to dismiss it from.", False
    rules = RulesStore(engine)
    for profile in sorted(followed):
        rules.dismiss(profile, call_id, now)
    log.info("bot dismiss chat=%s call=%s profiles=%s", chat_id, call_id, ",".join(sorted(followed)))
    names = ", ".join(f"<code>{tg_escape(p)}</code>" for p in sorted(followed))
    return f"Dismissed <code>{tg_escape(call_id)}</code> for {names}: it will not come back.", True


def dismiss(engine: Engine, chat_id: str, args: Sequence[str], now: datetime) -> str:
    """Dismiss a call for every profile this chat follows (for everyone who follows them)."""
    if len(args) != 1:
        return "Usage: /dismiss CALL_ID (the id shown by /deadlines)"
    return _dismiss(engine, chat_id, args[0], now)[0]


def mute(engine: Engine, chat_id: str, args: Sequence[str], now: datetime) -> str:
    """No alerts, digests or reminders for HOURS hours; ``/mute 0`` ends it."""
    try:
        hours = float(args[0]) if len(args) == 1 else -1.0
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= MAX_MUTE_HOURS:
        return f"Usage: /mute HOURS (0 to {MAX_MUTE_HOURS}; 0 ends a mute)"
    until = now + timedelta(hours=hours) if hours else None
    with engine.begin() as connection:
        found = chat_subscribers(connection, chat_id)
        if not found:
            return _NOT_REGISTERED
        connection.execute(subscribers_table.update()
                           .where(subscribers_table.c.id.in_([s.id for s in found]))
                           .values(muted_until=until, updated_at=now))
    if until is None:
        return "Mute ended: messages go out again."
    local = format_deadline(until, ZoneInfo(found[0].timezone))
    return (f"Muted until {local}. Alerts in that time are skipped, not saved for later. "
            "Send /mute 0 to end it sooner.")


def stop(engine: Engine, chat_id: str, args: Sequence[str], now: datetime) -> str:
    """Stop every message to this chat: drop the bot subscriptions, switch the channel off."""
    with engine.begin() as connection:
        found = chat_subscribers(connection, chat_id)
        if not found:
            return _NOT_REGISTERED
        own = [s.id for s in found if not s.from_file]
        if own:
            connection.execute(subscriptions_table.delete()
                               .where(subscriptions_table.c.subscriber_id.in_(own)))
        _set_telegram_active(connection, [s.id for s in found], chat_id, False, "stopped with /stop")
    log.info("bot stop chat=%s subscribers=%s", chat_id, ",".join(s.name for s in found))
    return "Stopped: this chat gets no more messages from callwatch. Send /start to come back."


def press_button(engine: Engine, chat_id: str, data: str, now: datetime) -> tuple[str, bool]:
    """An inline button under an alert: the answer to show, and whether the buttons are done."""
    if data.startswith("dismiss:"):
        text, done = _dismiss(engine, chat_id, data.removeprefix("dismiss:"), now)
        return _plain(text), done
    if data.startswith("mode:"):
        profile, _, mode = data.removeprefix("mode:").rpartition(":")
        reply = set_mode(engine, chat_id, [profile, mode], now)
        return _plain(reply), False
    return "This button no longer works.", False


def _plain(markup: str) -> str:
    """Our own Telegram HTML as the plain text a callback answer needs (it has no parse mode)."""
    return clip(html.unescape(re.sub(r"<[^>]*>", "", markup)), 200)


# -- admin commands --------------------------------------------------------------------------

def is_admin(chat_id: str, admin_chats: Iterable[str]) -> bool:
    return chat_id in {str(c) for c in admin_chats}


ADMIN_REFUSAL = "Sorry, that command is for the people who run this callwatch."


def list_subscribers(engine: Engine, now: datetime) -> str:
    """Every subscriber with its channels (✗ when off), subscriptions and mute."""
    with engine.connect() as connection:
        subscribers = list(connection.execute(sa.select(subscribers_table)
                                              .order_by(subscribers_table.c.name)))
        channels: dict[int, list[str]] = {}
        for row in connection.execute(sa.select(channels_table).order_by(channels_table.c.channel)):
            mark = "" if row.active else " ✗"
            channels.setdefault(row.subscriber_id, []).append(f"{row.channel}{mark}")
        follows: dict[int, list[str]] = {}
        for row in connection.execute(sa.select(subscriptions_table)
                                      .order_by(subscriptions_table.c.profile)):
            follows.setdefault(row.subscriber_id, []).append(f"{row.profile} ({row.mode})")
    if not subscribers:
        return "No subscribers yet."
    lines = [f"<b>{len(subscribers)} subscriber(s)</b>"]
    for row in subscribers:
        muted = " · muted" if row.muted_until is not None and row.muted_until > now else ""
        lines.append(f"• <b>{tg_escape(row.name)}</b> [{row.origin}{muted}] "
                     f"{tg_escape(', '.join(channels.get(row.id, [])) or 'no channel')} — "
                     f"{tg_escape(', '.join(follows.get(row.id, [])) or 'no subscriptions')}")
    return "\n".join(lines)


def health_line(health: SourceStatus) -> str:
    """One source's state for /sources: ok, failing (how long) or never run."""
    name = f"<b>{tg_escape(health.name)}</b>"
    if not health.enabled:
        return f"⚪ {name}: disabled"
    if health.last_run is None:
        return f"⚪ {name}: never run"
    run = health.last_run
    when = f"{run.started_at:%Y-%m-%d %H:%M} UTC"
    if health.consecutive_failures == 0:
        return f"🟢 {name}: ok at {when}, {run.items_seen} calls"
    since = (f"last success {health.last_success:%Y-%m-%d %H:%M} UTC" if health.last_success
             else "never succeeded")
    error = f": {tg_escape(clip(run.error, 120))}" if run.error else ""
    return (f"🔴 {name}: {run.outcome.value} {health.consecutive_failures} run(s) in a row, "
            f"{since}{error}")


def source_health(engine: Engine, sources: Mapping[str, bool]) -> str:
    """Every configured source (name → enabled) with its ``SourceStatus``."""
    if not sources:
        return "No sources are configured."
    statuses = read_statuses(Store(engine), dict(sorted(sources.items())))
    return "\n".join(["<b>Sources</b>"] + [health_line(status) for status in statuses])


# -- operator alerts -------------------------------------------------------------------------

async def notify_admins(bot_or_notifier: telegram.Bot | Notifier, admin_chats: Iterable[str],
                        text: str) -> int:
    """Send ``text`` to every admin chat; a failing chat is logged and skipped. Returns how many got it."""
    message = notice(text)
    sent = 0
    for chat in admin_chats:
        try:
            if isinstance(bot_or_notifier, telegram.Bot):
                await bot_or_notifier.send_message(chat_id=chat, text=message.telegram[0],
                                                   parse_mode=ParseMode.HTML)
            else:
                await bot_or_notifier.send(Recipient(str(chat)), message)
        except (TelegramError, CallwatchError) as exc:
            log.warning("operator alert failed chat=%s error=%s", chat, exc)
        else:
            sent += 1
    return sent


# -- the Application -------------------------------------------------------------------------

def split_reply(markup: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Cut a reply into messages at line boundaries (every line closes its own tags)."""
    parts: list[str] = []
    current = ""
    for line in markup.split("\n"):
        if utf16_len(line) > limit:
            line = truncate_html(line, limit)
        candidate = f"{current}\n{line}" if current else line
        if current and utf16_len(candidate) > limit:
            parts.append(current)
            candidate = line
        current = candidate
    if current.strip():
        parts.append(current)
    return parts


Work = Callable[[str, list[str], datetime], str]
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


class TelegramBot:
    """The bot's life cycle in the daemon's event loop; handlers run the functions above."""

    def __init__(self, settings: Settings, engine: Engine, notifiers: Mapping[str, Notifier],
                 clock: Clock, token: str) -> None:
        self.settings = settings
        self.engine = engine
        self.notifiers = notifiers
        self.clock = clock
        self.admin_chats = tuple(settings.notifiers.telegram.admin_chats)
        self.application = (Application.builder().token(token)
                            .base_url(settings.notifiers.telegram.base_url).build())
        self._add_handlers()

    def _add_handlers(self) -> None:
        app = self.application
        simple: dict[str, Work] = {
            "start": _bound(start, self.engine),
            "unsubscribe": _bound(unsubscribe, self.engine),
            "mode": _bound(set_mode, self.engine),
            "deadlines": _bound(deadlines, self.engine),
            "dismiss": _bound(dismiss, self.engine),
            "mute": _bound(mute, self.engine),
            "stop": _bound(stop, self.engine),
            "profiles": self._profiles,
            "subscribe": self._subscribe,
        }
        for name, work in simple.items():
            app.add_handler(CommandHandler(name, self._command(name, work)))
        app.add_handler(CommandHandler("help", self._help))
        app.add_handler(CommandHandler("digest", self._digest))
        app.add_handler(CommandHandler("subscribers", self._admin(
            "subscribers", lambda _chat, _args, now: list_subscribers(self.engine, now))))
        app.add_handler(CommandHandler("sources", self._admin(
            "sources", lambda _chat, _args, _now: source_health(self.engine, {
                name: source.enabled for name, source in self.settings.sources.items()}))))
        app.add_handler(CallbackQueryHandler(self._button))
        app.add_error_handler(self._error)

    # -- work that needs the configuration

    def _profile_descriptions(self) -> dict[str, str]:
        from tracker.rules.service import load_profiles

        return {p.name: p.description for p in load_profiles(self.settings, self.engine)}

    def _profiles(self, chat_id: str, args: list[str], now: datetime) -> str:
        return profiles_text(self.engine, chat_id, args, now, profiles=self._profile_descriptions())

    def _subscribe(self, chat_id: str, args: list[str], now: datetime) -> str:
        return subscribe(self.engine, chat_id, args, now, profiles=self._profile_descriptions())

    # -- handlers

    async def _reply(self, update: Update, text: str) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        for part in split_reply(text):
            await self.application.bot.send_message(
                chat_id=chat.id, text=part, parse_mode=ParseMode.HTML,
                link_preview_options=telegram.LinkPreviewOptions(is_disabled=True))

    def _command(self, name: str, work: Work) -> Handler:
        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            chat = update.effective_chat
            if chat is None:
                return
            log.info("bot command=%s chat=%s", name, chat.id)
            reply = await asyncio.to_thread(work, str(chat.id), list(context.args or []), self.clock())
            await self._reply(update, reply)
        return handle

    def _admin(self, name: str, work: Work) -> Handler:
        allowed = self._command(name, work)

        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            chat = update.effective_chat
            if chat is None:
                return
            if not is_admin(str(chat.id), self.admin_chats):
                log.info("bot admin command refused command=%s chat=%s", name, chat.id)
                await self._reply(update, ADMIN_REFUSAL)
                return
            await allowed(update, context)
        return handle

    async def _help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is not None:
            await self._reply(update, help_text(is_admin(str(chat.id), self.admin_chats)))

    async def _digest(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        reply, queued = await asyncio.to_thread(
            lambda: request_digest(self.engine, str(chat.id), list(context.args or []),
                                   self.clock(), available=list(self.notifiers),
                                   schedule=self.settings.digests.schedule()))
        await self._reply(update, reply)
        if queued:
            await send_due(self.settings, self.engine, self.notifiers, self.clock)

    async def _button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or not query.data:
            return
        message = query.message
        chat_id = str(message.chat.id if message is not None else query.from_user.id)
        log.info("bot button chat=%s data=%s", chat_id, query.data)
        answer, done = await asyncio.to_thread(press_button, self.engine, chat_id, query.data,
                                               self.clock())
        await query.answer(answer)
        if done and isinstance(message, telegram.Message):
            await query.edit_message_reply_markup(reply_markup=None)

    async def _error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("bot handler failed update=%s", getattr(update, "update_id", None),
                  exc_info=context.error)
        if isinstance(update, Update) and update.effective_chat is not None:
            try:
                await self._reply(update, "Sorry, that went wrong. Please try again later.")
            except TelegramError:
                log.warning("bot could not report the failure chat=%s", update.effective_chat.id)

    # -- life cycle

    async def start(self, poll_timeout: float = 10.0) -> None:
        """Connect (getMe), register the commands, and poll getUpdates in this loop."""
        app = self.application
        await app.initialize()
        await app.bot.set_my_commands([BotCommand(name, text) for name, text in PUBLIC_COMMANDS])
        await app.start()
        assert app.updater is not None  # noqa: S101 - the builder always makes one
        await app.updater.start_polling(timeout=timedelta(seconds=poll_timeout))
        log.info("bot polling for commands")

    async def stop(self) -> None:
        """Stop polling and handlers, close the connection; safe after a failed start."""
        app = self.application
        try:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()
        except TelegramError as exc:  # the daemon must still release its lock and exit
            log.warning("bot did not stop cleanly: %s", exc)


def _bound(function: Callable[..., str], engine: Engine) -> Work:
    """``function`` with the engine bound, as a handler's work."""
    def work(chat_id: str, args: list[str], now: datetime) -> str:
        return function(engine, chat_id, args, now)
    return work


async def start_bot(settings: Settings, engine: Engine, notifiers: Mapping[str, Notifier],
                    clock: Clock, environ: Mapping[str, str] | None = None) -> TelegramBot | None:
    """The running bot, or None when Telegram is disabled, has no token, or cannot be reached.

    A bot that fails to start is logged and left out: the daemon goes on scraping and
    delivering (the Telegram channel reports its own errors).
    """
    token = (os.environ if environ is None else environ).get(TOKEN_ENV, "").strip()
    if not settings.notifiers.telegram.enabled or not token:
        return None
    bot = TelegramBot(settings, engine, notifiers, clock, token)
    try:
        await bot.start()
    except TelegramError as exc:
        log.error("bot not started: %s", exc)
        await bot.stop()
        return None
    return bot

