"""The Telegram bot: chat commands and inline buttons that read and change the subscriber tables.

The bot is python-telegram-bot 22's ``Application``, built with ``[notifiers.telegram]
base_url`` and the token in ``CALLWATCH_TELEGRAM_TOKEN``, polling getUpdates inside the
daemon's event loop (``start_bot``/``TelegramBot.stop``). The handlers are thin: each one
runs a plain function here that takes ``(engine, chat_id, args, now)``, works on the
database in a worker thread and returns the Telegram-HTML reply, so every command is
tested without Telegram.

Commands (everyone): /start, /help, /profiles, /subscribe NAME [MODE], /unsubscribe NAME,
/mode NAME instant|daily|weekly, /digest, /deadlines, /dismiss CALL_ID, /mute HOURS,
/language [CODE], /stop.
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

Language. Every reply is translated (``tracker.i18n``; each function takes ``lang``). A
chat's language is its bot subscriber's ``language``: set when the chat registers from the
Telegram user's ``language_code`` (English when Telegram gives none we support), changed with
/language. Before it registers, and in a chat that only a subscriber file names, the bot
answers in the user's ``language_code`` (else the file's language): a file's ``language`` is
the file's to set, like its subscriptions, so /language there says so and changes nothing.
Telegram's command menu is registered in every language (``setMyCommands`` with
``language_code``), so the menu matches the user's app.

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
from tracker.dates import days_left
from tracker.delivery import REMINDER_DAYS
from tracker.delivery.dispatch import send_due
from tracker.delivery.operator_alerts import notice
from tracker.delivery.outbox import enqueue_digests, mode_change
from tracker.delivery.planning import DEFAULT_SCHEDULE, DigestSchedule
from tracker.delivery.render import (
    TELEGRAM_LIMIT,
    clip,
    safe_url,
    tg_escape,
    truncate_html,
    utf16_len,
)
from tracker.errors import CallwatchError
from tracker.i18n import (
    LANGUAGES,
    MESSAGE_LANGUAGES,
    N_,
    SOURCE_LANGUAGE,
    ListStyle,
    describe_days,
    format_datetime,
    format_list,
    language_name,
    language_or_default,
    normalize,
    translations,
)
from tracker.models import CallStatus, RunOutcome
from tracker.ports import Clock, Notifier, Recipient
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
BOT_LANGUAGE = SOURCE_LANGUAGE  # when Telegram gives no language we support
MAX_MUTE_HOURS = 24 * 365
DEADLINES_SHOWN = 10

#: (command, description) as registered with setMyCommands; admin commands are not listed.
#: The descriptions are English msgids, translated where they are shown.
PUBLIC_COMMANDS = (
    ("start", N_("register this chat")),
    ("help", N_("what the bot can do")),
    ("profiles", N_("the profiles you can follow")),
    ("subscribe", N_("NAME [instant|daily|weekly]: follow a profile")),
    ("unsubscribe", N_("NAME: stop following a profile")),
    ("mode", N_("NAME instant|daily|weekly: alerts or a digest")),
    ("digest", N_("send my digest now")),
    ("deadlines", N_("my next 10 cut-offs")),
    ("dismiss", N_("CALL_ID: never show this call again")),
    ("mute", N_("HOURS: no alerts for a while (0 ends it)")),
    ("language", N_("CODE: the language callwatch writes to you in")),
    ("stop", N_("stop all messages to this chat")),
)
ADMIN_COMMANDS = (
    ("subscribers", N_("every subscriber, its channels and subscriptions")),
    ("sources", N_("the health of every source")),
)



# -- who a chat is -------------------------------------------------------------------------

@dataclass(frozen=True)
class ChatSubscriber:
    """A subscriber whose Telegram channel is this chat."""

    id: int
    name: str
    origin: str
    timezone: str
    language: str
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
                  subscribers_table.c.timezone, subscribers_table.c.language,
                  subscribers_table.c.muted_until, channels_table.c.active)
        .join(channels_table, channels_table.c.subscriber_id == subscribers_table.c.id)
        .where(channels_table.c.channel == "telegram", channels_table.c.address == chat_id))
    found = [ChatSubscriber(r.id, r.name, r.origin, r.timezone, r.language, r.muted_until,
                            bool(r.active)) for r in rows]
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


def _register(connection: Connection, chat_id: str, now: datetime,
              language: str = BOT_LANGUAGE) -> ChatSubscriber:
    """The chat's bot subscriber, created in ``language`` when missing; its Telegram channel
    switched on (an existing subscriber keeps its language)."""
    found = [s for s in chat_subscribers(connection, chat_id) if not s.from_file]
    if found:
        _set_telegram_active(connection, [found[0].id], chat_id, True, None)
        return found[0]
    name = bot_subscriber_name(chat_id)
    subscriber_id = int(connection.execute(subscribers_table.insert().values(
        name=name, tenant=None, timezone=BOT_TIMEZONE, language=language, quiet_hours=None,
        reminders=list(REMINDER_DAYS), origin=BOT_ORIGIN, muted_until=None, created_at=now,
        updated_at=now)).inserted_primary_key[0])  # type: ignore[index]  # set by INSERT
    connection.execute(channels_table.insert().values(
        subscriber_id=subscriber_id, channel="telegram", address=chat_id,
        configured_address=chat_id, webhook_format="generic", active=True))
    log.info("bot subscriber created subscriber=%s", name)
    return ChatSubscriber(subscriber_id, name, BOT_ORIGIN, BOT_TIMEZONE, language, None, True)


def reply_language(connection: Connection, chat_id: str, user_language: str | None) -> str:
    """The language to answer this chat in: its bot subscriber's, else the Telegram user's
    (``language_code``, when supported), else its subscriber file's, else English."""
    found = chat_subscribers(connection, chat_id)
    own = [s for s in found if not s.from_file]
    if own:
        return language_or_default(own[0].language)
    return normalize(user_language) or (language_or_default(found[0].language) if found
                                        else SOURCE_LANGUAGE)


