"""Exactly once when a dispatch pass outlives its lease (issue 12, point 1).

A pass to a paced Telegram group (20 a minute) or through a slow SMTP relay takes longer
than ``dispatch.lease``. Meanwhile other passes run: the daemon's next dispatch job and its
digest job in the same process, or other workers on the same database. Here two passes on
two engines of one database overlap with a lease of two seconds, far shorter than the
first pass, against the fake Bot API with real pacing and a real SMTP server that takes
its time over each message. What must hold: every outbox row reaches its server exactly
once, and a pass never sends a row whose claim it no longer holds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from notifiers.email import EmailNotifier, EmailSettings
from notifiers.telegram import TelegramNotifier, TelegramSettings
from notifiers.telegram.pacing import pacer_for
from tests.notifier_support import FakeEmailChannel, queue_alerts
from tracker.delivery.dispatch import DispatchReport, dispatch
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.demo.fakes.telegram_api import FakeTelegram
from tracker.ports import Message, Notifier, Recipient, SendResult
from tracker.store import db
from tracker.store.db import deliveries_table

TOKEN = "123456:LEASES"
LEASE = timedelta(seconds=2)
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def statuses(engine: Engine) -> Counter[str]:
    with engine.connect() as connection:
        return Counter(dict(connection.execute(
            sa.select(deliveries_table.c.status, sa.func.count())
            .group_by(deliveries_table.c.status)).all()))


@pytest.fixture
def second_engine(database_url: str, engine: Engine) -> Iterator[Engine]:
    """Another engine on the same database: another worker's connections."""
    other = db.make_engine(database_url)
    yield other
    other.dispose()


async def overlap(engine: Engine, second_engine: Engine, channel: str, first: Notifier,
                  second: Notifier) -> tuple[DispatchReport, int]:
    """A pass through ``first`` on ``engine``; once it has claimed every row, passes through
    ``second`` on ``second_engine`` again and again (as the daemon's next dispatch job, its
    digest job or another worker would) until the first is done; then both channels are
    closed. Returns the first pass's report and how many second passes ran."""
    try:
        task = asyncio.create_task(dispatch(engine, {channel: first}, utc_now, lease=LEASE))
        while statuses(engine)["pending"] and not task.done():
            await asyncio.sleep(0.02)
        passes = 0
        while not task.done():
            await dispatch(second_engine, {channel: second}, utc_now, lease=LEASE)
            passes += 1
            await asyncio.sleep(0.2)
        return await task, passes
    finally:
        await first.aclose()
        await second.aclose()


def arrivals(texts: Sequence[str], tags: Sequence[str]) -> Counter[str]:
    return Counter(tag for text in texts for tag in tags if tag in text)


def test_two_passes_to_a_paced_telegram_group_and_chat_send_each_row_once(
        engine: Engine, second_engine: Engine) -> None:
    # a group (one message every three seconds) and a private chat (one a second): the
    # first pass needs over two leases for its rows
    tags = queue_alerts(engine, "telegram", ["-1001", "1001", "1001", "1001"] * 2, utc_now())
    with FakeTelegram(TOKEN) as fake:
        settings = TelegramSettings(base_url=fake.base_url, pacing="auto")
        environ = {"CALLWATCH_TELEGRAM_TOKEN": TOKEN}

        def notifier(on: Engine) -> TelegramNotifier:
            # pacing as configured: in process on SQLite, shared in the database on PostgreSQL
            return TelegramNotifier.from_settings(settings, environ, pacer=pacer_for(settings, on))

        async def main() -> tuple[DispatchReport, int]:
            first = notifier(engine)
            # SQLite: one process, two passes sharing its channel (the daemon's dispatch and
            # digest jobs); PostgreSQL: a second worker with its own channel and engine
            second = first if engine.dialect.name == "sqlite" else notifier(second_engine)
            return await overlap(engine, second_engine, "telegram", first, second)

        report, passes = asyncio.run(main())
        sent = list(fake.sent)
    assert sent[-1].at - sent[0].at > 2 * LEASE.total_seconds()  # the pass outlived its lease
    assert passes > 1
    assert arrivals([m.text for m in sent], tags) == Counter(dict.fromkeys(tags, 1))
    assert report.count("sent") == len(tags)
    assert statuses(engine) == Counter(sent=len(tags))


def test_two_workers_through_a_slow_smtp_relay_send_each_mail_once(
        engine: Engine, second_engine: Engine) -> None:
    tags = queue_alerts(engine, "email", [f"sme-{n}@example.org" for n in range(5)], utc_now())
    with SmtpSink() as sink:
        sink.delay = 0.9  # a relay that takes its time over every message

        async def main() -> tuple[DispatchReport, int]:
            settings = EmailSettings(host=sink.host, port=sink.port, sender="cw@example.org")
            return await overlap(engine, second_engine, "email", EmailNotifier(settings),
                                 EmailNotifier(settings))

        report, passes = asyncio.run(main())
        subjects = [str(m.message["subject"]) for m in sink.messages]
    assert passes > 1
    assert arrivals(subjects, tags) == Counter(dict.fromkeys(tags, 1))
    assert report.count("sent") == len(tags)
    assert statuses(engine) == Counter(sent=len(tags))


class Gated(FakeEmailChannel):
    """A channel that records what it sends; with ``gate`` its first send waits until the
    test opens the gate, as a send stuck on a stalled server would."""

    def __init__(self, gate: bool = False) -> None:
        self.sent: list[str] = []
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        if not gate:
            self.gate.set()

    async def send(self, recipient: Recipient, message: Message) -> SendResult:
        self.entered.set()
        await self.gate.wait()
        self.sent.append(message.subject)
        return SendResult(channel=self.channel, address=recipient.address)


def test_a_pass_never_sends_a_row_another_worker_claimed_after_its_lease_ran_out(
        engine: Engine, second_engine: Engine) -> None:
    """The first worker's clock is stuck at T0, so its renewals cannot keep its rows to a
    worker whose clock reads past the lease (a stalled or skewed worker). The second takes
    the rows over and sends them; the first, when it goes on, finds each claim gone and
    sends none of the rest."""
    tags = queue_alerts(engine, "email", ["a@example.org", "b@example.org", "c@example.org"], T0)
    stuck, later = Gated(gate=True), Gated()

    async def main() -> tuple[DispatchReport, DispatchReport]:
        first = asyncio.create_task(dispatch(engine, {"email": stuck}, lambda: T0, lease=LEASE))
        await stuck.entered.wait()  # claimed all three; its first send hangs
        taken = await dispatch(second_engine, {"email": later},
                               lambda: T0 + LEASE + timedelta(seconds=1), lease=LEASE)
        stuck.gate.set()
        return await first, taken

    report, taken = asyncio.run(main())
    subjects = [f"Alert {tag}" for tag in tags]
    assert later.sent == subjects and taken.count("sent") == 3
    # the send already under way when the claim was lost completes (nothing can recall it);
    # the rows after it are not sent a second time
    assert stuck.sent == subjects[:1]
    assert report.count("lost") == 2
    assert statuses(engine) == Counter(sent=3)
