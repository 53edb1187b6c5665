"""Erasing a subscriber (GDPR art. 17): every row that names the person goes, in one transaction.

One function, :func:`erase_subscriber`, serves the three faces: the member's preferences
page (``/manage/<token>/erase``), a manager's member page and ``callwatch subscribers
erase EMAIL --tenant T``. What it removes, and why each choice:

- the ``subscribers`` row, its ``subscriber_channels`` (the addresses), ``subscriptions``
  and ``opt_outs`` (their links then answer 404, like any unknown link);
- **every outbox row** of the subscriber (``deliveries``), pending and sent alike. Sent rows
  are deleted, not anonymized: a row's ``message`` holds what was sent to the person and its
  ``key`` and ``subscriber_id`` point at them, so an anonymized row would keep nothing but a
  count; keeping it would also need ``subscriber_id`` made nullable (the outbox's
  idempotency key then loses its owner) for the one gain of the managers' deliveries-per-day
  chart not dropping. Those counts are the price, written in docs/web.md. The shared
  ``delivery_bodies`` stay: a body is a rendered alert or digest with no recipient in it
  (the footer with the person's links is added at send time), and other rows may use it;
- the **consent records** (``consents``): deleted. A consent shows the lawful basis for a
  processing that goes on; after erasure nothing about the person is processed any more,
  and a kept record would keep their name and address, the very data asked to be erased.
  What stays is a log line with the subscriber's number and tenant, no name or address;
- the Telegram pacing row of the person's chat (``telegram_pacing``, keyed by chat id).

Subscribers of origin ``file`` are re-created from their subscriber file by the next
cycle's sync, so erasing one that a file still lists would undo itself: the faces refuse
(:func:`erasable`) and say that the file must be edited first; once the file no longer
lists it, the CLI erases what the sync left (a file subscriber that disappears keeps its
rows, ``outbox.sync_subscribers``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracker.store.db import (
    channels_table,
    consents_table,
    deliveries_table,
    opt_outs_table,
    pacing_table,
    subscribers_table,
    subscriptions_table,
)

log = logging.getLogger(__name__)

#: the origin whose subscribers a file re-creates: see the module docstring
FILE_ORIGIN = "file"


@dataclass(frozen=True)
class Erased:
    """What one erasure removed, per table (for the CLI's report and the tests)."""

    subscriber_id: int
    tenant: str | None
    channels: int
    subscriptions: int
    opt_outs: int
    deliveries: int
    consents: int


@dataclass(frozen=True)
class Found:
    """A subscriber an erasure by email address names."""

    subscriber_id: int
    name: str
    origin: str


def erasable(origin: str, in_files: bool) -> bool:
    """Whether erasing sticks: not for a subscriber a file still lists (the next sync would
    re-create it)."""
    return origin != FILE_ORIGIN or not in_files


def find_by_email(connection: Connection, tenant: str, email: str) -> list[Found]:
    """The tenant's subscribers with this email address (any case), by id."""
    return [Found(int(r.id), r.name, r.origin) for r in connection.execute(
        sa.select(subscribers_table.c.id, subscribers_table.c.name, subscribers_table.c.origin)
        .join(channels_table, channels_table.c.subscriber_id == subscribers_table.c.id)
        .where(subscribers_table.c.tenant == tenant, channels_table.c.channel == "email",
               sa.func.lower(channels_table.c.address) == email.strip().lower())
        .order_by(subscribers_table.c.id).distinct())]


def erase_in(connection: Connection, subscriber_id: int) -> Erased | None:
    """Delete every row naming subscriber ``subscriber_id`` (module docstring); None when
    there is no such subscriber (erased already)."""
    row = connection.execute(sa.select(subscribers_table.c.tenant)
                             .where(subscribers_table.c.id == subscriber_id)).first()
    if row is None:
        return None
    chats = connection.execute(sa.select(channels_table.c.address).where(
        channels_table.c.subscriber_id == subscriber_id,
        channels_table.c.channel == "telegram")).scalars().all()
    if chats:
        connection.execute(pacing_table.delete().where(pacing_table.c.key.in_(chats)))
    counts = {}
    for name, table in (("deliveries", deliveries_table), ("subscriptions", subscriptions_table),
                        ("opt_outs", opt_outs_table), ("consents", consents_table),
                        ("channels", channels_table)):
        counts[name] = connection.execute(
            table.delete().where(table.c.subscriber_id == subscriber_id)).rowcount
    connection.execute(subscribers_table.delete().where(subscribers_table.c.id == subscriber_id))
    log.info("subscriber erased subscriber_id=%s tenant=%s", subscriber_id, row.tenant)
    return Erased(subscriber_id=subscriber_id, tenant=row.tenant, **counts)


def erase_subscriber(engine: Engine, subscriber_id: int) -> Erased | None:
    """:func:`erase_in`, in a transaction of its own."""
    with engine.begin() as connection:
        return erase_in(connection, subscriber_id)