def _names(subscribers: Sequence[ChatSubscriber]) -> str:
    return ", ".join(f"<b>{tg_escape(s.name)}</b>" for s in subscribers)


def _file_refusal(subscribers: Sequence[ChatSubscriber], lang: str) -> str:
    _ = translations(lang).gettext
    return _("This chat's subscriptions belong to {names}, which is set up in a subscriber file. "
             "Ask whoever runs callwatch to change them there.").format(names=_names(subscribers))


def _editable(connection: Connection, chat_id: str, now: datetime,
              create: bool, lang: str) -> ChatSubscriber | str:
    """The subscriber whose subscriptions this chat may change, or the reply saying why not.
    A chat registered here gets ``lang``, the language it is being answered in."""
    found = chat_subscribers(connection, chat_id)
    own = [s for s in found if not s.from_file]
    if own:
        return own[0]
    if found:
        return _file_refusal(found, lang)
    if create:
        return _register(connection, chat_id, now, lang)
    return translations(lang).gettext(NO_PROFILES)


HOW_TO_STOP = N_(
    "/unsubscribe NAME stops one profile, /mute HOURS pauses alerts, and /stop ends every "
    "message to this chat at once (/start turns them back on). If this chat was set up in a "
    "subscriber file, /stop works here too; ask whoever keeps the file to change its profiles. "
    "Emails have their own Unsubscribe link.")
NOT_REGISTERED = N_("This chat is not registered. Send /start first.")
NO_PROFILES = N_("You follow no profiles yet. Send /profiles to see them, then /subscribe NAME.")


# -- replies to commands (pure database work; every reply is Telegram HTML) ---------------

def help_text(admin: bool = False, lang: str = SOURCE_LANGUAGE) -> str:
    """What every command does; admin commands only for admin chats."""
    _ = translations(lang).gettext
    lines = [_("<b>callwatch</b> tells you about EU funding calls that match your profiles."), ""]
    lines += [f"/{name} — {tg_escape(_(text))}" for name, text in PUBLIC_COMMANDS]
    lines += ["", _("<b>How to stop</b>"), _(HOW_TO_STOP)]
    if admin:
        lines += ["", _("<b>Admin</b>")] + [f"/{name} — {tg_escape(_(text))}"
                                           for name, text in ADMIN_COMMANDS]
    return "\n".join(lines)


