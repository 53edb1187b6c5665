"""Telegram pacing shared by every worker through the database (``notifiers.telegram.pacing``).

Telegram counts messages per bot, not per process: 30 a second overall, one a second per
chat, 20 a minute per group. The in-process ``notifiers.telegram.Pacer`` keeps to that for
one process; with several ``callwatch worker`` processes on one PostgreSQL database each
would spend the whole budget on its own. ``SharedPacer`` keeps the budget in the table
``telegram_pacing`` instead: one row per chat and one row ``global``, each holding the
earliest time (seconds on the database server's clock, so machines need not agree on
time) at which the next message may go out. A reservation is one short transaction:

1. upsert the chat's row with ``ON CONFLICT DO UPDATE`` (which locks it): if the chat is
   not free yet, give up and wait until it is (two workers never both pass this for one
   chat: the second waits for the first's row lock, then sees the new time);
2. advance the ``global`` row by one slot (1/30 s) from ``max(its time, now)`` with
   ``UPDATE … RETURNING``: the slot is the time before the advance;
3. set the chat's next time to the slot plus one second (three for a group: 20 a minute,
   spread evenly, never a burst), and commit.

Locks are always taken chat first, then ``global``, so reservations cannot deadlock; the
``global`` row is locked for two statements, far below the 30 reservations a second it has
to serve. A ``RetryAfter`` from Telegram holds the chat in the table too, so every worker
respects it. Rows of chats that are long free are deleted now and then.

``pacer_for`` picks the pacer from the setting: ``auto`` (shared on PostgreSQL, in
process on SQLite, which is one process anyway), ``process``, ``database`` or ``off``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from notifiers.telegram import Pacer, TelegramSettings
from tracker.errors import ConfigError
from tracker.store.db import insert_for as _insert
from tracker.store.db import pacing_table

log = logging.getLogger(__name__)

GLOBAL = "global"
PRUNE_EVERY = 1000  # reservations between two clean-ups of long-free chats
FORGET_AFTER = 3600.0  # seconds a chat row outlives its last message


class SharedPacer(Pacer):
    """The ``Pacer`` interface with its budget in the database; see the module docstring."""

    def __init__(self, engine: Engine, *, per_second: float = 30.0, chat_interval: float = 1.0,
                 group_per_minute: int = 20, enabled: bool = True) -> None:
        super().__init__(per_second=per_second, chat_interval=chat_interval,
                         group_per_minute=group_per_minute, enabled=enabled)
        self.engine = engine
        self._reservations = 0
        self._pending: set[asyncio.Task[Any]] = set()

    def _spacing(self, chat_id: str) -> float:
        if self.is_group(chat_id):
            return max(self._chat_interval, 60.0 / self._group_limit)
        return self._chat_interval

    @staticmethod
    def _server_now(connection: Connection) -> float:
        if connection.dialect.name == "postgresql":
            return float(connection.execute(
                sa.text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())
        return time.time()  # SQLite: one machine, its clock

    def reserve_shared(self, chat_id: str) -> tuple[bool, float]:
        """Try to take a slot for ``chat_id``: (True, seconds until the slot) or (False,
        seconds until the chat is free)."""
        table = pacing_table
        with self.engine.begin() as connection:
            now = self._server_now(connection)
            lock_chat = _insert(connection, table).values(key=chat_id, next_at=0.0)
            ready = float(connection.execute(lock_chat.on_conflict_do_update(
                index_elements=[table.c.key], set_={"next_at": table.c.next_at})
                .returning(table.c.next_at)).scalar_one())
            if ready > now:
                return False, ready - now
            advance = _insert(connection, table).values(key=GLOBAL, next_at=now + self._interval)
            later = sa.case((table.c.next_at > now, table.c.next_at), else_=sa.literal(now))
            slot = float(connection.execute(advance.on_conflict_do_update(
                index_elements=[table.c.key], set_={"next_at": later + self._interval})
                .returning(table.c.next_at)).scalar_one()) - self._interval
            connection.execute(table.update().where(table.c.key == chat_id)
                               .values(next_at=slot + self._spacing(chat_id)))
            self._reservations += 1
            if self._reservations % PRUNE_EVERY == 0:
                connection.execute(table.delete().where(
                    table.c.key != GLOBAL, table.c.next_at < now - FORGET_AFTER))
            return True, slot - now

    async def wait(self, chat_id: str) -> None:
        """Wait until a message to ``chat_id`` keeps within every limit, and claim that slot."""
        if not self.enabled:
            return
        while True:
            reserved, seconds = await asyncio.to_thread(self.reserve_shared, chat_id)
            if reserved:
                break
            await asyncio.sleep(max(seconds, 0.001))
        if seconds > 0:
            await asyncio.sleep(seconds)

    def _hold_shared(self, chat_id: str, seconds: float) -> None:
        table = pacing_table
        with self.engine.begin() as connection:
            until = self._server_now(connection) + seconds
            statement = _insert(connection, table).values(key=chat_id, next_at=until)
            later = sa.case((table.c.next_at > until, table.c.next_at), else_=sa.literal(until))
            connection.execute(statement.on_conflict_do_update(
                index_elements=[table.c.key], set_={"next_at": later}))

    def hold(self, chat_id: str, seconds: float) -> None:
        """Telegram said RetryAfter for this chat: every worker holds it for ``seconds``."""
        super().hold(chat_id, seconds)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._hold_shared(chat_id, seconds)
            return
        task = loop.create_task(asyncio.to_thread(self._hold_shared, chat_id, seconds))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


def pacer_for(settings: TelegramSettings, engine: Engine | None) -> Pacer:
    """The pacer ``notifiers.telegram.pacing`` asks for, on this database."""
    mode = settings.pacing
    if mode == "auto":
        mode = "database" if engine is not None and engine.dialect.name == "postgresql" else "process"
    if mode == "off":
        return Pacer(enabled=False)
    if mode == "process":
        return Pacer()
    if engine is None:
        raise ConfigError("database pacing needs the database", key="notifiers.telegram.pacing")
    log.debug("channel=telegram pacing in the database")
    return SharedPacer(engine)
