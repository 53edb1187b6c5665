"""Soak: the daemon (``callwatch run``) sends 300 alerts to 3 groups and 2 private chats
through the fake Bot API for 5 minutes with ``dispatch.lease = 30s``; each arrives once.

Every alert is in the outbox when the daemon starts (60 per chat, the chats' rows
interleaved). The daemon runs as its own process on a fresh database with every source off;
its digest job (after 30 s), reminder job (after 45 s) and dispatch job (every minute) each
run a dispatch pass, each claiming up to ``dispatch.batch`` (200) rows. Telegram's real
pacing holds the groups to 20 messages a minute, so the passes run for minutes, several
times the lease, and overlap: before issue 12 a pass re-claimed the rows whose lease had
run out while another pass was still sending them, and both sent them.

The fake Bot API enforces Telegram's flood limits and counts every 429 our pacing provoked.
Meanwhile this script samples the outbox twice a second: which claim tokens hold rows, so
it can say how many passes overlapped and how long each held rows compared with the lease.
At the end it counts each alert's arrivals at the fake by the tag in its text, and passes
when every alert arrived exactly once and every outbox row is ``sent``.

    .venv/bin/python bench/bench_soak.py [--minutes 5] [--alerts 300] [--groups 3] [--chats 2]
        [--lease 30] [--db URL] [--workers 0]

``--db`` defaults to a fresh SQLite file; with a PostgreSQL URL the script works in a
schema of its own (dropped afterwards), and ``--workers N`` adds N ``callwatch worker
--no-scheduler`` processes that dispatch beside the daemon (pacing then shared through the
database).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from _machine import describe  # bench/ is not a package
from _postgres import scratch_schema

from tests.notifier_support import queue_alerts
from tracker.config import PACKAGED_DEFAULTS
from tracker.demo.fakes.telegram_api import FakeTelegram
from tracker.store import db
from tracker.store.db import deliveries_table

TOKEN = "123456:SOAK"  # noqa: S105 - the fake server's fake token
CALLWATCH = shutil.which("callwatch") or str(Path(sys.executable).with_name("callwatch"))
TAG = re.compile(r"alert-\d+")  # the tags queue_alerts writes


def chats(groups: int, private: int) -> list[str]:
    """Group chat ids are negative (Telegram's 20-a-minute limit applies), private positive."""
    return [str(-1_000_000_000_001 - n) for n in range(groups)] + \
           [str(700_000_001 + n) for n in range(private)]


def write_config(directory: Path, telegram: FakeTelegram, lease: int) -> Path:
    """Every source off (no network), Telegram to the fake with its real pacing, the lease."""
    (directory / "profiles").mkdir(exist_ok=True)
    (directory / "subscribers").mkdir(exist_ok=True)
    sources = tomllib.loads(PACKAGED_DEFAULTS.read_text(encoding="utf-8"))["sources"]
    lines = ['[profiles]', 'directory = "profiles"', '[subscribers]', 'directory = "subscribers"',
             '[notifiers.console]', 'enabled = false', '[notifiers.webhook]', 'enabled = false',
             '[notifiers.email]', 'enabled = false',
             '[notifiers.telegram]', f'base_url = "{telegram.base_url}"', 'pacing = "auto"',
             '[dispatch]', f'lease = "{lease}s"', 'batch = 200']
    for name in sources:
        lines += [f"[sources.{name}]", "enabled = false"]
    path = directory / "callwatch.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Claims:
    """What the outbox says about claims, sampled: each token's first and last sighting."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[float, float]] = {}
        self.most_at_once = 0

    def sample(self, engine: sa.Engine, at: float) -> Counter[str]:
        with engine.connect() as connection:
            holding = Counter(dict(connection.execute(
                sa.select(deliveries_table.c.worker, sa.func.count())
                .where(deliveries_table.c.status == "sending")
                .group_by(deliveries_table.c.worker)).all()))
            statuses = Counter(dict(connection.execute(
                sa.select(deliveries_table.c.status, sa.func.count())
                .group_by(deliveries_table.c.status)).all()))
        for token in holding:
            first, _ = self.seen.get(token, (at, at))
            self.seen[token] = (first, at)
        self.most_at_once = max(self.most_at_once, len(holding))
        return statuses


def soak(url: str, args: argparse.Namespace) -> bool:
    engine = db.make_engine(url)
    db.upgrade(engine)
    addresses = chats(args.groups, args.chats)
    # the alerts dealt to the chats in turn, each tagged in its text
    tags = queue_alerts(engine, "telegram",
                        [addresses[n % len(addresses)] for n in range(args.alerts)],
                        datetime.now(UTC))
    claims = Claims()
    with FakeTelegram(TOKEN, enforce_limits=True) as telegram, TemporaryDirectory() as temp:
        config = write_config(Path(temp), telegram, args.lease)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
        environment.update(CALLWATCH_CONFIG=str(config), CALLWATCH_DATABASE__URL=url,
                           CALLWATCH_TELEGRAM_TOKEN=TOKEN)
        logs = [Path(temp) / f"process-{n}.log" for n in range(1 + args.workers)]
        commands = [[CALLWATCH, "run"]] + [[CALLWATCH, "worker", "--no-scheduler"]] * args.workers
        processes = []
        started = time.monotonic()
        for command, log in zip(commands, logs, strict=True):
            with log.open("w") as stderr:
                processes.append(subprocess.Popen(  # noqa: S603 - our own console script
                    command, cwd=temp, env=environment, stdout=subprocess.DEVNULL, stderr=stderr))
        all_sent_at = None
        try:
            while time.monotonic() - started < args.minutes * 60:
                statuses = claims.sample(engine, time.monotonic() - started)
                if all_sent_at is None and statuses["sent"] == len(tags):
                    all_sent_at = time.monotonic() - started
                if any(p.poll() is not None for p in processes):
                    break  # a process died: report what happened so far
                time.sleep(0.5)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            codes = [process.wait(60) for process in processes]
        received = Counter(match.group(0) for m in telegram.sent if (match := TAG.search(m.text)))
        throttled = telegram.throttled
        log_text = "\n".join(log.read_text(encoding="utf-8") for log in logs)
    with engine.connect() as connection:
        statuses = Counter(dict(connection.execute(
            sa.select(deliveries_table.c.status, sa.func.count())
            .group_by(deliveries_table.c.status)).all()))
    engine.dispose()

    twice = {tag: n for tag, n in received.items() if n > 1}
    missing = [tag for tag in tags if received[tag] == 0]
    spans = sorted(last - first for first, last in claims.seen.values())
    lost = sum(int(n) for n in re.findall(r"\('telegram', 'lost'\): (\d+)", log_text))
    print(f"machine:       {describe()}")
    print(f"load average:  {' '.join(f'{x:.2f}' for x in os.getloadavg())} (at the end)")
    print(f"setup:         {args.alerts} alerts to {args.groups} groups and {args.chats} private "
          f"chats, lease {args.lease} s, batch 200, {engine.dialect.name}, daemon"
          f"{f' + {args.workers} worker(s)' if args.workers else ''}, {args.minutes} min")
    print(f"passes:        {len(claims.seen)} held rows; up to {claims.most_at_once} at once; "
          f"held rows for {', '.join(f'{s:.0f}' for s in spans)} s (lease {args.lease} s)")
    print(f"delivered:     {sum(received.values())} messages for {len(tags)} alerts; "
          + (f"all sent after {all_sent_at:.0f} s" if all_sent_at is not None else "NOT all sent"))
    repeats = dict(sorted(Counter(twice.values()).items()))  # times arrived: how many alerts
    print(f"exactly once:  {len(tags) - len(missing) - len(twice)} of {len(tags)}; "
          f"{len(twice)} more than once ({sum(twice.values()) - len(twice)} extra messages; "
          f"times arrived: alerts {repeats}), {len(missing)} missing")
    print(f"outbox:        {dict(statuses)}")
    print(f"pacing:        {throttled} flood-limit 429s provoked at the fake")
    print(f"claims lost:   {lost} rows not sent by a pass that found another holding them")
    print(f"exit codes:    {codes}")
    ok = not twice and not missing and statuses == Counter(sent=len(tags)) and codes == [0] * len(codes)
    print("result:        " + ("PASS" if ok else "FAIL"))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--chats", type=int, default=2, help="private chats")
    parser.add_argument("--lease", type=int, default=30, help="dispatch.lease in seconds")
    parser.add_argument("--db", help="PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--workers", type=int, default=0,
                        help="callwatch worker --no-scheduler processes beside the daemon")
    args = parser.parse_args()
    if not args.db:
        with TemporaryDirectory() as directory:
            return 0 if soak(f"sqlite:///{Path(directory) / 'soak.db'}", args) else 1
    with scratch_schema(args.db, "cw_soak") as url:
        return 0 if soak(url, args) else 1


if __name__ == "__main__":
    sys.exit(main())
