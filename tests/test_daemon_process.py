"""`callwatch run` as a real process: alerts arrive, SIGTERM loses nothing, a standby takes over.

The daemon is the one part of callwatch that runs for months unattended, and its promises
(one scheduler per database, a graceful stop, a restart that neither loses nor repeats a
message) only hold across process boundaries, so this test starts the installed script
as a subprocess and talks to it only the way an operator's world does: through the replay
portal, the fake Telegram Bot API, an SMTP sink, the database, signals and its log.

Timing comes from the fakes, not from sleeps: the portal answers each search page slowly,
so a scrape is "in flight" from its first page request until its log line, and every wait
is a bounded wait for a condition with the processes' logs in the failure message.
"""

from __future__ import annotations

import copy
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.conftest import PG_URL, postgres_url_with_schema
from tracker.demo.fakes.portal import PortalReplayServer
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.demo.fakes.telegram_api import FakeTelegram
from tracker.service.daemon import SchedulerLock
from tracker.store import db
from tracker.store.db import deliveries_table
from tracker.store.heartbeat import read_heartbeat, scheduler_state

REPO = Path(__file__).resolve().parent.parent
CALLWATCH = shutil.which("callwatch") or str(Path(sys.executable).with_name("callwatch"))
TOKEN = "123456:TEST-TOKEN"
CHAT = "1001"
MAILBOX = "ana@example.org"
H2_REFERENCE = "50201101TOPICSen"
H2_TITLE = "Next-generation PEM and solid-oxide electrolysers"
H2_CALL = "ft_portal:HORIZON-CL5-2027-D3-01-05"
STANDBY_AGENT = "callwatch-standby/0 (daemon process test)"
WAIT = 30.0  # upper bound for any one condition; the whole test takes well under a minute
EXIT_WITHIN = 30.0  # the promise for SIGTERM
PAGE_DELAY = 0.5  # seconds per search page: with 5 results a page a scrape takes seconds