def start(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
          lang: str = SOURCE_LANGUAGE) -> str:
    """Register the chat (a bot subscriber, in ``lang``), or switch its Telegram messages back on."""
    _ = translations(lang).gettext
    with engine.begin() as connection:
        found = chat_subscribers(connection, chat_id)
        files = [s for s in found if s.from_file]
        if files and len(files) == len(found):
            _set_telegram_active(connection, [s.id for s in files], chat_id, True, None)
            resumed = (" " + _("Messages to this chat are on again.")
                       if not all(s.active for s in files) else "")
            return _("This chat receives callwatch messages as {names} (set up in a subscriber "
                     "file).{resumed} Send /help for what you can do here.").format(
                         names=_names(files), resumed=resumed)
        subscriber = _register(connection, chat_id, now, lang)
        _set_telegram_active(connection, [s.id for s in found], chat_id, True, None)
        followed = _followed(connection, [subscriber.id])
    if not found:
        return _("Welcome to callwatch. This chat is registered as <b>{name}</b> (time zone "
                 "{zone}).\nSend /profiles to see what you can follow, then /subscribe NAME.\n"
                 "Send /language to choose the language I write in.").format(
                     name=tg_escape(subscriber.name), zone=tg_escape(BOT_TIMEZONE))
    state = (translations(lang).ngettext("You follow {n} profile.", "You follow {n} profiles.",
                                         len(followed)).format(n=len(followed)) if followed
             else _(NO_PROFILES))
    return _("Welcome back, messages to this chat are on. {state}").format(state=state)


def profiles_text(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
                  profiles: Mapping[str, str], lang: str = SOURCE_LANGUAGE) -> str:
    """Every profile (name → description) and which of them this chat follows, in what mode."""
    _ = translations(lang).gettext
    if not profiles:
        return _("No profiles are configured yet.")
    with engine.connect() as connection:
        followed = _followed(connection, [s.id for s in chat_subscribers(connection, chat_id)])
    lines = [_("<b>Profiles</b>")]
    for name in sorted(profiles):
        mark = (" — <i>" + _("you follow it ({mode})").format(mode=_mode_name(followed[name], lang))
                + "</i>") if name in followed else ""
        description = f": {tg_escape(clip(profiles[name], 200))}" if profiles[name] else ""
        lines.append(f"• <code>{tg_escape(name)}</code>{description}{mark}")
    lines.append("\n" + _("Follow one with /subscribe NAME (instant alerts) or /subscribe NAME daily."))
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


def _codes(names: Iterable[str], lang: str, style: ListStyle = "standard") -> str:
    """Names as <code>, joined the language's way ("a, b and c"; "a or b" with style "or")."""
    return format_list([f"<code>{tg_escape(n)}</code>" for n in names], lang, style)


def _unknown_profile(name: str, suggestions: Sequence[str], lang: str) -> str:
    _ = translations(lang).gettext
    text = _("There is no profile called {name}.").format(name=f"<code>{tg_escape(clip(name, 100))}</code>")
    if suggestions:
        text += " " + _("Did you mean {names}?").format(names=_codes(suggestions, lang, "or"))
    return text + " " + _("Send /profiles for the list.")


def subscribe(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
              profiles: Iterable[str], lang: str = SOURCE_LANGUAGE) -> str:
    """Follow a profile, instant unless a mode is given; registers the chat when needed."""
    _ = translations(lang).gettext
    if not 1 <= len(args) <= 2 or (len(args) == 2 and args[1] not in MODES):
        return _("Usage: /subscribe NAME [instant|daily|weekly]")
    profile, suggestions = resolve_profile(args[0], profiles)
    if profile is None:
        return _unknown_profile(args[0], suggestions, lang)
    mode = args[1] if len(args) == 2 else "instant"
    with engine.begin() as connection:
        subscriber = _editable(connection, chat_id, now, create=True, lang=lang)
        if isinstance(subscriber, str):
            return subscriber
        current = connection.execute(sa.select(subscriptions_table.c.id, subscriptions_table.c.mode)
                                     .where(subscriptions_table.c.subscriber_id == subscriber.id,
                                            subscriptions_table.c.profile == profile)).first()
        if current is not None and current.mode == mode:
            return _("You already follow {profile} ({mode}).").format(
                profile=f"<code>{tg_escape(profile)}</code>", mode=_mode_name(mode, lang))
        if current is not None:
            connection.execute(subscriptions_table.update()
                               .where(subscriptions_table.c.id == current.id)
                               .values(mode=mode, **mode_change(current.mode, mode)))
        else:
            connection.execute(subscriptions_table.insert().values(
                subscriber_id=subscriber.id, profile=profile, mode=mode, channels=None,
                token=secrets.token_urlsafe(24)))
    log.info("bot subscribe subscriber=%s profile=%s mode=%s", subscriber.name, profile, mode)
    return _("You now follow {profile} ({what}).").format(
        profile=f"<code>{tg_escape(profile)}</code>", what=_describe_mode(mode, lang))


