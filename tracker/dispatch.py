"""The dispatcher: sends what the outbox holds, each message at most once per key.

A pass claims due rows (``pending`` and due, or ``sending`` with an expired lease) by
stamping them with a claim token and a lease, sends each through its channel, and records
the outcome in its own small transaction right after the channel answers:

- accepted: ``sent``; a Telegram chat that migrated gets its new id stored;
- ``ChannelUnavailable`` (network, 5xx, flood control): back to ``pending`` with
  exponential backoff and jitter (at least the channel's ``retry_after``); after
  ``max_attempts`` it is a dead letter;
- ``ChatMigrated``: the new chat id is stored and the rest is sent at once;
- ``ChannelGone`` (bot blocked, chat deleted): the subscriber's channel is deactivated and
  the message is a dead letter; ``ChannelRejected``: a dead letter;
- a channel that is not configured in this process: the row is left for later;
- ``ConfigError`` (rejected credentials, an untrusted server certificate): logged, and that
  channel's claimed rows are given back untouched (no attempt counted) and not claimed
  again in this pass; they go out once the configuration is fixed.

Parts of a long Telegram message that went out before a failure are counted
(``parts_sent``), so a retry sends only the rest.

The one window left: a crash after the channel accepted a message and before the ``sent``
commit. The lease then expires and the message goes out a second time. The window is one
network round trip plus one local commit; Telegram and SMTP have no idempotency key we
could pass to close it (webhooks carry a stable ``webhook-id`` that receivers can dedupe on).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tracker.delivery import (
    DEAD,
    PENDING,
    SENDING,
    SENT,
    bodies_table,
    channels_table,
    deliveries_table,
    subscribers_table,
    subscriptions_table,
)
from tracker.errors import (
    ChannelGone,
    ChannelRejected,
    ChannelUnavailable,
    ChatMigrated,
    ConfigError,
)
from tracker.ports import Message, Notifier, Recipient

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8
BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=2)


@dataclass
class DispatchReport:
    """What one dispatch pass did, by channel and outcome."""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_letters: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(n for (_, result), n in self.outcomes.items() if result == outcome)


def backoff(attempts: int, retry_after: float | None) -> timedelta:
    """Exponential backoff with jitter, never shorter than the channel's own Retry-After."""
    base = BACKOFF * (2.0 ** max(attempts - 1, 0))
    wait = min(base, MAX_BACKOFF) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not crypto
    if retry_after is not None:
        wait = max(wait, timedelta(seconds=retry_after))
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
          channels: tuple[str, ...] | None = None) -> list[Any]:
    """Claim up to ``limit`` due rows for this pass; return them with their recipients.

    On PostgreSQL the candidate rows are locked with ``FOR UPDATE SKIP LOCKED`` so several
    workers never claim the same row; on SQLite the conditional UPDATE does the same job.
    """
    token = uuid.uuid4().hex
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
            .where(deliveries_table.c.worker == token)
            .order_by(deliveries_table.c.id)))


