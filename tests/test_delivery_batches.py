"""Digests for many subscribers are built in batches from entries kept per profile: the batch
size changes nothing but memory, and each subscription's position decides what its next
digest covers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.factories import make_call
from tracker.delivery.dispatch import list_deliveries
from tracker.delivery.outbox import enqueue_digests, mode_change, preview_digests
from tracker.delivery.planning import DigestSchedule
from tracker.models import ScrapeResult
from tracker.store.calls import Store
from tracker.store.db import (
    bodies_table,
    channels_table,
    deliveries_table,
    digest_entries_table,
    subscribers_table,
    subscriptions_table,
)

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # 10:00 in Brussels: daily digests are due
CALLS = [make_call(f"HORIZON-BATCH-{n}", title=f"Batch call {n}") for n in range(5)]


def _entry(engine: Engine, profile: str, call: int, tag: str = "match") -> None:
    with engine.begin() as connection:
        connection.execute(digest_entries_table.insert().values(
            key=f"{profile}|{CALLS[call].id}|{tag}", profile=profile, call_id=CALLS[call].id,
            change_id=None, reasons=["keyword"], created_at=NOW))


def _subscriber(engine: Engine, n: int, profile: str, *, mode: str = "daily",
                timezone: str = "Europe/Brussels", muted_until: datetime | None = None) -> None:
    with engine.begin() as connection:
        connection.execute(subscribers_table.insert().values(
            id=n, name=f"sme-{n}", timezone=timezone, language="en", reminders=[],
            origin="bot", created_at=NOW, updated_at=NOW, muted_until=muted_until))
        connection.execute(channels_table.insert().values(
            subscriber_id=n, channel="email", address=f"sme-{n}@example.invalid",
            configured_address=f"sme-{n}@example.invalid", webhook_format="generic", active=True))
        connection.execute(subscriptions_table.insert().values(
            subscriber_id=n, profile=profile, mode=mode, channels=None, token=f"t{n}"))


def _world(engine: Engine, subscribers: int) -> None:
    """Five calls; subscribers 1, 3, 5… follow profile "a" with two entries, the others "b"
    with one."""
    Store(engine).record_run("ft_portal", ScrapeResult(records=CALLS),
                             started_at=NOW - timedelta(minutes=1), now=NOW)
    for n in range(1, subscribers + 1):
        _subscriber(engine, n, "a" if n % 2 else "b")
    _entry(engine, "a", 0)
    _entry(engine, "b", 2)
    _entry(engine, "a", 1)


def _digests(engine: Engine) -> dict[str, Any]:
    return {row.key: row.message for row in list_deliveries(engine)}


def _positions(engine: Engine) -> dict[int, int]:
    with engine.connect() as connection:
        return {row.subscriber_id: row.digested_through for row in connection.execute(
            sa.select(subscriptions_table.c.subscriber_id, subscriptions_table.c.digested_through))}


def test_batches_of_two_enqueue_what_one_batch_does(engine: Engine) -> None:
    _world(engine, 7)
    assert enqueue_digests(engine, NOW, ["email"], batch=2) == 7
    digests = _digests(engine)
    assert sorted(digests) == sorted(f"digest|{n}|email|daily|2026-11-25" for n in range(1, 8))
    # subscribers of one profile get the same digest; the two profiles differ
    odd = {str(digests[f"digest|{n}|email|daily|2026-11-25"]) for n in (1, 3, 5, 7)}
    even = {str(digests[f"digest|{n}|email|daily|2026-11-25"]) for n in (2, 4, 6)}
    assert len(odd) == len(even) == 1 and odd != even
    first = digests["digest|1|email|daily|2026-11-25"]["text"]
    assert first.index("Batch call 0") < first.index("Batch call 1")  # in the order written
    assert "Batch call 2" not in first
    assert "Batch call 2" in digests["digest|2|email|daily|2026-11-25"]["text"]
    # every position moved to the newest entry: nothing is waiting
    assert set(_positions(engine).values()) == {3}
    assert enqueue_digests(engine, NOW + timedelta(hours=1), ["email"], batch=2) == 0
    # one stored body per distinct digest, the rows point at it
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(bodies_table)).scalar() == 2
        assert {row.message == {} and row.body_id is not None
                for row in connection.execute(sa.select(deliveries_table))} == {True}


def test_the_next_digest_covers_only_what_was_written_since(engine: Engine) -> None:
    _world(engine, 2)
    assert enqueue_digests(engine, NOW, ["email"]) == 2
    _entry(engine, "a", 3)
    tomorrow = NOW + timedelta(days=1)
    assert enqueue_digests(engine, tomorrow, ["email"]) == 1  # "b" has nothing new
    text = _digests(engine)["digest|1|email|daily|2026-11-26"]["text"]
    assert "Batch call 3" in text and "Batch call 0" not in text


def test_a_new_follower_starts_from_now_not_from_the_profiles_history(engine: Engine) -> None:
    _world(engine, 1)
    _subscriber(engine, 9, "a")  # follows after the three entries were written
    assert _positions(engine) == {1: 0, 9: 3}
    assert enqueue_digests(engine, NOW, ["email"]) == 1
    assert list(_digests(engine)) == ["digest|1|email|daily|2026-11-25"]


def test_subscribers_in_different_zones_read_from_their_own_positions(engine: Engine) -> None:
    """Tokyo's digest is due, New York's is not yet: New York keeps its entry, and a later
    round covers it and the newer one, while Tokyo (already served today) keeps the newer
    one for tomorrow."""
    Store(engine).record_run("ft_portal", ScrapeResult(records=CALLS),
                             started_at=NOW - timedelta(minutes=1), now=NOW)
    _subscriber(engine, 1, "a", timezone="Asia/Tokyo")  # 18:00 at NOW
    _subscriber(engine, 2, "a", timezone="America/New_York")  # 04:00
    _entry(engine, "a", 0)
    assert enqueue_digests(engine, NOW, ["email"]) == 1
    assert _positions(engine) == {1: 1, 2: 0}
    _entry(engine, "a", 1)
    later = NOW + timedelta(hours=4)  # 08:00 in New York, 22:00 in Tokyo (already sent)
    assert enqueue_digests(engine, later, ["email"]) == 1
    new_york = _digests(engine)["digest|2|email|daily|2026-11-25"]["text"]
    assert "Batch call 0" in new_york and "Batch call 1" in new_york
    assert _positions(engine) == {1: 1, 2: 2}
    assert enqueue_digests(engine, NOW + timedelta(days=1), ["email"]) == 1
    tokyo = _digests(engine)["digest|1|email|daily|2026-11-26"]["text"]
    assert "Batch call 1" in tokyo and "Batch call 0" not in tokyo
    assert _positions(engine) == {1: 2, 2: 2}


def test_a_digest_due_while_muted_is_skipped_not_carried_over(engine: Engine) -> None:
    _world(engine, 1)
    with engine.begin() as connection:
        connection.execute(subscribers_table.update().values(muted_until=NOW + timedelta(hours=2)))
    assert enqueue_digests(engine, NOW, ["email"]) == 0
    assert _positions(engine) == {1: 3}
    _entry(engine, "a", 4)
    assert enqueue_digests(engine, NOW + timedelta(days=1), ["email"]) == 1
    text = _digests(engine)["digest|1|email|daily|2026-11-26"]["text"]
    assert "Batch call 4" in text and "Batch call 0" not in text


def test_a_digest_not_due_yet_keeps_its_entries(engine: Engine) -> None:
    _world(engine, 1)
    early = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)  # 07:00 in Brussels
    assert enqueue_digests(engine, early, ["email"]) == 0
    assert _positions(engine) == {1: 0}
    # previewing moves nothing either
    [(name, mode, message)] = preview_digests(engine, NOW, ["email"])
    assert (name, mode) == ("sme-1", "daily") and "Batch call 1" in message.text
    assert _positions(engine) == {1: 0}


def test_leaving_instant_mode_starts_digests_from_now(engine: Engine) -> None:
    _world(engine, 2)
    with engine.begin() as connection:
        connection.execute(subscriptions_table.update().values(mode="instant"))
        _entry_rows = connection.execute(sa.select(sa.func.count())
                                         .select_from(digest_entries_table)).scalar()
        assert _entry_rows == 3
        connection.execute(subscriptions_table.update()
                           .where(subscriptions_table.c.subscriber_id == 1)
                           .values(mode="daily", **mode_change("instant", "daily")))
        # daily ↔ weekly keeps what is waiting
        assert mode_change("daily", "weekly") == {}
    assert _positions(engine)[1] == 3
    assert enqueue_digests(engine, NOW, ["email"]) == 0


def test_the_digest_hour_is_a_setting(engine: Engine) -> None:
    _world(engine, 1)
    evening = DigestSchedule(hour=18)
    assert enqueue_digests(engine, NOW, ["email"], schedule=evening) == 0  # 10:00 in Brussels
    assert _positions(engine) == {1: 0}
    assert enqueue_digests(engine, NOW + timedelta(hours=8), ["email"], schedule=evening) == 1


def _entry_ids(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(digest_entries_table.c.id)
                                       .order_by(digest_entries_table.c.id)).scalars())


def test_entries_every_subscription_has_covered_are_pruned(engine: Engine) -> None:
    Store(engine).record_run("ft_portal", ScrapeResult(records=CALLS),
                             started_at=NOW - timedelta(minutes=1), now=NOW)
    _subscriber(engine, 1, "a", timezone="Asia/Tokyo")
    _subscriber(engine, 2, "a", timezone="America/New_York")  # not due at NOW
    for call in range(3):
        _entry(engine, "a", call)
    assert enqueue_digests(engine, NOW, ["email"]) == 1
    assert _entry_ids(engine) == [1, 2, 3]  # New York still needs them
    assert enqueue_digests(engine, NOW + timedelta(hours=4), ["email"]) == 1
    assert _entry_ids(engine) == [3]  # the newest stays, so ids keep growing on SQLite
    _entry(engine, "a", 3)
    assert _entry_ids(engine) == [3, 4]
    assert enqueue_digests(engine, NOW + timedelta(days=1), ["email"]) == 1
    tokyo = _digests(engine)["digest|1|email|daily|2026-11-26"]["text"]
    assert "Batch call 3" in tokyo and "Batch call 2" not in tokyo