#: a mode's name in a reply ("instant", "daily", "weekly" are also what /mode takes)
_MODE_NAMES = {"instant": N_("instant"), "daily": N_("daily"), "weekly": N_("weekly")}
_MODE_DESCRIPTIONS = {"instant": N_("an alert for each new or changed call"),
                      "daily": N_("a daily digest"), "weekly": N_("a weekly digest")}


def _mode_name(mode: str, lang: str) -> str:
    return translations(lang).gettext(_MODE_NAMES[mode]) if mode in _MODE_NAMES else mode


def _describe_mode(mode: str, lang: str) -> str:
    return translations(lang).gettext(_MODE_DESCRIPTIONS[mode])


def unsubscribe(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
                lang: str = SOURCE_LANGUAGE) -> str:
    """Stop following a profile."""
    _ = translations(lang).gettext
    if len(args) != 1:
        return _("Usage: /unsubscribe NAME")
    with engine.begin() as connection:
        found = _followed_profile(connection, chat_id, now, args[0], lang)
        if isinstance(found, str):
            return found
        subscriber, profile, _followed_modes = found
        connection.execute(subscriptions_table.delete().where(
            subscriptions_table.c.subscriber_id == subscriber.id,
            subscriptions_table.c.profile == profile))
    log.info("bot unsubscribe subscriber=%s profile=%s", subscriber.name, profile)
    return _("You no longer follow {profile}.").format(profile=f"<code>{tg_escape(profile)}</code>")


def _followed_profile(connection: Connection, chat_id: str, now: datetime, name: str,
                      lang: str) -> tuple[ChatSubscriber, str, dict[str, str]] | str:
    """The chat's subscriber, the followed profile ``name`` means and every profile it
    follows (profile → mode); or the reply saying why not (no subscriber, not followed)."""
    subscriber = _editable(connection, chat_id, now, create=False, lang=lang)
    if isinstance(subscriber, str):
        return subscriber
    followed = _followed(connection, [subscriber.id])
    profile, _suggestions = resolve_profile(name, followed)
    if profile is None:
        return _not_following(name, followed, lang)
    return subscriber, profile, followed


def _not_following(name: str, followed: Mapping[str, str], lang: str) -> str:
    _ = translations(lang).gettext
    text = _("You do not follow {name}.").format(name=f"<code>{tg_escape(clip(name, 100))}</code>")
    if followed:
        text += " " + _("You follow: {names}.").format(names=_codes(sorted(followed), lang))
    return text


def set_mode(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
             lang: str = SOURCE_LANGUAGE) -> str:
    """Switch a followed profile between instant alerts and a daily or weekly digest."""
    _ = translations(lang).gettext
    if len(args) != 2 or args[1] not in MODES:
        return _("Usage: /mode NAME instant|daily|weekly")
    mode = args[1]
    with engine.begin() as connection:
        found = _followed_profile(connection, chat_id, now, args[0], lang)
        if isinstance(found, str):
            return found
        subscriber, profile, followed = found
        old = followed[profile]
        connection.execute(subscriptions_table.update().where(
            subscriptions_table.c.subscriber_id == subscriber.id,
            subscriptions_table.c.profile == profile).values(mode=mode, **mode_change(old, mode)))
    log.info("bot mode subscriber=%s profile=%s mode=%s", subscriber.name, profile, mode)
    return _("{profile}: you now get {what}.").format(
        profile=f"<code>{tg_escape(profile)}</code>", what=_describe_mode(mode, lang))


