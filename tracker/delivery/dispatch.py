"""The dispatcher: sends what the outbox holds, each message once per key.

A pass claims due rows (``pending`` and due, or ``sending`` with an expired lease) by
stamping them with the pass's claim token and a lease (``dispatch.lease``), sends each
through its channel, and records the outcome in its own small transaction right after the
channel answers:

- accepted: ``sent``; a Telegram chat that migrated gets its new id stored;
- ``ChannelUnavailable`` (network, 5xx, flood control): back to ``pending`` with
  exponential backoff and jitter (at least the channel's ``retry_after``, capped); after
  ``max_attempts`` it is a dead letter;
- ``ChatMigrated``: the new chat id is stored and the rest is sent at once;
- ``ChannelGone`` (bot blocked, chat not found, mailbox refused): the subscriber's channel is
  deactivated (``DispatchReport.deactivated``, for the admins) and the message is a dead
  letter; ``ChannelRejected``: a dead letter;
- any other exception from a channel (a bug, a value no one expected): logged with its
  traceback and counted as a failed attempt like ``ChannelUnavailable``, so one row never
  stops the pass nor stays ``sending``;
- a channel that is not configured in this process: the row is left for later;
- ``ConfigError`` (rejected credentials, an untrusted server certificate): logged, and that
  channel's claimed rows are given back untouched (no attempt counted) and not claimed
  again in this pass; they go out once the configuration is fixed.

Exactly once however long a pass takes. A pass may outlive its lease: 200 rows to a
Telegram group paced at 20 a minute take ten minutes, a slow SMTP relay seconds a mail.
Meanwhile other passes (the daemon's next dispatch and digest jobs, other workers) claim
what is due, and a ``sending`` row whose lease ran out is due. Two things keep them apart:

1. while a pass works it renews the lease of every row it still holds, three times per
   lease (``_keep_leases``), so its rows never look abandoned while it lives;
2. right before each send it renews that one row's lease with a conditional UPDATE (this
   claim token, still ``sending``); when no row matches, another pass took the row over
   after the lease ran out (this process stalled, or its clock lags), and this pass does
   not send it (outcome ``lost``). Outcomes other than ``sent`` are recorded under the
   same condition, so a pass never overwrites a row another pass now holds.

Leases are compared with each process's clock: workers on several machines need clocks
that agree to well within ``dispatch.lease``.

Parts of a long Telegram message that went out before a failure are counted
(``parts_sent``), so a retry sends only the rest.

The one window left: a crash after the channel accepted a message and before the ``sent``
commit (or a pass that stalls longer than a lease in the middle of one send). The lease
then expires and the message goes out a second time. The window is one network round trip
plus one local commit; Telegram and SMTP have no idempotency key we could pass to close it
(webhooks carry a stable ``webhook-id`` that receivers can dedupe on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tracker.delivery.outbox import DEAD, PENDING, SENDING, SENT
from tracker.delivery.unsubscribe import token_for_delivery
from tracker.errors import (
    ChannelGone,
    ChannelRejected,
    ChannelUnavailable,
    ChatMigrated,
    ConfigError,
)
from tracker.ports import Clock, Message, Notifier, Recipient
from tracker.store.db import (
    bodies_table,
    channels_table,
    deliveries_table,
    subscribers_table,
)

if TYPE_CHECKING:
    from tracker.config import Settings

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8
BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=2)
RENEWALS_PER_LEASE = 3  # a pass renews the leases it holds this often within one lease


@dataclass
class DispatchReport:
    """What one dispatch pass did, by channel and outcome.

    Outcomes: ``sent``, ``retry``, ``dead``, ``migrated``, and ``lost`` (a row another pass
    took over after this one's lease ran out, not sent here). ``deactivated`` names each
    channel this pass switched off because its recipient is gone, for the admins.
    """

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_letters: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(n for (_, result), n in self.outcomes.items() if result == outcome)


def _seconds(value: object) -> float | None:
    """``value`` as a finite number of seconds, or None for anything else (nan, inf, 1e400, text)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = float(value)  # type: ignore[arg-type]  # checked by the except below
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) else None


