"""Benchmark: 10,000 emails through the email channel to a local aiosmtpd server.

The sink only counts (``keep=False``), so memory measured is the sender's. Targets: at
least 100 messages a second, and memory flat: resident size and traced Python memory
after the last message no higher than after the first thousand, give or take noise.
Speed is measured without tracemalloc (it slows Python several times); a second, shorter
run under tracemalloc shows that traced Python memory does not grow per message.

    .venv/bin/python bench/bench_email.py [--messages 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe  # bench/ is not a package

from notifiers.email import EmailNotifier, EmailSettings
from tracker.delivery.render import AlertItem, render_alert, render_digest
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.models import CallRecord, CallStatus
from tracker.ports import Message, Recipient


def current_rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def sample_messages(now: datetime) -> list[Message]:
    items = [AlertItem(CallRecord(
        source="ft_portal", native_id=f"HORIZON-MAIL-{n:02d}", title=f"Mail bench call {n} <b>&</b>",
        status=CallStatus.OPEN, programme="Horizon Europe", url=f"https://example.invalid/{n}",
        deadlines=(now + timedelta(days=5 + n),), budget_eur=2_500_000), (), ("keyword hydrogen",),
        "bench") for n in range(12)]
    digest = render_digest(new=items[:6], closing=items[6:], now=now)
    assert digest is not None
    return [digest, *(render_alert(item, now=now) for item in items)]


Checkpoint = tuple[int, float, float, float]  # sent, seconds, RSS MiB, traced MiB


async def send_many(count: int, traced: bool) -> tuple[int, float, list[Checkpoint]]:
    """Send ``count`` emails; return accepted, seconds, and (sent, s, RSS MiB, traced MiB) per 1000."""
    messages = sample_messages(datetime.now(UTC))
    checkpoints: list[Checkpoint] = []
    if traced:
        tracemalloc.start()
    with SmtpSink(keep=False) as sink:
        notifier = EmailNotifier(EmailSettings(host=sink.host, port=sink.port,
                                               sender="callwatch <bench@callwatch.example>"))
        started = time.perf_counter()
        for n in range(count):
            recipient = Recipient(f"member{n % 500}@example.org", unsubscribe_token=f"tok{n}")
            await notifier.send(recipient, messages[n % len(messages)])
            if (n + 1) % 1000 == 0:
                gc.collect()
                python = tracemalloc.get_traced_memory()[0] / 2**20 if traced else float("nan")
                checkpoints.append((n + 1, time.perf_counter() - started, current_rss_mib(), python))
        elapsed = time.perf_counter() - started
        await notifier.aclose()
        received = sink.count
    if traced:
        tracemalloc.stop()
    return received, elapsed, checkpoints


def growth(points: list[Checkpoint], header: str, column: int,
           row: Callable[[int, float, float, float], str]) -> float:
    """Print the checkpoints as a table, and return how much ``column`` grew from the first
    thousand messages to the last: the flat-memory target is judged on that."""
    print(header)
    for point in points:
        print(row(*point))
    return points[-1][column] - points[0][column]


async def run(count: int, traced_count: int) -> int:
    received, elapsed, checkpoints = await send_many(count, traced=False)
    rate = count / elapsed
    print(f"machine:             {describe()}")
    print(f"emails accepted:     {received} of {count} (one kept SMTP connection; the aiosmtpd")
    print("                     server runs in the same process, sharing the GIL)")
    print(f"wall time:           {elapsed:.2f} s")
    print(f"rate:                {rate:.0f} emails/s")
    rss_growth = growth(checkpoints, "sent    seconds   RSS MiB", 2,
                        lambda sent, seconds, rss, _: f"{sent:>5}  {seconds:8.2f}  {rss:8.1f}")
    print(f"RSS growth 1k→{count // 1000}k:    {rss_growth:+.1f} MiB")

    traced_received, traced_elapsed, traced_points = await send_many(traced_count, traced=True)
    print(f"second run under tracemalloc: {traced_received} emails in {traced_elapsed:.1f} s")
    traced_growth = growth(traced_points, "sent   traced MiB", 3,
                           lambda sent, _, __, python: f"{sent:>5}  {python:10.3f}")
    print(f"traced growth 1k→{traced_count // 1000}k: {traced_growth:+.3f} MiB")
    ok = (received == count and traced_received == traced_count and rate >= 100
          and rss_growth < 10 and traced_growth < 1)
    print("result:              " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--traced", type=int, default=3_000, help="emails in the tracemalloc run")
    args = parser.parse_args()
    return asyncio.run(run(args.messages, args.traced))


if __name__ == "__main__":
    sys.exit(main())