def set_language(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
                 lang: str = SOURCE_LANGUAGE) -> str:
    """Show the chat's language, or change it: the bot subscriber's ``language``, which its
    replies, alerts and digests follow (docs/translations.md). The reply says whether the
    messages are translated in full (``MESSAGE_LANGUAGES``) or partly still in English. A
    subscriber file's language is the file's to set.

    The reply to a change is in the new language; every other reply is in ``lang``.
    """
    _ = translations(lang).gettext
    choices = ", ".join(f"<code>{code}</code> ({tg_escape(language_name(code))})" for code in LANGUAGES)
    if not args:
        return (_("I write to you in {language}. Change it with /language CODE, one of: {choices}."
                  ).format(language=tg_escape(language_name(lang)), choices=choices)
                + " " + _messages_note(lang))
    wanted = normalize(args[0]) if len(args) == 1 else None
    if wanted is None:
        return _("There is no language {code} here. Choose one of: {choices}.").format(
            code=f"<code>{tg_escape(clip(' '.join(args), 20))}</code>", choices=choices)
    with engine.begin() as connection:
        found = chat_subscribers(connection, chat_id)
        own = [s for s in found if not s.from_file]
        if found and not own:
            return _("This chat's language is set for {names} in a subscriber file. Ask whoever "
                     "runs callwatch to change it there.").format(names=_names(found))
        if own:
            connection.execute(subscribers_table.update()
                               .where(subscribers_table.c.id.in_([s.id for s in own]))
                               .values(language=wanted, updated_at=now))
        else:
            _register(connection, chat_id, now, wanted)
    log.info("bot language chat=%s language=%s", chat_id, wanted)
    return translations(wanted).gettext(
        "Done: I now write to you in {language}.").format(
            language=tg_escape(language_name(wanted))) + " " + _messages_note(wanted)


def _messages_note(lang: str) -> str:
    """Whether the alerts and digests are in ``lang`` too, or partly still in English."""
    _ = translations(lang).gettext
    if language_or_default(lang) in MESSAGE_LANGUAGES:
        return _("Alerts and digests are written in it too.")
    return _("Alerts and digests are partly in English until their translation is complete.")


def request_digest(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
                   available: Iterable[str],
                   schedule: DigestSchedule = DEFAULT_SCHEDULE,
                   lang: str = SOURCE_LANGUAGE) -> tuple[str, int]:
    """Queue this chat's digest now (``enqueue_digests(force=True)``): the reply, messages queued.

    The caller dispatches when something was queued, so the digest comes right after.
    """
    _ = translations(lang).gettext
    channels = list(available)
    with engine.connect() as connection:
        found = chat_subscribers(connection, chat_id)
        modes = {s.name: set(_followed(connection, [s.id]).values()) for s in found}
    if not found:
        return _(NOT_REGISTERED), 0
    muted = [s for s in found if s.muted_until is not None and s.muted_until > now]
    if len(muted) == len(found):
        return _("You are muted, so there is no digest. Send /mute 0 to end it."), 0
    digesting = [s for s in found if modes[s.name] & {"daily", "weekly"}]
    if not digesting:
        return _("Your subscriptions are instant: alerts go out as calls change. "
                 "Switch one to a digest with /mode NAME daily."), 0
    # counted in the outbox, not from enqueue_digests' return value: psycopg reports -1 rows
    # for INSERT … ON CONFLICT DO NOTHING, so that count is 0 on PostgreSQL
    before = _digests_queued(engine, [s.id for s in digesting])
    for chosen in digesting:
        enqueue_digests(engine, now, channels, subscriber=chosen.name, force=True,
                        schedule=schedule)
    queued = _digests_queued(engine, [s.id for s in digesting]) - before
    if not queued:
        return _("Nothing new for your digest since the last one."), 0
    log.info("bot digest chat=%s messages=%d", chat_id, queued)
    return _("Your digest is on its way."), queued


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


def deadlines(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
              lang: str = SOURCE_LANGUAGE) -> str:
    """This chat's next ten cut-offs across the profiles it follows."""
    _ = translations(lang).gettext
    with engine.connect() as connection:
        found = chat_subscribers(connection, chat_id)
        followed = _followed(connection, [s.id for s in found])
    if not found:
        return _(NOT_REGISTERED)
    if not followed:
        return _(NO_PROFILES)
    cutoffs = upcoming_cutoffs(engine, followed, now)
    if not cutoffs:
        return _("No upcoming cut-offs among the calls matched for your profiles.")
    zone = ZoneInfo(found[0].timezone)
    lines = ["<b>" + translations(lang).ngettext(
        "Your next cut-off", "Your next {n} cut-offs", len(cutoffs)).format(n=len(cutoffs)) + "</b>"]
    for number, cutoff in enumerate(cutoffs, 1):
        title = tg_escape(clip(cutoff.title, 160))
        link = safe_url(cutoff.url)
        shown = f'<a href="{html.escape(link)}">{title}</a>' if link else title
        lines.append(f"\n{number}. <b>{tg_escape(format_datetime(cutoff.at, lang, zone))}</b> "
                     f"({tg_escape(describe_days(days_left(cutoff.at, now, zone), lang))})")
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