def backoff(attempts: int, retry_after: float | None) -> timedelta:
    """Exponential backoff with jitter, never shorter than the channel's own Retry-After.

    It never raises, whatever a channel reported: a Retry-After that is not a finite number
    (nan, inf) counts as none, a negative one as zero, and none is waited longer than
    ``MAX_BACKOFF`` (``timedelta`` overflows at about 1e14 seconds, and a server asking for
    days would hold a message longer than any retry is worth: it is tried again and, after
    ``max_attempts``, becomes a dead letter the admins hear of).
    """
    doublings = min(max(attempts - 1, 0), 20)  # 30 s doubled 20 times is far past the cap
    wait = min(BACKOFF * (2.0 ** doublings), MAX_BACKOFF) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not crypto
    seconds = _seconds(retry_after)
    if seconds is not None and seconds > 0:
        wait = max(wait, timedelta(seconds=min(seconds, MAX_BACKOFF.total_seconds())))
    return wait


def with_bodies() -> sa.Join:
    """The outbox joined to the shared bodies that digests keep their message in."""
    return deliveries_table.outerjoin(bodies_table, bodies_table.c.id == deliveries_table.c.body_id)


def outbox_columns() -> list[sa.ColumnElement[Any]]:
    """Every outbox column, ``message`` taken from the shared body when the row has one."""
    message = sa.case((deliveries_table.c.body_id.is_(None), deliveries_table.c.message),
                      else_=bodies_table.c.message).label("message")
    return [c for c in deliveries_table.c if c.name != "message"] + [message]


