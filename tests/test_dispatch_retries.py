"""The dispatcher's retries: exponential back-off with jitter, capped, never sooner than the
channel's Retry-After; after the attempt limit a dead letter, listed and reported once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.notifier_support import queue_one_email_alert
from tracker.delivery import deliveries_table
from tracker.dispatch import BACKOFF, MAX_ATTEMPTS, MAX_BACKOFF, backoff, dispatch, list_deliveries
from tracker.errors import ChannelUnavailable
from tracker.ports import Message, Recipient, SendResult

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("attempts", [1, 2, 3, 5, 8, 20])
def test_backoff_doubles_from_thirty_seconds_with_jitter_up_to_two_hours(attempts: int) -> None:
    expected = min(BACKOFF * 2 ** (attempts - 1), MAX_BACKOFF)
    waits = {backoff(attempts, None) for _ in range(50)}
    assert all(expected * 0.8 <= wait <= expected * 1.2 for wait in waits), (expected, waits)
    assert len(waits) > 1  # jittered, so retries of many messages do not arrive together


def test_backoff_never_comes_sooner_than_the_channels_retry_after() -> None:
    assert all(backoff(1, 600) >= timedelta(seconds=600) for _ in range(20))
    assert all(backoff(1, 1) >= BACKOFF * 0.8 for _ in range(20))  # a short one changes nothing


class AlwaysBusy:
    """A channel that is down for as long as the test lasts."""

    channel = "email"

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, recipient: Recipient, message: Message) -> SendResult:
        self.calls += 1
        raise ChannelUnavailable("smtp: 451 try again later", retry_after=None)

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def test_a_message_that_keeps_failing_becomes_one_dead_letter_after_the_limit(engine: Engine) -> None:
    queue_one_email_alert(engine, NOW)
    channel = AlwaysBusy()
    clock = [NOW]

    def row() -> sa.Row[tuple[object, ...]]:
        with engine.connect() as connection:
            return connection.execute(sa.select(deliveries_table)).one()

    dead_letters: list[str] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = asyncio.run(dispatch(engine, {"email": channel}, lambda: clock[0]))
        assert channel.calls == attempt
        dead_letters += report.dead_letters
        current = row()
        assert current.attempts == attempt and current.last_error == "smtp: 451 try again later"
        if attempt < MAX_ATTEMPTS:
            assert current.status == "pending" and report.count("retry") == 1
            # not due again before its back-off has passed
            assert asyncio.run(dispatch(engine, {"email": channel}, lambda: clock[0])).outcomes == {}
            clock[0] = current.next_attempt_at.replace(tzinfo=UTC) + timedelta(seconds=1)
    assert row().status == "dead"
    assert dead_letters == ["alert|ana|email|x|match"]  # reported once, for the admin chats
    [listed] = list_deliveries(engine, failed=True)
    assert (listed.subscriber_name, listed.attempts) == ("ana", MAX_ATTEMPTS)
    clock[0] += timedelta(days=1)
    asyncio.run(dispatch(engine, {"email": channel}, lambda: clock[0]))
    assert channel.calls == MAX_ATTEMPTS  # a dead letter is never tried again