def _update(engine: Engine, row_id: int, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(deliveries_table.update().where(deliveries_table.c.id == row_id)
                           .values(**values))


def _token(engine: Engine, subscriber_id: int) -> str | None:
    with engine.connect() as connection:
        token = connection.execute(sa.select(subscriptions_table.c.token)
                                   .where(subscriptions_table.c.subscriber_id == subscriber_id)
                                   .order_by(subscriptions_table.c.id).limit(1)).scalar()
    return str(token) if token else None


def _set_channel(engine: Engine, subscriber_id: int, channel: str, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(channels_table.update().where(
            channels_table.c.subscriber_id == subscriber_id, channels_table.c.channel == channel)
            .values(**values))


async def _deliver(engine: Engine, notifier: Notifier, row: Any, clock: Clock,
                   report: DispatchReport, max_attempts: int) -> None:
    channel = row.channel
    if row.address is None or not row.active:
        await asyncio.to_thread(_update, engine, row.id, status=DEAD, lease_until=None,
                                last_error=f"{channel} channel of {row.subscriber_name} is inactive")
        report.outcomes[(channel, "dead")] += 1
        report.dead_letters.append(row.key)
        return
    message = Message.model_validate(row.message)
    if row.parts_sent and message.telegram:
        message = message.model_copy(update={"telegram": message.telegram[row.parts_sent:]})
    token = await asyncio.to_thread(_token, engine, row.subscriber_id) if channel == "email" else None
    recipient = Recipient(address=row.address, subscriber=row.subscriber_name,
                          unsubscribe_token=token, webhook_format=row.webhook_format or "generic")
    try:
        result = await notifier.send(recipient, message)
    except ChatMigrated as exc:
        await asyncio.to_thread(_set_channel, engine, row.subscriber_id, channel,
                                address=exc.new_address)
        await asyncio.to_thread(_update, engine, row.id, status=PENDING, lease_until=None,
                                next_attempt_at=clock(), parts_sent=row.parts_sent + exc.sent_parts,
                                last_error=str(exc))
        report.outcomes[(channel, "migrated")] += 1
    except ChannelGone as exc:
        await asyncio.to_thread(_set_channel, engine, row.subscriber_id, channel, active=False,
                                note=str(exc))
        await asyncio.to_thread(_update, engine, row.id, status=DEAD, lease_until=None,
                                last_error=str(exc))
        log.warning("channel deactivated subscriber=%s channel=%s error=%s", row.subscriber_name,
                    channel, exc)
        report.outcomes[(channel, "dead")] += 1
        report.dead_letters.append(row.key)
    except ChannelRejected as exc:
        await asyncio.to_thread(_update, engine, row.id, status=DEAD, lease_until=None,
                                attempts=row.attempts + 1, last_error=str(exc))
        log.warning("dead letter key=%s error=%s", row.key, exc)
        report.outcomes[(channel, "dead")] += 1
        report.dead_letters.append(row.key)
    except ChannelUnavailable as exc:
        attempts = row.attempts + 1
        if attempts >= max_attempts:
            await asyncio.to_thread(_update, engine, row.id, status=DEAD, lease_until=None,
                                    attempts=attempts, last_error=str(exc),
                                    parts_sent=row.parts_sent + exc.sent_parts)
            report.outcomes[(channel, "dead")] += 1
            report.dead_letters.append(row.key)
        else:
            await asyncio.to_thread(
                _update, engine, row.id, status=PENDING, lease_until=None, attempts=attempts,
                last_error=str(exc), parts_sent=row.parts_sent + exc.sent_parts,
                next_attempt_at=clock() + backoff(attempts, exc.retry_after))
            report.outcomes[(channel, "retry")] += 1
        log.info("delivery failed key=%s attempt=%d error=%s", row.key, attempts, exc)
    else:
        await asyncio.to_thread(_update, engine, row.id, status=SENT, lease_until=None,
                                sent_at=clock(), attempts=row.attempts + 1, last_error=None)
        if result.new_address:
            await asyncio.to_thread(_set_channel, engine, row.subscriber_id, channel,
                                    address=result.new_address)
        report.outcomes[(channel, "sent")] += 1


async def dispatch(engine: Engine, notifiers: Mapping[str, Notifier], clock: Clock, *,
                   batch: int = 200, max_attempts: int = MAX_ATTEMPTS,
                   stop: asyncio.Event | None = None, lease: timedelta = LEASE) -> DispatchReport:
    """Send every due message through the configured channels; return what happened.

    ``lease`` is how long a claimed row stays this process's: if the process dies, another
    worker sends the row after it runs out (``dispatch.lease``; keep it well above the
    slowest send of one batch).
    """
    report = DispatchReport()
    broken: set[str] = set()  # misconfigured (ConfigError): not claimed again in this pass
    while stop is None or not stop.is_set():
        channels = tuple(sorted(set(notifiers) - broken))
        if not channels:
            break
        rows = await asyncio.to_thread(claim, engine, clock(), batch, lease, channels)
        if not rows:
            break
        by_channel: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            by_channel[row.channel].append(row)

        async def run(channel: str, queue: list[Any]) -> None:
            notifier = notifiers[channel]
            for index, row in enumerate(queue):
                if stop is not None and stop.is_set():
                    ids = [r.id for r in queue[index:]]
                    await asyncio.to_thread(_release, engine, ids)
                    return
                try:
                    await _deliver(engine, notifier, row, clock, report, max_attempts)
                except ConfigError as exc:  # a channel misconfigured at send time: leave the rest
                    log.error("channel=%s cannot send: %s", channel, exc)
                    broken.add(channel)  # its rows stay due: claiming them again would spin
                    await asyncio.to_thread(_release, engine, [r.id for r in queue[index:]])
                    return

        await asyncio.gather(*(run(channel, queue) for channel, queue in by_channel.items()))
    return report


def _release(engine: Engine, ids: list[int]) -> None:
    """Give claimed rows back (shutdown or a broken channel) without counting an attempt."""
    if not ids:
        return
    with engine.begin() as connection:
        connection.execute(deliveries_table.update()
                           .where(deliveries_table.c.id.in_(ids), deliveries_table.c.status == SENDING)
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