def _dismiss(engine: Engine, chat_id: str, text: str, now: datetime,
             lang: str) -> tuple[str, bool]:
    _ = translations(lang).gettext
    with engine.connect() as connection:
        found = chat_subscribers(connection, chat_id)
        followed = _followed(connection, [s.id for s in found])
        call_id = _find_call(connection, text)
    if not found:
        return _(NOT_REGISTERED), False
    if call_id is None:
        return _("There is no call {call}.").format(
            call=f"<code>{tg_escape(clip(text, 120))}</code>"), False
    if not followed:
        return _("You follow no profiles, so there is nothing to dismiss it from."), False
    rules = RulesStore(engine)
    for profile in sorted(followed):
        rules.dismiss(profile, call_id, now)
    log.info("bot dismiss chat=%s call=%s profiles=%s", chat_id, call_id, ",".join(sorted(followed)))
    return _("Dismissed {call} for {profiles}: it will not come back.").format(
        call=f"<code>{tg_escape(call_id)}</code>", profiles=_codes(sorted(followed), lang)), True


def dismiss(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
            lang: str = SOURCE_LANGUAGE) -> str:
    """Dismiss a call for every profile this chat follows (for everyone who follows them)."""
    if len(args) != 1:
        return translations(lang).gettext("Usage: /dismiss CALL_ID (the id shown by /deadlines)")
    return _dismiss(engine, chat_id, args[0], now, lang)[0]


def mute(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
         lang: str = SOURCE_LANGUAGE) -> str:
    """No alerts, digests or reminders for HOURS hours; ``/mute 0`` ends it."""
    _ = translations(lang).gettext
    try:
        hours = float(args[0]) if len(args) == 1 else -1.0
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= MAX_MUTE_HOURS:
        return _("Usage: /mute HOURS (0 to {max}; 0 ends a mute)").format(max=MAX_MUTE_HOURS)
    until = now + timedelta(hours=hours) if hours else None
    with engine.begin() as connection:
        found = chat_subscribers(connection, chat_id)
        if not found:
            return _(NOT_REGISTERED)
        connection.execute(subscribers_table.update()
                           .where(subscribers_table.c.id.in_([s.id for s in found]))
                           .values(muted_until=until, updated_at=now))
    if until is None:
        return _("Mute ended: messages go out again.")
    local = format_datetime(until, lang, found[0].timezone)
    return _("Muted until {until}. Alerts in that time are skipped, not saved for later. "
             "Send /mute 0 to end it sooner.").format(until=tg_escape(local))


def stop(engine: Engine, chat_id: str, args: Sequence[str], now: datetime, *,
         lang: str = SOURCE_LANGUAGE) -> str:
    """Stop every message to this chat: drop the bot subscriptions, switch the channel off."""
    _ = translations(lang).gettext
    with engine.begin() as connection:
        found = chat_subscribers(connection, chat_id)
        if not found:
            return _(NOT_REGISTERED)
        own = [s.id for s in found if not s.from_file]
        if own:
            connection.execute(subscriptions_table.delete()
                               .where(subscriptions_table.c.subscriber_id.in_(own)))
        _set_telegram_active(connection, [s.id for s in found], chat_id, False, "stopped with /stop")
    log.info("bot stop chat=%s subscribers=%s", chat_id, ",".join(s.name for s in found))
    return _("Stopped: this chat gets no more messages from callwatch. Send /start to come back.")


def press_button(engine: Engine, chat_id: str, data: str, now: datetime, *,
                 lang: str = SOURCE_LANGUAGE) -> tuple[str, bool]:
    """An inline button under an alert: the answer to show, and whether the buttons are done."""
    if data.startswith("dismiss:"):
        text, done = _dismiss(engine, chat_id, data.removeprefix("dismiss:"), now, lang)
        return _plain(text), done
    if data.startswith("mode:"):
        profile, _sep, mode = data.removeprefix("mode:").rpartition(":")
        reply = set_mode(engine, chat_id, [profile, mode], now, lang=lang)
        return _plain(reply), False
    return translations(lang).gettext("This button no longer works."), False


