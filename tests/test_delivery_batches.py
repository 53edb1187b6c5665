"""Digests for many subscribers are built in batches: the batch size changes nothing but memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.factories import make_call
from tracker.delivery import (
    bodies_table,
    channels_table,
    deliveries_table,
    digest_items_table,
    enqueue_digests,
    subscribers_table,
    subscriptions_table,
)
from tracker.dispatch import list_deliveries
from tracker.models import ScrapeResult
from tracker.store import Store

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # 10:00 in Brussels: daily digests are due


def _world(engine: Engine, subscribers: int) -> None:
    """Three calls; subscribers 1, 3, 5… follow profile "a" with two items, the others "b"
    with one."""
    calls = [make_call(f"HORIZON-BATCH-{n}", title=f"Batch call {n}") for n in range(3)]
    Store(engine).record_run("ft_portal", ScrapeResult(records=calls),
                             started_at=NOW - timedelta(minutes=1), now=NOW)
    with engine.begin() as connection:
        for n in range(1, subscribers + 1):
            connection.execute(subscribers_table.insert().values(
                id=n, name=f"sme-{n}", timezone="Europe/Brussels", language="en", reminders=[],
                origin="bot", created_at=NOW, updated_at=NOW))
            connection.execute(channels_table.insert().values(
                subscriber_id=n, channel="email", address=f"sme-{n}@example.invalid",
                configured_address=f"sme-{n}@example.invalid", webhook_format="generic", active=True))
            profile = "a" if n % 2 else "b"
            connection.execute(subscriptions_table.insert().values(
                subscriber_id=n, profile=profile, mode="daily", channels=None, token=f"t{n}"))
            for call in calls[:2] if profile == "a" else calls[2:]:
                connection.execute(digest_items_table.insert().values(
                    key=f"digest-item|{n}|{call.id}", subscriber_id=n, mode="daily",
                    profile=profile, call_id=call.id, change_id=None, reasons=["keyword"],
                    created_at=NOW))


def _digests(engine: Engine) -> dict[str, Any]:
    return {row.key: row.message for row in list_deliveries(engine)}


def test_batches_of_two_enqueue_what_one_batch_does(engine: Engine) -> None:
    _world(engine, 7)
    assert enqueue_digests(engine, NOW, ["email"], batch=2) == 7
    digests = _digests(engine)
    assert sorted(digests) == sorted(f"digest|{n}|email|daily|2026-11-25" for n in range(1, 8))
    # subscribers of one profile get the same digest; the two profiles differ
    odd = {str(digests[f"digest|{n}|email|daily|2026-11-25"]) for n in (1, 3, 5, 7)}
    even = {str(digests[f"digest|{n}|email|daily|2026-11-25"]) for n in (2, 4, 6)}
    assert len(odd) == len(even) == 1 and odd != even
    assert "Batch call 0" in digests["digest|1|email|daily|2026-11-25"]["text"]
    assert "Batch call 2" in digests["digest|2|email|daily|2026-11-25"]["text"]
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(digest_items_table)
                                  .where(digest_items_table.c.digested_at.is_(None))).scalar() == 0
    assert enqueue_digests(engine, NOW + timedelta(hours=1), ["email"], batch=2) == 0
    # one stored body per distinct digest, the rows point at it
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(bodies_table)).scalar() == 2
        assert {row.message == {} and row.body_id is not None
                for row in connection.execute(sa.select(deliveries_table))} == {True}