SUBSCRIBER = f"""\
name: ana
timezone: Europe/Madrid
channels:
  telegram: "{CHAT}"
  email: {MAILBOX}
subscriptions:
  - profile: hydrogen-valley
    mode: instant
    channels: [telegram, email]
reminders: []
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _day(value: date) -> str:
    """A date as alerts show it: "3 Feb 2027"."""
    return f"{value.day} {value:%b %Y}"


def with_h2_deadline(results: list[dict[str, Any]], deadline: date) -> list[dict[str, Any]]:
    """The recorded results with the H2 topic's single cut-off on ``deadline``.

    The daemon reads the real clock and the profile only wants calls closing in 14 to 365
    days, so the test sets the deadline relative to today instead of relying on the date
    in the recording.
    """
    results = copy.deepcopy(results)
    row = next(r for r in results if r.get("reference") == H2_REFERENCE)
    row["metadata"]["deadlineDate"] = [f"{deadline.isoformat()}T00:00:00.000+0000"]
    return results


@dataclass
class Daemon:
    """One ``callwatch run`` subprocess; its log (standard error) goes to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes]

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def count(self, text: str) -> int:
        return self.log().count(text)

    def terminate(self) -> int:
        """SIGTERM, then the exit code; fails if it takes longer than the promised 30 s."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=EXIT_WITHIN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} did not exit within {EXIT_WITHIN:.0f} s of SIGTERM\n"
                        f"--- {self.name} log ---\n{self.log()}")
        self._log.close()
        assert time.monotonic() - started < EXIT_WITHIN
        return code


@dataclass
class World:
    """The fakes, the files and the database one daemon test shares with its processes."""

    portal: PortalReplayServer
    telegram: FakeTelegram
    smtp: SmtpSink
    engine: Engine
    database_url: str
    workdir: Path
    health_url: str
    daemons: list[Daemon] = field(default_factory=list)

    def start(self, name: str, **environ: str) -> Daemon:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
        env.update(CALLWATCH_TELEGRAM_TOKEN=TOKEN, **environ)
        log_path = self.workdir / f"{name}.log"
        handle = log_path.open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [CALLWATCH, "--config", str(self.workdir / "callwatch.toml"),
             "--db", self.database_url, "run"],
            cwd=self.workdir, env=env, stdout=handle, stderr=subprocess.STDOUT)
        daemon = Daemon(name, process, log_path, handle)
        self.daemons.append(daemon)
        return daemon

    def logs(self) -> str:
        return "".join(f"\n--- {d.name} (exit {d.process.poll()}) ---\n{d.log()}"
                       for d in self.daemons)

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = WAIT) -> None:
        """Poll ``condition`` until it holds; fail naming ``what``, with every log, if it does
        not within ``timeout`` or if a daemon that should be running died."""
        deadline = time.monotonic() + timeout
        while not condition():
            crashed = [d for d in self.daemons if d.process.poll() not in (None, 0)]
            if crashed or time.monotonic() > deadline:
                reason = f"{crashed[0].name} crashed" if crashed else f"timed out after {timeout:.0f} s"
                pytest.fail(f"waiting for {what}: {reason}{self.logs()}")
            time.sleep(0.05)

    def rows(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.select(deliveries_table).order_by(deliveries_table.c.id)))

    def settled(self) -> bool:
        """Something was enqueued and every delivery is sent (none pending, leased or dead)."""
        rows = self.rows()
        return bool(rows) and all(r.status == "sent" for r in rows)

    def telegram_texts(self, needle: str) -> list[str]:
        return [m.text for m in list(self.telegram.sent) if m.chat_id == CHAT and needle in m.text]

    def mail_subjects(self, needle: str) -> list[str]:
        return [str(m.message["Subject"]) for m in list(self.smtp.messages)
                if m.rcpt_tos == (MAILBOX,) and needle in str(m.message["Subject"])]

    def leader(self) -> str | None:
        """The ``host:pid`` of the scheduler as its heartbeat says, when it says it runs."""
        beat = read_heartbeat(self.engine)
        running = scheduler_state(beat, datetime.now(UTC)) == "running"
        return beat.process if beat is not None and running else None

    def portal_requests(self, user_agent: str) -> int:
        return sum(1 for r in list(self.portal.requests) if r.headers.get("user-agent") == user_agent)

    def assert_each_delivery_arrived_once(self) -> None:
        """Nothing lost, nothing twice: every outbox row is sent, and each channel's fake got
        exactly as many distinct messages as the outbox sent on it, none of them twice."""
        rows = self.rows()
        assert Counter(r.status for r in rows) == {"sent": len(rows)}, self.logs()
        by_channel = Counter(r.channel for r in rows)
        telegram = [(m.chat_id, m.text) for m in self.telegram.sent]
        mails = [(m.rcpt_tos, str(m.message["Subject"])) for m in self.smtp.messages]
        twice = [str(m) for counts in (Counter(telegram), Counter(mails))
                 for m, n in counts.items() if n > 1]
        assert not twice, f"sent twice: {twice}"
        assert len(telegram) == by_channel["telegram"]
        assert len(mails) == by_channel["email"]
        assert set(by_channel) == {"telegram", "email"}


@pytest.fixture
def world(tmp_path: Path, engine: Engine, database_url: str) -> Iterator[World]:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(REPO / "config" / "profiles" / "hydrogen-valley.yaml", profiles)
    subscribers = tmp_path / "subscribers"
    subscribers.mkdir()
    (subscribers / "ana.yaml").write_text(SUBSCRIBER, encoding="utf-8")
    portal, telegram, smtp = PortalReplayServer(), FakeTelegram(TOKEN), SmtpSink()
    for server in (portal, telegram, smtp):
        server.start()
    try:
        portal.results = with_h2_deadline(portal.results, datetime.now(UTC).date() + timedelta(days=60))
        portal.slow = PAGE_DELAY
        port = free_port()
        disabled = "".join(f"[sources.{name}]\nenabled = false\n"
                           for name in ("eccp", "eismea", "hadea", "eit", "cascade_hub"))
        (tmp_path / "callwatch.toml").write_text(f"""
