"""Builders for what the notifier tests send: every message kind, plain and hostile."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.factories import make_call
from tracker.delivery.dispatch import dispatch
from tracker.delivery.outbox import sync_subscribers
from tracker.delivery.render import AlertItem, render_alert, render_digest, render_reminder
from tracker.delivery.subscribers import Subscriber
from tracker.models import CallRecord, Change, ChangeKind
from tracker.ports import Message, Notifier
from tracker.store.db import channels_table, deliveries_table, subscribers_table

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOSTILE_TITLE = (
    '<script>alert("x")</script> <b>bold</b> & <a href="javascript:evil()">click</a> '
    "*bold* _it_ [link](https://evil.example) `code` &amp; &#64; @everyone <br/>"
)
LONG_TITLE = "Electrolysers " * 715  # just over 10,000 characters


def change(call: CallRecord, kind: ChangeKind, **values: Any) -> Change:
    return Change(call_id=call.id, kind=kind, at=NOW, **values)


def deadline_moved(call: CallRecord) -> Change:
    return change(call, ChangeKind.DEADLINE_CHANGED, field="deadlines",
                  old=["2026-04-16T15:00:00Z"], new=["2026-04-30T15:00:00Z"])


def budget_changed(call: CallRecord) -> Change:
    return change(call, ChangeKind.BUDGET_CHANGED, field="budget",
                  old={"total": 3_000_000, "min_grant": None, "max_grant": None,
                       "expected_grants": None},
                  new={"total": 4_500_000, "min_grant": None, "max_grant": None,
                       "expected_grants": None})


def item(native_id: str = "HORIZON-CL5-2026-D3-01-01", *changes: ChangeKind,
         profile: str = "hydrogen-valley", **call: Any) -> AlertItem:
    record = make_call(native_id, **call)
    built = []
    for kind in changes:
        if kind is ChangeKind.DEADLINE_CHANGED:
            built.append(deadline_moved(record))
        elif kind is ChangeKind.BUDGET_CHANGED:
            built.append(budget_changed(record))
        elif kind is ChangeKind.DOCUMENTS_CHANGED:
            built.append(change(record, kind, field="updates", new="Call documents updated <v2>"))
        else:
            built.append(change(record, kind))
    return AlertItem(record, tuple(built), ('keyword "hydrogen" in title',), profile)


def queue_one_email_alert(engine: Engine, now: datetime) -> None:
    """Subscriber "ana" (email only) with one pending alert in the outbox, due ``now``: what
    the dispatcher tests send, fail and retry."""
    queue_one_alert(engine, now, "email", "ana@example.org")


def queue_one_alert(engine: Engine, now: datetime, channel: str, address: str) -> None:
    """Subscriber "ana" with only ``channel`` (at ``address``) and one pending alert there, due
    ``now``."""
    sync_subscribers(engine, [Subscriber.model_validate({
        "name": "ana", "channels": {channel: address},
        "subscriptions": [{"profile": "hydrogen-valley"}]})], now)
    with engine.begin() as connection:
        ana = connection.execute(sa.select(subscribers_table.c.id)).scalar_one()
        connection.execute(deliveries_table.insert().values(
            key=f"alert|ana|{channel}|x|match", subscriber_id=ana, channel=channel, kind="alert",
            call_id=None, message=every_kind()["alert_new"].model_dump(mode="json"),
            status="pending", next_attempt_at=now, created_at=now))


def queue_alerts(engine: Engine, channel: str, addresses: Sequence[str], now: datetime) -> list[str]:
    """One subscriber per distinct address; one pending alert per entry of ``addresses``, in
    that order, each tagged ``alert-NN`` in its subject and text. Returns the tags."""
    distinct = list(dict.fromkeys(addresses))
    tags = [f"alert-{n:02d}" for n in range(len(addresses))]
    with engine.begin() as connection:
        connection.execute(subscribers_table.insert(), [
            {"id": n + 1, "name": f"sme-{n}", "timezone": "Europe/Brussels", "language": "en",
             "reminders": [], "origin": "bot", "created_at": now, "updated_at": now}
            for n in range(len(distinct))])
        connection.execute(channels_table.insert(), [
            {"subscriber_id": n + 1, "channel": channel, "address": address,
             "configured_address": address, "webhook_format": "generic", "active": True}
            for n, address in enumerate(distinct)])
        connection.execute(deliveries_table.insert(), [
            {"key": f"test|{tag}", "subscriber_id": distinct.index(address) + 1,
             "channel": channel, "kind": "alert",
             "message": Message(kind="alert", subject=f"Alert {tag}", text=f"Alert {tag}",
                                html=f"<p>Alert {tag}</p>", telegram=(f"<b>Alert {tag}</b>",),
                                document={}).model_dump(mode="json"),
             "status": "pending", "attempts": 0, "parts_sent": 0, "next_attempt_at": now,
             "created_at": now}
            for tag, address in zip(tags, addresses, strict=True)])
    return tags


def dispatch_once(engine: Engine, channel: str, notifier: Notifier, now: datetime) -> None:
    """One dispatch pass at ``now`` through ``notifier`` alone, closed afterwards."""

    async def one_pass() -> None:
        try:
            await dispatch(engine, {channel: notifier}, lambda: now)
        finally:
            await notifier.aclose()

    asyncio.run(one_pass())


def outbox_row(engine: Engine) -> sa.Row[tuple[object, ...]]:
    """The outbox's only row."""
    with engine.connect() as connection:
        return connection.execute(sa.select(deliveries_table)).one()


class FakeEmailChannel:
    """A channel on the ``Notifier`` port (as "email") with nothing to check or close;
    each test's subclass says what ``send`` does."""

    channel = "email"

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def every_kind(title: str | None = None) -> dict[str, Message]:
    """One message of each kind: new-call alert, change alert, digest, reminder."""
    extra = {"title": title} if title else {}
    new = item("HORIZON-A", **extra)
    moved = item("HORIZON-B", ChangeKind.DEADLINE_CHANGED, ChangeKind.BUDGET_CHANGED, **extra)
    digest = render_digest(new=[new], changed=[moved], closing=[item("HORIZON-C", **extra)],
                           now=NOW, timezone="Europe/Madrid")
    assert digest is not None
    return {
        "alert_new": render_alert(new, now=NOW, timezone="Europe/Madrid"),
        "alert_changed": render_alert(moved, now=NOW, timezone="Europe/Madrid"),
        "digest": digest,
        "reminder": render_reminder(new, new.call.deadlines[0], now=NOW, timezone="Europe/Madrid"),
    }


def big_digest(count: int = 60) -> Message:
    items = [item(f"HORIZON-BIG-{n:03d}", ChangeKind.DOCUMENTS_CHANGED,
                  title=f"Call number {n} about hydrogen valleys and cluster cooperation")
             for n in range(count)]
    message = render_digest(changed=items, now=NOW, timezone="Europe/Madrid")
    assert message is not None
    return message