def _plain(markup: str) -> str:
    """Our own Telegram HTML as the plain text a callback answer needs (it has no parse mode)."""
    return clip(html.unescape(re.sub(r"<[^>]*>", "", markup)), 200)


# -- admin commands --------------------------------------------------------------------------

def is_admin(chat_id: str, admin_chats: Iterable[str]) -> bool:
    return chat_id in {str(c) for c in admin_chats}


ADMIN_REFUSAL = N_("Sorry, that command is for the people who run this callwatch.")


def list_subscribers(engine: Engine, now: datetime, lang: str = SOURCE_LANGUAGE) -> str:
    """Every subscriber with its channels (✗ when off), subscriptions and mute."""
    _ = translations(lang).gettext
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
            follows.setdefault(row.subscriber_id, []).append(
                f"{row.profile} ({_mode_name(row.mode, lang)})")
    if not subscribers:
        return _("No subscribers yet.")
    lines = ["<b>" + translations(lang).ngettext("{n} subscriber", "{n} subscribers",
                                                 len(subscribers)).format(n=len(subscribers)) + "</b>"]
    for row in subscribers:
        muted = " · " + _("muted") if row.muted_until is not None and row.muted_until > now else ""
        lines.append(f"• <b>{tg_escape(row.name)}</b> [{row.origin}{muted}] "
                     f"{tg_escape(', '.join(channels.get(row.id, [])) or _('no channel'))} — "
                     f"{tg_escape(', '.join(follows.get(row.id, [])) or _('no subscriptions'))}")
    return "\n".join(lines)


#: how a failing run ended, in /sources ("failed (2 runs in a row)")
_OUTCOMES = {RunOutcome.OK: N_("ok"), RunOutcome.PARTIAL: N_("partial"),
             RunOutcome.FAILED: N_("failed"), RunOutcome.SUSPICIOUS: N_("suspicious")}


def health_line(health: SourceStatus, lang: str = SOURCE_LANGUAGE) -> str:
    """One source's state for /sources: ok, failing (how long) or never run.

    Times stay in UTC, written as ISO dates: the operators' form, the same in every language.
    """
    t = translations(lang)
    name = f"<b>{tg_escape(health.name)}</b>"
    if not health.enabled:
        return f"⚪ {name}: " + t.gettext("disabled")
    if health.last_run is None:
        return f"⚪ {name}: " + t.gettext("never run")
    run = health.last_run
    when = f"{run.started_at:%Y-%m-%d %H:%M} UTC"
    if health.consecutive_failures == 0:
        return f"🟢 {name}: " + t.ngettext("ok at {when}, {n} call", "ok at {when}, {n} calls",
                                           run.items_seen).format(when=when, n=run.items_seen)
    since = (t.gettext("last success {when}").format(when=f"{health.last_success:%Y-%m-%d %H:%M} UTC")
             if health.last_success else t.gettext("never succeeded"))
    error = f": {tg_escape(clip(run.error, 120))}" if run.error else ""
    outcome = t.gettext(_OUTCOMES[run.outcome]) if run.outcome in _OUTCOMES else run.outcome.value
    streak = t.ngettext("{outcome} ({n} run in a row)", "{outcome} ({n} runs in a row)",
                        health.consecutive_failures).format(outcome=outcome,
                                                            n=health.consecutive_failures)
    return f"🔴 {name}: {streak}, {since}{error}"


def source_health(engine: Engine, sources: Mapping[str, bool], lang: str = SOURCE_LANGUAGE) -> str:
    """Every configured source (name → enabled) with its ``SourceStatus``."""
    _ = translations(lang).gettext
    if not sources:
        return _("No sources are configured.")
    statuses = read_statuses(Store(engine), dict(sorted(sources.items())))
    return "\n".join([_("<b>Sources</b>")] + [health_line(status, lang) for status in statuses])


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


#: a command's work: (chat id, arguments, now, the language to answer in) → the reply
Work = Callable[[str, list[str], datetime, str], str]
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


