"""Benchmark: 1,000 Telegram messages to many chats through the fake Bot API at the real cap.

The fake enforces Telegram's flood limits (30 messages a second overall, 1 a second per
chat, 20 a minute per group) and counts every 429 our own pacing provokes. Targets: an
achieved rate of at least 90% of the 30/s cap and not one such 429.

    .venv/bin/python bench/bench_telegram.py [--messages 1000] [--chats 300] [--workers 32]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe  # bench/ is not a package

from notifiers.telegram import Pacer, TelegramNotifier, TelegramSettings
from tracker.delivery.render import AlertItem, render_alert
from tracker.demo.fakes.telegram_api import FakeTelegram
from tracker.models import CallRecord, CallStatus
from tracker.ports import Message, Recipient

TOKEN = "123456:BENCH"  # noqa: S105  # the fake server's fake token
CAP = 30.0


def messages(count: int, now: datetime) -> list[Message]:
    """A handful of distinct alerts, cycled: rendering is not what is measured here."""
    rendered = []
    for n in range(20):
        call = CallRecord(source="ft_portal", native_id=f"HORIZON-BENCH-{n:02d}",
                          title=f"Bench call {n} on hydrogen valleys <and> & more",
                          status=CallStatus.OPEN, programme="Horizon Europe",
                          url=f"https://example.invalid/{n}",
                          deadlines=(now + timedelta(days=10 + n),), budget_eur=1_000_000 * n)
        rendered.append(render_alert(AlertItem(call, (), ("keyword hydrogen",), "bench"), now=now))
    return [rendered[n % len(rendered)] for n in range(count)]


async def run(count: int, chats: int, groups: int, workers: int, pacing: bool) -> int:
    now = datetime.now(UTC)
    rng = random.Random(5)
    chat_ids = [str(100_000 + n) for n in range(chats - groups)] + \
               [str(-1_000_000 - n) for n in range(groups)]
    jobs: asyncio.Queue[tuple[str, Message]] = asyncio.Queue()
    # every chat at least once, the rest at random; group chats stay under 20 each
    order = chat_ids + [rng.choice(chat_ids) for _ in range(count - len(chat_ids))]
    rng.shuffle(order)
    for chat, message in zip(order, messages(count, now), strict=True):
        jobs.put_nowait((chat, message))

    with FakeTelegram(TOKEN, enforce_limits=True) as fake:
        notifier = TelegramNotifier.from_settings(
            TelegramSettings(base_url=fake.base_url), {"CALLWATCH_TELEGRAM_TOKEN": TOKEN},
            pacer=Pacer(per_second=CAP, enabled=pacing))
        failures = 0

        async def worker() -> None:
            nonlocal failures
            while not jobs.empty():
                chat, message = jobs.get_nowait()
                try:
                    await notifier.send(Recipient(chat), message)
                except Exception as exc:  # counted and reported, the run goes on
                    failures += 1
                    print(f"send failed: {chat}: {exc!r}", file=sys.stderr)

        await notifier._start()  # getMe before the clock starts
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        elapsed = time.perf_counter() - started
        await notifier.aclose()

    arrivals = [s.at for s in fake.sent]
    span = arrivals[-1] - arrivals[0]
    rate = (len(arrivals) - 1) / span if span > 0 else float("inf")
    per_chat: dict[str, list[float]] = {}
    for sent in fake.sent:
        per_chat.setdefault(sent.chat_id, []).append(sent.at)
    closest = min((b - a for times in per_chat.values() for a, b in itertools.pairwise(times)),
                  default=float("nan"))
    print(f"machine:                {describe()}")
    print(f"pacing:                 {'on' if pacing else 'OFF (control run)'}")
    print(f"messages sent:          {len(fake.sent)} of {count} to {len(per_chat)} chats "
          f"({groups} groups), {workers} concurrent senders")
    print(f"wall time:              {elapsed:.2f} s")
    print(f"achieved rate:          {rate:.2f} msg/s ({100 * rate / CAP:.1f}% of the {CAP:g}/s cap)")
    print(f"closest two to a chat:  {closest:.3f} s apart")
    print(f"429 from our pacing:    {fake.throttled}")
    print(f"failed sends:           {failures}")
    ok = len(fake.sent) == count and rate >= 0.9 * CAP and fake.throttled == 0 and failures == 0
    print("result:                 " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--chats", type=int, default=300)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--no-pacing", action="store_true",
                        help="control run: shows the fake catches a sender that does not pace")
    args = parser.parse_args()
    return asyncio.run(run(args.messages, args.chats, args.groups, args.workers,
                           not args.no_pacing))


if __name__ == "__main__":
    sys.exit(main())