[profiles]
directory = "profiles"
[subscribers]
directory = "subscribers"
[http]
delay = 0
backoff = 0.01
max_backoff = 0.05
[scheduler]
jitter = 0
[web]
listen = "127.0.0.1:{port}"
[sources.ft_portal]
interval = "4s"
page_size = 5
search_url = "{portal.search_url}"
bulk_url = "{portal.bulk_url}"
{disabled}
[notifiers.console]
enabled = false
[notifiers.webhook]
enabled = false
[notifiers.telegram]
base_url = "{telegram.base_url}"
[notifiers.email]
host = "127.0.0.1"
port = {smtp.port}
sender = "callwatch@example.org"
""", encoding="utf-8")
        world = World(portal, telegram, smtp, engine, database_url, tmp_path,
                      f"http://127.0.0.1:{port}")
        try:
            yield world
        finally:
            for daemon in world.daemons:  # a failed test must not leave a daemon behind
                if daemon.process.poll() is None:
                    daemon.process.kill()
                    daemon.process.wait(timeout=10)
                daemon._log.close()
    finally:
        for server in (portal, telegram, smtp):
            server.stop()


def test_alerts_a_graceful_stop_a_restart_and_a_standby_that_takes_over(world: World) -> None:
    """Issue 6's done-when line, in the order an operator lives it: alerts arrive; a SIGTERM
    during a scrape lets it finish and exits 0; the restart sends what was left, once; a
    second process waits without scraping or sending, and takes over when the first exits."""
    # 1. The first scrape's new matches reach Telegram and email (a first cycle: one summary
    #    on each channel, the H2 topic in it)
    first = world.start("first")
    world.wait_for("the first-cycle summaries on both channels", lambda: bool(
        world.telegram_texts(H2_TITLE) and world.mail_subjects("calls match")))
    world.wait_for("the first cycle's outbox to be sent", world.settled)
    assert any("calls match" in text for text in world.telegram_texts(H2_TITLE))
    world.assert_each_delivery_arrived_once()
    first_keys = {r.key for r in world.rows()}

    # 2. Upstream moves the deadline; SIGTERM lands while the next scrape is in flight.
    moved = datetime.now(UTC).date() + timedelta(days=90)
    searches = len(world.portal.searches)
    world.portal.results = with_h2_deadline(world.portal.results, moved)
    world.wait_for("a scrape that started after the upstream change", lambda: any(
        s["page"] == 1 for s in world.portal.searches[searches:]))
    scraped_before = first.count("scraped source=ft_portal")
    assert first.terminate() == 0, first.log()
    log = first.log()
    stopping = log.index("stopping: finishing the running step")
    # the scrape in flight was allowed to finish and its change was stored before the exit
    assert first.count("scraped source=ft_portal") == scraped_before + 1, log
    assert "changed=1" in log[stopping:], log
    assert "tracker.service.daemon: stopped" in log[stopping:], log
    # its alerts are in the outbox, once per channel, and nothing is left leased
    moved_rows = [r for r in world.rows() if r.key not in first_keys]
    assert sorted(r.channel for r in moved_rows) == ["email", "telegram"], moved_rows
    assert {r.call_id for r in moved_rows} == {H2_CALL}
    assert all(r.status in ("pending", "sent") for r in world.rows()), world.rows()

    # 3. A restart sends what the stopped process enqueued: once, on each channel.
    second = world.start("second")
    world.wait_for("the restarted daemon to take the scheduler lock",
                   lambda: "scheduler lock acquired; running" in second.log())
    # a second process on the same database, started now so its start-up overlaps the wait
    standby = world.start("standby", CALLWATCH_HTTP__USER_AGENT=STANDBY_AGENT)
    moved_marker = "• deadline "  # what an alert about a moved deadline says
    world.wait_for("the deadline-moved alerts after the restart", lambda: bool(
        world.telegram_texts(moved_marker) and world.mail_subjects("Deadline ")))
    world.wait_for("the restarted daemon's outbox to be sent", world.settled)
    assert [t for t in world.telegram_texts(moved_marker) if _day(moved) in t], \
        world.telegram_texts(moved_marker)
    assert len(world.telegram_texts(moved_marker)) == 1
    assert len(world.mail_subjects("Deadline ")) == 1
    assert len(world.telegram_texts(H2_TITLE)) == 2  # the summary, then the moved deadline
    world.assert_each_delivery_arrived_once()
    # the leader's heartbeat (what `callwatch status` reads) and its /healthz say it runs
    assert world.leader() == f"{socket.gethostname()}:{second.process.pid}"
    beat = read_heartbeat(world.engine)
    assert beat is not None and "scrape:ft_portal" in {job.id for job in beat.jobs}, beat
    health = httpx.get(f"{world.health_url}/healthz", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["scheduler"] == "alive", health.text

    # 4. The second process on the same database stands by while the scheduler runs.
    world.wait_for("the standby to say it waits", lambda: "waiting as a standby" in standby.log())
    scraped = second.count("scraped source=ft_portal")
    sent = (len(world.telegram.sent), len(world.smtp.messages))
    world.wait_for("the running daemon to complete another scrape while the standby waits",
                   lambda: second.count("scraped source=ft_portal") > scraped)
    assert "lock acquired" not in standby.log() and "scraped" not in standby.log(), standby.log()
    assert world.portal_requests(STANDBY_AGENT) == 0
    assert (len(world.telegram.sent), len(world.smtp.messages)) == sent

    # 5. When the running daemon stops, the standby takes over and scrapes.
    assert second.terminate() == 0, second.log()
    world.wait_for("the standby to take the scheduler lock",
                   lambda: "scheduler lock acquired after standby" in standby.log())
    world.wait_for("the new leader's heartbeat", lambda: world.leader() == (
        f"{socket.gethostname()}:{standby.process.pid}"))
    world.wait_for("the former standby to scrape", lambda: (
        "scraped source=ft_portal" in standby.log() and world.portal_requests(STANDBY_AGENT) > 0))
    world.wait_for("the former standby's outbox to be sent", world.settled)
    assert standby.terminate() == 0, standby.log()
    assert scheduler_state(read_heartbeat(world.engine), datetime.now(UTC)) == "stopped"
    world.assert_each_delivery_arrived_once()
    assert len(world.telegram_texts(H2_TITLE)) == 2  # the summary, the moved deadline
    # by email: the summary (its subject names the profile), the moved deadline
    assert len(world.mail_subjects("calls match")) == 1
    assert len(world.mail_subjects(H2_TITLE)) == 1


def test_the_scheduler_lock_is_one_per_database_and_schema(engine: Engine, tmp_path: Path) -> None:
    """Held once per database; another database (on PostgreSQL: another schema of the same
    database, as each parallel test uses) has its own lock, so neither waits for the other."""
    holder, rival = SchedulerLock(engine), SchedulerLock(engine)
    assert holder.try_acquire()
    assert not rival.try_acquire()
    if engine.dialect.name == "postgresql":
        assert PG_URL is not None
        schema = f"cw_test_{uuid.uuid4().hex[:12]}"
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        other = db.make_engine(postgres_url_with_schema(PG_URL, schema))
    else:
        other = db.make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        elsewhere = SchedulerLock(other)
        assert elsewhere.try_acquire()
        elsewhere.release()
    finally:
        other.dispose()
        if engine.dialect.name == "postgresql":
            with engine.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    holder.release()
    assert rival.try_acquire()
    rival.release()
