"""The dispatcher's retries: exponential back-off with jitter, capped, never sooner than the
channel's Retry-After; after the attempt limit a dead letter, listed and reported once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.notifier_support import FakeEmailChannel, outbox_row, queue_alerts, queue_one_email_alert
from tracker.delivery.dispatch import BACKOFF, MAX_ATTEMPTS, MAX_BACKOFF, backoff, dispatch, list_deliveries
from tracker.delivery.outbox import resend_dead
from tracker.errors import ChannelUnavailable
from tracker.ports import Message, Recipient, SendResult
from tracker.store.db import deliveries_table

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


class AlwaysBusy(FakeEmailChannel):
    """A channel that is down for as long as the test lasts."""

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, recipient: Recipient, message: Message) -> SendResult:
        self.calls += 1
        raise ChannelUnavailable("smtp: 451 try again later", retry_after=None)


def test_a_message_that_keeps_failing_becomes_one_dead_letter_after_the_limit(engine: Engine) -> None:
    queue_one_email_alert(engine, NOW)
    channel = AlwaysBusy()
    clock = [NOW]

    dead_letters: list[str] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = asyncio.run(dispatch(engine, {"email": channel}, lambda: clock[0]))
        assert channel.calls == attempt
        dead_letters += report.dead_letters
        current = outbox_row(engine)
        assert current.attempts == attempt and current.last_error == "smtp: 451 try again later"
        if attempt < MAX_ATTEMPTS:
            assert current.status == "pending" and report.count("retry") == 1
            # not due again before its back-off has passed
            assert asyncio.run(dispatch(engine, {"email": channel}, lambda: clock[0])).outcomes == {}
            clock[0] = current.next_attempt_at.replace(tzinfo=UTC) + timedelta(seconds=1)
    assert outbox_row(engine).status == "dead"
    assert dead_letters == ["alert|ana|email|x|match"]  # reported once, for the admin chats
    [listed] = list_deliveries(engine, failed=True)
    assert (listed.subscriber_name, listed.attempts) == ("ana", MAX_ATTEMPTS)
    clock[0] += timedelta(days=1)
    asyncio.run(dispatch(engine, {"email": channel}, lambda: clock[0]))
    assert channel.calls == MAX_ATTEMPTS  # a dead letter is never tried again


# -- what a channel reports must never break the pass (issue 12, point 10) -----------------

@pytest.mark.parametrize("retry_after", [float("nan"), float("inf"), float("-inf"), -30.0,
                                         pytest.param(10**400, id="10**400")])
def test_a_retry_after_that_is_no_finite_wait_counts_as_none(retry_after: float) -> None:
    waits = [backoff(1, retry_after) for _ in range(20)]
    assert all(BACKOFF * 0.8 <= wait <= BACKOFF * 1.2 for wait in waits), waits


@pytest.mark.parametrize("retry_after", [1e20, 1e300, float(MAX_BACKOFF.total_seconds() * 5)])
def test_a_huge_retry_after_is_capped_at_the_longest_backoff(retry_after: float) -> None:
    assert backoff(1, retry_after) == MAX_BACKOFF
    assert backoff(MAX_ATTEMPTS, retry_after) <= MAX_BACKOFF * 1.2


class Refusing(FakeEmailChannel):
    """A channel that fails with ``error`` for ``address`` and accepts everyone else."""

    def __init__(self, address: str, error: Exception) -> None:
        self.address = address
        self.error = error
        self.accepted: list[str] = []

    async def send(self, recipient: Recipient, message: Message) -> SendResult:
        if recipient.address == self.address:
            raise self.error
        self.accepted.append(recipient.address)
        return SendResult(channel=self.channel, address=recipient.address)


def _rows(engine: Engine) -> dict[str, sa.Row[tuple[object, ...]]]:
    with engine.connect() as connection:
        return {row.key: row for row in connection.execute(sa.select(deliveries_table))}


@pytest.mark.parametrize("retry_after", [float("nan"), float("inf"), 1e20])
def test_a_channel_asking_for_a_wait_of_nan_inf_or_1e20_gets_its_row_retried(
        engine: Engine, retry_after: float) -> None:
    queue_alerts(engine, "email", ["a@example.org", "b@example.org"], NOW)
    channel = Refusing("a@example.org", ChannelUnavailable("webhook: 429", retry_after=retry_after))
    report = asyncio.run(dispatch(engine, {"email": channel}, lambda: NOW))
    assert (report.count("retry"), report.count("sent")) == (1, 1)
    assert channel.accepted == ["b@example.org"]
    failed = _rows(engine)["test|alert-00"]
    assert (failed.status, failed.attempts, failed.lease_until) == ("pending", 1, None)
    wait = failed.next_attempt_at.replace(tzinfo=UTC) - NOW
    assert BACKOFF * 0.8 <= wait <= MAX_BACKOFF * 1.2


def test_an_unexpected_exception_from_a_channel_is_a_failed_attempt_and_the_pass_goes_on(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    queue_alerts(engine, "email", ["a@example.org", "b@example.org", "c@example.org"], NOW)
    channel = Refusing("a@example.org", OverflowError("cannot convert float infinity to integer"))
    clock = [NOW]
    with caplog.at_level(logging.INFO, logger="tracker.delivery.dispatch"):
        report = asyncio.run(dispatch(engine, {"email": channel}, lambda: clock[0]))
    assert (report.count("retry"), report.count("sent")) == (1, 2)
    assert channel.accepted == ["b@example.org", "c@example.org"]  # the rest went out
    failed = _rows(engine)["test|alert-00"]
    assert (failed.status, failed.attempts) == ("pending", 1)  # not left "sending"
    assert failed.last_error == "OverflowError: cannot convert float infinity to integer"
    crash = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert "test|alert-00" in crash.getMessage() and crash.exc_info is not None
    assert crash.exc_info[0] is OverflowError  # logged with its traceback

    dead_letters = list(report.dead_letters)
    for _ in range(MAX_ATTEMPTS - 1):  # it keeps failing: retried, then one dead letter
        clock[0] = _rows(engine)["test|alert-00"].next_attempt_at.replace(tzinfo=UTC)
        dead_letters += asyncio.run(dispatch(engine, {"email": channel}, lambda: clock[0])).dead_letters
    failed = _rows(engine)["test|alert-00"]
    assert (failed.status, failed.attempts) == ("dead", MAX_ATTEMPTS)
    assert dead_letters == ["test|alert-00"]
    assert channel.accepted == ["b@example.org", "c@example.org"]


class Counting(FakeEmailChannel):
    """A channel that works, counting what it sends."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, recipient: Recipient, message: Message) -> SendResult:
        self.sent += 1
        return SendResult(channel="email", address=recipient.address)


def test_a_resent_dead_letter_goes_out_once(engine: Engine) -> None:
    """``resend_dead`` (the web's resend) re-queues the dead row itself: one send, and a second
    resend of a row no longer dead, or a dispatch pass more, sends nothing again."""
    queue_one_email_alert(engine, NOW)
    with engine.begin() as connection:
        connection.execute(deliveries_table.update().values(status="dead", attempts=MAX_ATTEMPTS,
                                                            last_error="550 gone"))
    row_id = outbox_row(engine).id
    assert resend_dead(engine, [row_id, row_id], NOW) == 1
    assert resend_dead(engine, [row_id], NOW) == 0  # pending now: a second click changes nothing
    channel = Counting()
    later = NOW + timedelta(seconds=1)
    asyncio.run(dispatch(engine, {"email": channel}, lambda: later))
    asyncio.run(dispatch(engine, {"email": channel}, lambda: later + timedelta(hours=1)))
    assert resend_dead(engine, [row_id], later) == 0  # sent: not dead, not resent
    assert channel.sent == 1 and outbox_row(engine).status == "sent"
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(deliveries_table)).scalar() == 1
