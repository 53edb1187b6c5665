"""Several ``callwatch worker`` processes on one PostgreSQL schema (PostgreSQL only).

Three workers share 5,000 deliveries to the fake Telegram Bot API and a real SMTP server;
the one holding the scheduler is killed with SIGKILL mid-run. What must hold:

- every delivery reaches its server, and every outbox row ends ``sent``;
- nothing is sent twice, except what the dispatcher documents as its one window: a
  message the killed worker handed to a server but could not yet mark ``sent``. Such a
  row was ``sending`` when the worker died, and a worker sends one message at a time per
  channel, so at most one Telegram and one email message can repeat, each exactly twice;
- a standby takes the scheduler over, and SIGTERM stops the survivors cleanly.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.conftest import PG_URL, postgres_url_with_schema
from tracker.config import PACKAGED_DEFAULTS
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.demo.fakes.telegram_api import FakeTelegram
from tracker.ports import Message
from tracker.store import db
from tracker.store.db import channels_table, deliveries_table, subscribers_table

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs CALLWATCH_TEST_DATABASE_URL (PostgreSQL)")

CALLWATCH = shutil.which("callwatch") or str(Path(sys.executable).with_name("callwatch"))
TOKEN = "123456:WORKERS"
DELIVERIES = 5_000
SUBSCRIBERS = 500
WORKERS = 3
LEASE_SECONDS = 8
TAG = re.compile(r"msg-\d{5}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, migrated schema; dropped afterwards."""
    assert PG_URL is not None
    schema = f"cw_workers_{uuid.uuid4().hex[:10]}"
    admin = db.make_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = postgres_url_with_schema(PG_URL, schema)
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on that schema, disposed after the test even when it fails: its pooled
    connections are otherwise closed by no one (a ResourceWarning when collected, and a
    schema that cannot be dropped while they hold it)."""
    engine = db.make_engine(pg_url)
    yield engine
    engine.dispose()


def _enqueue(engine: Engine, now: datetime) -> None:
    """500 subscribers with a Telegram chat and a mailbox; 5,000 messages, half each way."""
    with engine.begin() as connection:
        connection.execute(subscribers_table.insert(), [
            {"id": n + 1, "name": f"sme-{n}", "timezone": "Europe/Brussels", "language": "en",
             "reminders": [], "origin": "bot", "created_at": now, "updated_at": now}
            for n in range(SUBSCRIBERS)])
        connection.execute(channels_table.insert(), [
            {"subscriber_id": n + 1, "channel": channel, "address": address,
             "configured_address": address, "webhook_format": "generic", "active": True}
            for n in range(SUBSCRIBERS)
            for channel, address in (("telegram", str(100_000 + n)),
                                     ("email", f"sme-{n}@example.invalid"))])
        rows = []
        for n in range(DELIVERIES):
            tag = f"msg-{n:05d}"
            message = Message(kind="alert", subject=f"Alert {tag}", text=f"Alert {tag}",
                              html=f"<p>Alert {tag}</p>", telegram=(f"<b>Alert {tag}</b>",),
                              document={})
            rows.append({"key": f"test|{tag}", "subscriber_id": n % SUBSCRIBERS + 1,
                         "channel": "telegram" if n % 2 else "email", "kind": "alert",
                         "message": message.model_dump(mode="json"), "status": "pending",
                         "attempts": 0, "parts_sent": 0, "next_attempt_at": now,
                         "created_at": now})
        connection.execute(deliveries_table.insert(), rows)


def _config(tmp_path: Path, telegram: FakeTelegram, smtp: SmtpSink) -> Path:
    """Every source off (no network), both fakes, pacing off, a short lease."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "subscribers").mkdir()
    sources = tomllib.loads(PACKAGED_DEFAULTS.read_text(encoding="utf-8"))["sources"]
    lines = ['[profiles]', 'directory = "profiles"', '[subscribers]', 'directory = "subscribers"',
             '[notifiers.console]', 'enabled = false', '[notifiers.webhook]', 'enabled = false',
             '[notifiers.telegram]', f'base_url = "{telegram.base_url}"', 'pacing = "off"',
             '[notifiers.email]', f'host = "{smtp.host}"', f'port = {smtp.port}',
             '[dispatch]', 'interval = "1s"', f'lease = "{LEASE_SECONDS}s"', 'batch = 50']
    for name in sources:
        lines += [f"[sources.{name}]", "enabled = false"]
    path = tmp_path / "callwatch.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _statuses(engine: Engine) -> Counter[str]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(deliveries_table.c.status, sa.func.count())
                                  .group_by(deliveries_table.c.status))
        return Counter({status: count for status, count in rows})


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_workers_send_every_delivery_once_when_one_is_killed(
        tmp_path: Path, pg_url: str, pg_engine: Engine) -> None:
    engine = pg_engine
    _enqueue(engine, datetime.now(UTC))
    logs = [tmp_path / f"worker-{n}.log" for n in range(WORKERS)]
    with FakeTelegram(TOKEN) as telegram, SmtpSink() as smtp:
        config = _config(tmp_path, telegram, smtp)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
        environment.update(CALLWATCH_CONFIG=str(config), CALLWATCH_DATABASE__URL=pg_url,
                           CALLWATCH_TELEGRAM_TOKEN=TOKEN)
        workers = []
        for log in logs:
            with log.open("w") as stderr:
                workers.append(subprocess.Popen(  # noqa: S603 - our own console script
                    [CALLWATCH, "worker"], cwd=tmp_path, env=environment,
                    stdout=subprocess.DEVNULL, stderr=stderr))
        try:
            # the scheduler is whoever logged it; kill that one once a fifth is sent
            _wait_for(lambda: any("scheduler lock acquired; running" in p.read_text()
                                  for p in logs), 30, "a scheduler")
            leader = next(n for n, p in enumerate(logs)
                          if "scheduler lock acquired; running" in p.read_text())
            _wait_for(lambda: _statuses(engine)["sent"] >= DELIVERIES // 5, 60, "sending to start")
            workers[leader].send_signal(signal.SIGKILL)
            workers[leader].wait(10)
            with engine.connect() as connection:
                in_flight = set(connection.execute(sa.select(deliveries_table.c.key).where(
                    deliveries_table.c.status == "sending")).scalars())
            assert _statuses(engine)["sent"] < DELIVERIES, "killed too late to test anything"

            _wait_for(lambda: _statuses(engine)["sent"] == DELIVERIES, 120, "every delivery sent")
            survivors = [w for n, w in enumerate(workers) if n != leader]
            _wait_for(lambda: any("after standby" in p.read_text()
                                  for n, p in enumerate(logs) if n != leader), 15,
                      "a standby to take the scheduler over")
            for worker in survivors:
                worker.send_signal(signal.SIGTERM)
            assert [w.wait(30) for w in survivors] == [0] * len(survivors)
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait(10)
        received = Counter(TAG.search(m.text).group(0) for m in telegram.sent)  # type: ignore[union-attr]
        received.update(TAG.search(str(m.message["subject"])).group(0)  # type: ignore[union-attr]
                        for m in smtp.messages)

    assert _statuses(engine) == Counter(sent=DELIVERIES)
    assert set(received) == {f"msg-{n:05d}" for n in range(DELIVERIES)}
    repeated = {tag for tag, count in received.items() if count > 1}
    assert {f"test|{tag}" for tag in repeated} <= in_flight
    assert all(received[tag] == 2 for tag in repeated)
    assert len(repeated) <= 2  # one message in flight per channel in the killed worker
    for n, log in enumerate(logs):
        if n != leader:
            assert "stopped" in log.read_text()