def due_queries(now: datetime, limit: int,
                channels: tuple[str, ...] | None = None) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The two queries that find due rows: leases that expired, then pending rows by due time.

    Two queries rather than one with an OR, so each reads its rows in order straight off
    its own partial index (``ix_deliveries_leases``, ``ix_deliveries_pending``) and stops at
    ``limit``, however many rows wait or were sent before.
    """
    table = deliveries_table
    expired = (sa.select(table.c.id)
               .where(table.c.status == SENDING, table.c.lease_until < now)
               .order_by(table.c.lease_until).limit(limit))
    pending = (sa.select(table.c.id)
               .where(table.c.status == PENDING, table.c.next_attempt_at <= now)
               .order_by(table.c.next_attempt_at, table.c.id).limit(limit))
    if channels is not None:
        expired = expired.where(table.c.channel.in_(channels))
        pending = pending.where(table.c.channel.in_(channels))
    return expired, pending


def claim(engine: Engine, now: datetime, limit: int, lease: timedelta = LEASE,
          channels: tuple[str, ...] | None = None, token: str | None = None) -> list[Any]:
    """Claim up to ``limit`` due rows for this pass; return them with their recipients.

    ``token`` is the pass's claim token (a new one when None): the rows carry it in
    ``worker`` for as long as the pass holds them. On PostgreSQL the candidate rows are
    locked with ``FOR UPDATE SKIP LOCKED`` so several workers never claim the same row; on
    SQLite the conditional UPDATE does the same job.
    """
    token = token or uuid.uuid4().hex
    due = sa.or_(
        sa.and_(deliveries_table.c.status == PENDING, deliveries_table.c.next_attempt_at <= now),
        sa.and_(deliveries_table.c.status == SENDING, deliveries_table.c.lease_until < now),
    )
    with engine.begin() as connection:
        ids: list[int] = []
        for query in due_queries(now, limit, channels):
            if len(ids) >= limit:
                break
            query = query.limit(limit - len(ids))
            if connection.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids.extend(connection.execute(query).scalars())
        if not ids:
            return []
        connection.execute(deliveries_table.update()
                           .where(deliveries_table.c.id.in_(ids), due)
                           .values(status=SENDING, lease_until=now + lease, worker=token))
        return list(connection.execute(
            sa.select(*outbox_columns(), channels_table.c.address, channels_table.c.webhook_format,
                      channels_table.c.active, subscribers_table.c.name.label("subscriber_name"))
            .select_from(with_bodies())
            .join(subscribers_table, subscribers_table.c.id == deliveries_table.c.subscriber_id)
            .outerjoin(channels_table, sa.and_(
                channels_table.c.subscriber_id == deliveries_table.c.subscriber_id,
                channels_table.c.channel == deliveries_table.c.channel))
            .where(deliveries_table.c.id.in_(ids), deliveries_table.c.worker == token,
                   deliveries_table.c.status == SENDING)
            .order_by(deliveries_table.c.id)))


def renew(engine: Engine, token: str, ids: Collection[int], until: datetime) -> int:
    """Extend to ``until`` the lease of those of ``ids`` that ``token`` still holds; how many.

    One conditional UPDATE: a row another pass has claimed since (its ``worker`` is that
    pass's token) or that is no longer ``sending`` is left alone. The claim's own UPDATE
    takes the same row lock (PostgreSQL) or the database's write lock (SQLite), so a row is
    either renewed here or taken over there, never both.
    """
    if not ids:
        return 0
    with engine.begin() as connection:
        result = connection.execute(
            deliveries_table.update()
            .where(deliveries_table.c.id.in_(list(ids)), deliveries_table.c.worker == token,
                   deliveries_table.c.status == SENDING)
            .values(lease_until=until))
        return int(result.rowcount)


def _update(engine: Engine, row_id: int, *, held_by: str | None = None, **values: Any) -> bool:
    """Write a row's outcome; with ``held_by``, only while that claim token still holds it."""
    statement = deliveries_table.update().where(deliveries_table.c.id == row_id)
    if held_by is not None:
        statement = statement.where(deliveries_table.c.worker == held_by,
                                    deliveries_table.c.status == SENDING)
    with engine.begin() as connection:
        return bool(connection.execute(statement.values(**values)).rowcount)


def _token(engine: Engine, row: Any) -> str | None:
    """The unsubscribe token of the subscription ``row`` was sent for (``tracker.delivery.unsubscribe``)."""
    with engine.connect() as connection:
        return token_for_delivery(connection, row.subscriber_id, row.channel, row.kind,
                                  row.call_id, row.key)


def _set_channel(engine: Engine, subscriber_id: int, channel: str, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(channels_table.update().where(
            channels_table.c.subscriber_id == subscriber_id, channels_table.c.channel == channel)
            .values(**values))


def _deactivate(engine: Engine, subscriber_id: int, channel: str, note: str) -> bool:
    """Switch a subscriber's channel off; True if it was on (so it is reported once)."""
    with engine.begin() as connection:
        result = connection.execute(channels_table.update().where(
            channels_table.c.subscriber_id == subscriber_id, channels_table.c.channel == channel,
            channels_table.c.active.is_(True)).values(active=False, note=note))
        return bool(result.rowcount)


@dataclass
class _Pass:
    """One dispatch pass: where it writes, its claim token, and what it has done so far."""

    engine: Engine
    token: str
    clock: Clock
    lease: timedelta
    max_attempts: int
    report: DispatchReport
    held: set[int] = field(default_factory=set)  # claimed rows not finished yet

    async def record(self, row: Any, **values: Any) -> None:
        """Write ``row``'s outcome unless another pass has taken the row over meanwhile."""
        if not await asyncio.to_thread(_update, self.engine, row.id, held_by=self.token,
                                       lease_until=None, **values):
            log.warning("outcome not recorded key=%s channel=%s: another pass holds the row now",
                        row.key, row.channel)

    def outcome(self, row: Any, result: str) -> None:
        self.report.outcomes[(row.channel, result)] += 1
        if result == "dead":
            self.report.dead_letters.append(row.key)

    async def failed(self, row: Any, error: str, retry_after: float | None, sent_parts: int) -> None:
        """A failed attempt: retried later with backoff, a dead letter after ``max_attempts``."""
        attempts = row.attempts + 1
        if attempts >= self.max_attempts:
            await self.record(row, status=DEAD, attempts=attempts, last_error=error,
                              parts_sent=row.parts_sent + sent_parts)
            self.outcome(row, "dead")
        else:
            await self.record(row, status=PENDING, attempts=attempts, last_error=error,
                              parts_sent=row.parts_sent + sent_parts,
                              next_attempt_at=self.clock() + backoff(attempts, retry_after))
            self.outcome(row, "retry")
        log.info("delivery failed key=%s attempt=%d error=%s", row.key, attempts, error)


async def _keep_leases(current: _Pass) -> None:
    """Renew the lease of every row the pass still holds, ``RENEWALS_PER_LEASE`` times per
    lease, for as long as the pass runs (it is cancelled at the end)."""
    every = current.lease.total_seconds() / RENEWALS_PER_LEASE
    while True:
        await asyncio.sleep(every)
        if not current.held:
            continue
        ids = sorted(current.held)
        try:
            await asyncio.to_thread(renew, current.engine, current.token, ids,
                                    current.clock() + current.lease)
        except sa.exc.SQLAlchemyError as exc:  # the check before each send still guards the rows
            log.warning("could not renew the leases of %d deliveries: %s", len(ids), exc)


async def _deliver(current: _Pass, notifier: Notifier, row: Any) -> None:
    engine, clock, channel = current.engine, current.clock, row.channel
    if row.address is None or not row.active:
        await current.record(row, status=DEAD,
                             last_error=f"{channel} channel of {row.subscriber_name} is inactive")
        current.outcome(row, "dead")
        return
    message = Message.model_validate(row.message)
    if row.parts_sent and message.telegram:
        message = message.model_copy(update={"telegram": message.telegram[row.parts_sent:]})
    token = await asyncio.to_thread(_token, engine, row) if channel == "email" else None
    recipient = Recipient(address=row.address, subscriber=row.subscriber_name,
                          unsubscribe_token=token, webhook_format=row.webhook_format or "generic")
    # the claim must still be ours, and stays ours for a whole lease from here
    if not await asyncio.to_thread(renew, engine, current.token, [row.id], clock() + current.lease):
        log.warning("not sent key=%s channel=%s: another pass took the row over after this "
                    "pass's lease ran out", row.key, channel)
        current.outcome(row, "lost")
        return
    try:
        result = await notifier.send(recipient, message)
    except ChatMigrated as exc:
        await asyncio.to_thread(_set_channel, engine, row.subscriber_id, channel,
                                address=exc.new_address)
        await current.record(row, status=PENDING, next_attempt_at=clock(),
                             parts_sent=row.parts_sent + exc.sent_parts, last_error=str(exc))
        current.outcome(row, "migrated")
    except ChannelGone as exc:
        if await asyncio.to_thread(_deactivate, engine, row.subscriber_id, channel, str(exc)):
            current.report.deactivated.append(f"{channel} of {row.subscriber_name} "
                                              f"({row.address}): {exc}")
            log.warning("channel deactivated subscriber=%s channel=%s error=%s",
                        row.subscriber_name, channel, exc)
        await current.record(row, status=DEAD, last_error=str(exc))
        current.outcome(row, "dead")
    except ChannelRejected as exc:
        await current.record(row, status=DEAD, attempts=row.attempts + 1, last_error=str(exc))
        log.warning("dead letter key=%s error=%s", row.key, exc)
        current.outcome(row, "dead")
    except ChannelUnavailable as exc:
        await current.failed(row, str(exc), exc.retry_after, exc.sent_parts)
    except ConfigError:
        raise  # the whole channel is misconfigured: dispatch() gives its rows back
    except Exception as exc:  # a bug or a value nobody expected: one failed attempt, not a crash
        log.exception("channel=%s failed unexpectedly key=%s", channel, row.key)
        await current.failed(row, f"{type(exc).__name__}: {exc}", None, 0)
    else:
        # recorded whoever holds the row now: the message did go out, and a pass that took
        # the row over then finds it sent and leaves it
        await asyncio.to_thread(_update, engine, row.id, status=SENT, lease_until=None,
                                sent_at=clock(), attempts=row.attempts + 1, last_error=None)
        if result.new_address:
            await asyncio.to_thread(_set_channel, engine, row.subscriber_id, channel,
                                    address=result.new_address)
        current.outcome(row, "sent")


async def dispatch(engine: Engine, notifiers: Mapping[str, Notifier], clock: Clock, *,
                   batch: int = 200, max_attempts: int = MAX_ATTEMPTS,
                   stop: asyncio.Event | None = None, lease: timedelta = LEASE) -> DispatchReport:
    """Send every due message through the configured channels; return what happened.

    ``lease`` is how long a claimed row stays this pass's without a renewal: the pass
    renews it while it works, so it matters only when the process dies (another worker
    sends the row after it runs out) or stalls (``dispatch.lease``). Callers with settings
    use ``send_due``, which takes ``batch`` and ``lease`` from them.
    """
    current = _Pass(engine, uuid.uuid4().hex, clock, lease, max_attempts, DispatchReport())
    keeper = asyncio.create_task(_keep_leases(current))
    try:
        await _passes(current, notifiers, batch, stop)
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
    return current.report


async def _passes(current: _Pass, notifiers: Mapping[str, Notifier], batch: int,
                  stop: asyncio.Event | None) -> None:
    engine = current.engine
    broken: set[str] = set()  # misconfigured (ConfigError): not claimed again in this pass
    while stop is None or not stop.is_set():
        channels = tuple(sorted(set(notifiers) - broken))
        if not channels:
            break
        rows = await asyncio.to_thread(claim, engine, current.clock(), batch, current.lease,
                                       channels, current.token)
        if not rows:
            break
        current.held.update(row.id for row in rows)
        by_channel: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            by_channel[row.channel].append(row)

        async def give_back(queue: list[Any]) -> None:
            ids = [row.id for row in queue]
            await asyncio.to_thread(_release, engine, ids, current.token)
            current.held.difference_update(ids)

        async def run(channel: str, queue: list[Any]) -> None:
            notifier = notifiers[channel]
            for index, row in enumerate(queue):
                if stop is not None and stop.is_set():
                    await give_back(queue[index:])
                    return
                try:
                    await _deliver(current, notifier, row)
                except ConfigError as exc:  # a channel misconfigured at send time: leave the rest
                    log.error("channel=%s cannot send: %s", channel, exc)
                    broken.add(channel)  # its rows stay due: claiming them again would spin
                    await give_back(queue[index:])
                    return
                finally:
                    current.held.discard(row.id)

        await asyncio.gather(*(run(channel, queue) for channel, queue in by_channel.items()))


async def send_due(settings: Settings, engine: Engine, notifiers: Mapping[str, Notifier],
                   clock: Clock, *, stop: asyncio.Event | None = None) -> DispatchReport:
    """``dispatch`` as every face runs it (daemon, worker, ``run --once``, ``notify``,
    ``digest``, the bot, the demo): ``dispatch.batch`` and ``dispatch.lease`` from the
    settings, so none of them forgets one."""
    options = settings.dispatch
    return await dispatch(engine, notifiers, clock, batch=options.batch, lease=options.lease,
                          stop=stop)


def _release(engine: Engine, ids: list[int], token: str) -> None:
    """Give claimed rows back (shutdown or a broken channel) without counting an attempt;
    only those the pass ``token`` still holds."""
    if not ids:
        return
    with engine.begin() as connection:
        connection.execute(deliveries_table.update()
                           .where(deliveries_table.c.id.in_(ids), deliveries_table.c.worker == token,
                                  deliveries_table.c.status == SENDING)
                           .values(status=PENDING, lease_until=None, worker=None))


def list_deliveries(engine: Engine, *, failed: bool = False, limit: int = 100) -> list[Any]:
    """The latest deliveries (dead letters only with ``failed``), newest first."""
    query = (sa.select(*outbox_columns(), subscribers_table.c.name.label("subscriber_name"))
             .select_from(with_bodies())
             .join(subscribers_table, subscribers_table.c.id == deliveries_table.c.subscriber_id)
             .order_by(deliveries_table.c.id.desc()).limit(limit))
    if failed:
        query = query.where(deliveries_table.c.status == DEAD)
    with engine.connect() as connection:
        return list(connection.execute(query))


def backlog(engine: Engine) -> dict[str, int]:
    """Count of deliveries by status."""
    with engine.connect() as connection:
        return {status: count for status, count in connection.execute(
            sa.select(deliveries_table.c.status, sa.func.count()).group_by(deliveries_table.c.status))}