def _user_language(update: object) -> str | None:
    """The Telegram user's ``language_code`` (an IETF tag such as "de" or "pt-br"), if any."""
    user = update.effective_user if isinstance(update, Update) else None
    return user.language_code if user is not None else None


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
            "language": _bound(set_language, self.engine),
            "stop": _bound(stop, self.engine),
            "help": lambda chat, _args, _now, lang: help_text(is_admin(chat, self.admin_chats), lang),
            "profiles": self._profiles,
            "subscribe": self._subscribe,
        }
        for name, work in simple.items():
            app.add_handler(CommandHandler(name, self._command(name, work)))
        app.add_handler(CommandHandler("digest", self._digest))
        app.add_handler(CommandHandler("subscribers", self._admin(
            "subscribers", lambda _chat, _args, now, lang: list_subscribers(self.engine, now, lang))))
        app.add_handler(CommandHandler("sources", self._admin(
            "sources", lambda _chat, _args, _now, lang: source_health(self.engine, {
                name: source.enabled for name, source in self.settings.sources.items()}, lang))))
        app.add_handler(CallbackQueryHandler(self._button))
        app.add_error_handler(self._error)

    # -- work that needs the configuration

    def _profile_descriptions(self) -> dict[str, str]:
        from tracker.rules.service import load_profiles

        return {p.name: p.description for p in load_profiles(self.settings, self.engine)}

    def _profiles(self, chat_id: str, args: list[str], now: datetime, lang: str) -> str:
        return profiles_text(self.engine, chat_id, args, now, profiles=self._profile_descriptions(),
                             lang=lang)

    def _subscribe(self, chat_id: str, args: list[str], now: datetime, lang: str) -> str:
        return subscribe(self.engine, chat_id, args, now, profiles=self._profile_descriptions(),
                         lang=lang)

    def language(self, chat_id: str, user_language: str | None) -> str:
        """The language to answer ``chat_id`` in (``reply_language``; reads the database)."""
        with self.engine.connect() as connection:
            return reply_language(connection, chat_id, user_language)

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
            chat_id, args, now = str(chat.id), list(context.args or []), self.clock()
            user_language = _user_language(update)
            reply = await asyncio.to_thread(
                lambda: work(chat_id, args, now, self.language(chat_id, user_language)))
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
                lang = await asyncio.to_thread(self.language, str(chat.id), _user_language(update))
                await self._reply(update, translations(lang).gettext(ADMIN_REFUSAL))
                return
            await allowed(update, context)
        return handle

    async def _digest(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        chat_id, args, user_language = str(chat.id), list(context.args or []), _user_language(update)
        reply, queued = await asyncio.to_thread(
            lambda: request_digest(self.engine, chat_id, args, self.clock(),
                                   available=list(self.notifiers),
                                   schedule=self.settings.digests.schedule(),
                                   lang=self.language(chat_id, user_language)))
        await self._reply(update, reply)
        if queued:
            await send_due(self.settings, self.engine, self.notifiers, self.clock)

    async def _button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or not query.data:
            return
        message = query.message
        chat_id = str(message.chat.id if message is not None else query.from_user.id)
        data, user_language = query.data, query.from_user.language_code
        log.info("bot button chat=%s data=%s", chat_id, data)
        answer, done = await asyncio.to_thread(
            lambda: press_button(self.engine, chat_id, data, self.clock(),
                                 lang=self.language(chat_id, user_language)))
        await query.answer(answer)
        if done and isinstance(message, telegram.Message):
            await query.edit_message_reply_markup(reply_markup=None)

    async def _error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("bot handler failed update=%s", getattr(update, "update_id", None),
                  exc_info=context.error)
        if isinstance(update, Update) and update.effective_chat is not None:
            # the database may be what failed: the user's own language, not the chat's
            lang = language_or_default(_user_language(update))
            try:
                await self._reply(update, translations(lang).gettext(
                    "Sorry, that went wrong. Please try again later."))
            except TelegramError:
                log.warning("bot could not report the failure chat=%s", update.effective_chat.id)

    # -- life cycle

    async def start(self, poll_timeout: float = 10.0) -> None:
        """Connect (getMe), register the commands (the menu in every language), and poll
        getUpdates in this loop."""
        app = self.application
        await app.initialize()
        for lang in LANGUAGES:  # English with no language_code: the menu of every other app
            _ = translations(lang).gettext
            await app.bot.set_my_commands([BotCommand(name, _(text)) for name, text in PUBLIC_COMMANDS],
                                          language_code=None if lang == SOURCE_LANGUAGE else lang)
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
    def work(chat_id: str, args: list[str], now: datetime, lang: str) -> str:
        return function(engine, chat_id, args, now, lang=lang)
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

