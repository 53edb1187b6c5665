"""Operator alerts: what the admins are told, and when, about callwatch itself.

Two things reach the admin chats (``notifiers.telegram.admin_chats``): a source that
turned red (``RED_AFTER`` failed or suspicious runs in a row, told once per streak), and
what a dispatch pass could not do (channels it switched off because the recipient is gone,
dead letters). The daemon, ``callwatch worker`` and ``callwatch run --once`` all call these
through the same pipeline steps (``tracker.pipeline.report_health`` and ``dispatch_step``),
so a cron-driven installation hears what a daemon-driven one does.

This is core logic: it sends through the generic ``Notifier.send`` port of the Telegram
channel, never through Telegram itself (the bot's ``notify_admins`` also talks to a bare
``telegram.Bot``; that part stays with the bot).
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Mapping, Sequence

from sqlalchemy.engine import Engine

from tracker.config import Settings
from tracker.delivery.dispatch import DispatchReport
from tracker.delivery.render import TELEGRAM_LIMIT, clip, tg_escape, truncate_html
from tracker.errors import CallwatchError
from tracker.ports import Message, Notifier, Recipient
from tracker.source_status import status_of
from tracker.store import drift
from tracker.store.calls import Store

log = logging.getLogger(__name__)

#: failed or suspicious runs in a row after which a source is "red" and the admins hear of
#: it (once); one rule with /healthz and `callwatch sources` (tracker/store/drift.py)
RED_AFTER = drift.RED_AFTER


def notice(text: str) -> Message:
    """A plain operator notice as a ``Message`` (escaped, within Telegram's limit)."""
    body = truncate_html(tg_escape(text), TELEGRAM_LIMIT)
    subject = clip(text.splitlines()[0] if text.strip() else "callwatch", 120)
    return Message(kind="notice", subject=subject, text=text,
                   html=f"<pre>{html.escape(text)}</pre>", telegram=(body,),
                   document={"kind": "notice", "subject": subject, "text": text})


async def alert_admins(settings: Settings, notifiers: Mapping[str, Notifier], text: str) -> int:
    """Send ``text`` to every admin chat through the Telegram channel, if there is one; a
    failing chat is logged and skipped. Returns how many chats got it."""
    notifier = notifiers.get("telegram")
    admins = settings.notifiers.telegram.admin_chats
    if notifier is None or not admins:
        return 0
    message = notice(text)
    sent = 0
    for chat in admins:
        try:
            await notifier.send(Recipient(str(chat)), message)
        except CallwatchError as exc:  # the channel maps every Bot API failure to one of these
            log.warning("operator alert failed chat=%s error=%s", chat, exc)
        else:
            sent += 1
    return sent


def turned_red(bad_in_a_row: int) -> bool:
    """Whether a source whose stored streak of failed or suspicious runs is ``bad_in_a_row``
    turned red with its latest run. Only the run that reaches ``RED_AFTER`` does, so the
    admins hear once per streak, however many processes or restarts the streak spans."""
    return bad_in_a_row == RED_AFTER


async def alert_red_source(settings: Settings, engine: Engine, notifiers: Mapping[str, Notifier],
                           source: str) -> int:
    """After a run of ``source`` is stored: if that run turned it red, its streak and last
    error to the admins. Returns how many chats were told (0 when it did not turn red)."""
    health = await asyncio.to_thread(status_of, Store(engine), source)
    if not turned_red(health.bad_in_a_row):
        return 0
    return await alert_admins(settings, notifiers,
                              red_source_text(source, health.bad_in_a_row, health.last_error))


async def alert_dispatch(settings: Settings, notifiers: Mapping[str, Notifier],
                         report: DispatchReport) -> int:
    """After a dispatch pass: one notice to the admins naming the channels it switched off
    and its dead letters, if there were any."""
    parts = []
    if report.deactivated:
        parts.append(deactivated_text(report.deactivated))
    if report.dead_letters:
        parts.append(dead_letters_text(report.dead_letters))
    if not parts:
        return 0
    return await alert_admins(settings, notifiers, "\n\n".join(parts))


def deactivated_text(channels: Sequence[str]) -> str:
    """The operator alert for channels switched off because their recipient is gone."""
    return (f"callwatch: {len(channels)} channel(s) switched off, the recipient is gone "
            f"(bot blocked, chat not found, mailbox refused):\n{_bullets(channels)}\n"
            "Nothing more is sent there until the address is corrected in the subscriber "
            "file or the chat sends /start.")


def dead_letters_text(keys: Sequence[str]) -> str:
    """The operator alert for dead letters of one dispatch pass."""
    return (f"callwatch: {len(keys)} message(s) could not be delivered (dead letters).\n"
            f"{_bullets(keys)}\nSee `callwatch deliveries --failed`.")


def _bullets(items: Sequence[str], shown: int = 10) -> str:
    """The first ``shown`` items as a bulleted list, and how many more there are."""
    lines = [f"• {item}" for item in items[:shown]]
    if len(items) > shown:
        lines.append(f"… and {len(items) - shown} more")
    return "\n".join(lines)


def red_source_text(source: str, failures: int, error: str | None) -> str:
    """The operator alert for a source that keeps failing."""
    cause = f": {error}" if error else ""
    return f"callwatch: source {source} failed {failures} time(s) in a row{cause}"
