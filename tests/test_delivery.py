"""The whole notify side against real local servers: scrape → match → outbox → channels.

The portal replay server feeds the real scraper; alerts, digests and reminders go through
the real channel code to a fake Telegram Bot API, a real SMTP server (aiosmtpd) and a
webhook receiver that checks signatures. Every test runs on SQLite and, when configured,
on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tracker.compose import build_notifiers
from tracker.config import Settings, load_config
from tracker.delivery import dispatch as dispatch_module
from tracker.delivery.dispatch import dispatch, list_deliveries
from tracker.delivery.outbox import enqueue_digests, enqueue_reminders
from tracker.demo.fakes.portal import PortalReplayServer
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.demo.fakes.telegram_api import FakeTelegram
from tracker.demo.fakes.webhook_receiver import WebhookReceiver
from tracker.pipeline import CycleReport, close_notifiers, run_once
from tracker.service.daemon import Daemon
from tracker.store.db import deliveries_table

REPO = Path(__file__).resolve().parent.parent
SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NTY3ODk="
TOKEN = "123456:TEST-TOKEN"
H2 = "ft_portal:HORIZON-CL5-2027-D3-01-05"

SUBSCRIBERS = """\
name: ana
tenant: hydrogen-valley
timezone: Europe/Madrid
channels:
  telegram: "1001"
  email: ana@example.org
  webhook: {hook}
  webhook_format: generic
subscriptions:
  - profile: hydrogen-valley
    mode: instant
    channels: [telegram, webhook]
  - profile: alentejo-agrifood
    mode: daily
    channels: [email]
reminders: [30, 7, 1]
---
"""


@dataclass
class World:
    portal: PortalReplayServer
    telegram: FakeTelegram
    smtp: SmtpSink
    hooks: WebhookReceiver
    settings: Settings
    engine: Engine
    environ: dict[str, str]
    now: datetime

    def clock(self) -> datetime:
        return self.now

    def cycle(self) -> CycleReport:
        notifiers = build_notifiers(self.settings, self.environ)

        async def go() -> CycleReport:
            try:
                return await run_once(self.settings, self.engine, self.clock, notifiers)
            finally:
                await close_notifiers(notifiers)

        return asyncio.run(go())

    def dispatch(self) -> Any:
        notifiers = build_notifiers(self.settings, self.environ)

        async def go() -> Any:
            try:
                return await dispatch(self.engine, notifiers, self.clock)
            finally:
                await close_notifiers(notifiers)

        return asyncio.run(go())

    def enqueue_only(self) -> None:
        """Scrape, match and enqueue, as a cycle does, but send nothing."""
        from tracker.pipeline import notify_step, scrape_sources, select_sources
        from tracker.store.calls import Store

        asyncio.run(scrape_sources(self.settings, Store(self.engine),
                                   select_sources(self.settings), self.clock))
        notify_step(self.settings, self.engine, self.now, ["telegram", "webhook", "email"])

    def rows(self, **where: Any) -> list[Any]:
        with self.engine.connect() as connection:
            query = sa.select(deliveries_table).order_by(deliveries_table.c.id)
            for key, value in where.items():
                query = query.where(deliveries_table.c[key] == value)
            return list(connection.execute(query))


@pytest.fixture
def world(tmp_path: Path, engine: Engine) -> Iterator[World]:
    profiles = tmp_path / "profiles"
    shutil.copytree(REPO / "config" / "profiles", profiles)
    subscribers = tmp_path / "subscribers"
    subscribers.mkdir()
    with PortalReplayServer() as portal, FakeTelegram(TOKEN) as telegram, \
            SmtpSink() as smtp, WebhookReceiver(SECRET) as hooks:
        (subscribers / "ana.yaml").write_text(
            SUBSCRIBERS.replace("{hook}", hooks.endpoint()).split("---")[0], encoding="utf-8")
        config = tmp_path / "callwatch.toml"
        disabled = "\n".join(f"[sources.{name}]\nenabled = false\n" for name in
                             ("eccp", "eismea", "hadea", "eit", "cascade_hub"))
        config.write_text(f"""
[profiles]
directory = "profiles"
[subscribers]
directory = "subscribers"
[http]
delay = 0
backoff = 0.01
max_backoff = 0.05
[sources.ft_portal]
search_url = "{portal.search_url}"
bulk_url = "{portal.bulk_url}"
{disabled}
[notifiers.console]
enabled = false
[notifiers.telegram]
base_url = "{telegram.base_url}"
[notifiers.email]
host = "127.0.0.1"
port = {smtp.port}
sender = "callwatch@example.org"
""", encoding="utf-8")
        environ = {"CALLWATCH_TELEGRAM_TOKEN": TOKEN, "CALLWATCH_WEBHOOK_SECRET": SECRET}
        settings = load_config(config, environ={})
        yield World(portal, telegram, smtp, hooks, settings, engine, environ,
                    datetime(2026, 11, 25, 5, 0, tzinfo=UTC))  # 06:00 in Madrid


def test_a_first_cycle_is_one_summary_per_channel_and_a_second_cycle_sends_nothing(
        world: World) -> None:
    report = world.cycle()
    assert report.notify.new_matches >= 3
    # the profile's first cycle: one summary on each channel, not an alert per call
    [summary] = world.telegram.sent
    assert summary.chat_id == "1001"
    assert summary.text.startswith("<b>4 calls match hydrogen-valley; here they are, closing first")
    assert "PEM and solid-oxide electrolysers" in summary.text
    assert "Why: matched <i>hydrogen</i>, <i>electrolysers</i> in the title" in summary.text
    [hook] = world.hooks.received
    assert hook.verified and hook.json()["kind"] == "summary"
    titles = [i["title"] for s in hook.json()["sections"] for i in s["items"]]
    assert "Next-generation PEM and solid-oxide electrolysers for renewable hydrogen" in titles
    assert len(titles) == 4
    assert world.smtp.messages == []  # agri-food is a daily digest: nothing instant by email
    sent = {(r.channel, r.kind, r.status) for r in world.rows()}
    assert sent == {("telegram", "summary", "sent"), ("webhook", "summary", "sent")}

    before = (len(world.telegram.sent), len(world.hooks.received))
    world.now += timedelta(hours=6)
    again = world.cycle()
    assert again.notify.changes == 0 and again.notify.alerts == 0
    assert (len(world.telegram.sent), len(world.hooks.received)) == before


def _move_h2_deadline(world: World, new_date: str = "2027-02-03") -> None:
    results = copy.deepcopy(world.portal.results)
    row = next(r for r in results if r.get("reference") == "50201101TOPICSen")
    row["metadata"]["deadlineDate"] = [f"{new_date}T00:00:00.000+0000"]
    world.portal.results = results


def test_a_moved_deadline_is_one_typed_alert(world: World) -> None:
    world.cycle()
    count = len(world.telegram.sent)
    _move_h2_deadline(world)
    world.now += timedelta(hours=6)
    report = world.cycle()
    assert report.notify.alerts == 2  # telegram and webhook
    new = world.telegram.sent[count:]
    assert len(new) == 1
    assert new[0].text.startswith("<b>Deadline 20 Jan → 3 Feb 2027</b>")
    assert "• deadline 20 Jan → 3 Feb 2027" in new[0].text
    [hook] = world.hooks.received[-1:]
    [changed] = hook.json()["sections"][0]["items"][0]["changes"]
    assert changed == {"kind": "deadline_changed", "field": "deadlines",
                       "before": "2027-01-20T16:00:00Z", "after": "2027-02-03T16:00:00Z",
                       "text": "deadline 20 Jan → 3 Feb 2027",
                       "old": ["2027-01-20T16:00:00Z"], "new": ["2027-02-03T16:00:00Z"]}


def test_daily_digest_goes_out_once_per_period_across_profiles(world: World) -> None:
    world.cycle()
    # before 08:00 Madrid time nothing is due; from 08:00 the daily digest is
    early = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)  # 07:00 in Madrid
    assert enqueue_digests(world.engine, early, ["email", "telegram", "webhook"]) == 0
    world.now = datetime(2026, 11, 26, 7, 5, tzinfo=UTC)  # 08:05 in Madrid
    assert enqueue_digests(world.engine, world.now, ["email", "telegram", "webhook"]) == 1
    world.dispatch()
    assert len(world.smtp.messages) == 1
    mail = world.smtp.messages[0].message
    assert mail["To"] == "ana@example.org"
    assert mail["Subject"].startswith("callwatch daily digest")
    assert "List-Unsubscribe" in mail
    text = mail.get_body(("plain",)).get_content()
    assert "AGRIFOOD-TWIN Eurocluster" in text and "Agroecology living labs" in text
    # the same period again: nothing new, nothing sent
    assert enqueue_digests(world.engine, world.now + timedelta(hours=2),
                           ["email", "telegram", "webhook"]) == 0
    # the next day with nothing new: "closing soon" only if a call closes within 7 days
    world.now = datetime(2026, 11, 27, 7, 5, tzinfo=UTC)
    assert enqueue_digests(world.engine, world.now, ["email"]) == 0


def test_deadline_reminders_on_the_right_local_day_once(world: World) -> None:
    world.cycle()
    # the H2 topic closes on 20 Jan 2027 at 17:00 Brussels; 7 days before in Madrid
    world.now = datetime(2027, 1, 13, 9, 0, tzinfo=UTC)
    count = enqueue_reminders(world.engine, world.now, ["telegram", "webhook", "email"])
    assert count >= 2
    world.dispatch()
    reminders = [m for m in world.telegram.sent if "Deadline in 7 days" in m.text]
    assert [m.chat_id for m in reminders if "PEM and solid-oxide" in m.text] == ["1001"]
    assert enqueue_reminders(world.engine, world.now + timedelta(hours=3),
                             ["telegram", "webhook", "email"]) == 0
    # a day that is not 30, 7 or 1 days before any cut-off sends nothing
    assert enqueue_reminders(world.engine, datetime(2027, 1, 10, 9, 0, tzinfo=UTC),
                             ["telegram"]) == 0


def test_telegram_429_is_retried_later_and_sent_once(world: World) -> None:
    world.telegram.flood(retry_after=120, chat_id="1001", times=10)
    world.cycle()
    waiting = world.rows(channel="telegram", status="pending")
    assert waiting and all(r.attempts == 1 for r in waiting)
    assert all(r.next_attempt_at >= world.now + timedelta(seconds=120) for r in waiting)
    assert world.telegram.sent == []
    world.telegram._floods.clear()
    world.now += timedelta(minutes=5)
    world.dispatch()
    assert {r.status for r in world.rows(channel="telegram")} == {"sent"}
    texts = [m.text for m in world.telegram.sent]
    assert len(texts) == len(set(texts)) == len(waiting)


def test_telegram_403_deactivates_the_channel_and_dead_letters(world: World) -> None:
    world.telegram.block("1001")
    world.cycle()
    dead = list_deliveries(world.engine, failed=True)
    assert dead and {r.channel for r in dead} == {"telegram"}
    assert world.rows(channel="webhook", status="sent")  # the other channel is unaffected
    with world.engine.connect() as connection:
        active = connection.execute(sa.text(
            "SELECT active FROM subscriber_channels WHERE channel = 'telegram'")).scalar()
    assert not active
    # later alerts skip the deactivated channel
    _move_h2_deadline(world)
    world.now += timedelta(hours=6)
    world.cycle()
    assert len(world.rows(channel="telegram")) == len(dead)


def test_telegram_chat_not_found_deactivates_the_channel_and_tells_the_admins(world: World) -> None:
    """A chat that does not exist (a wrong id in a subscriber file, a deleted group) is gone
    like a blocked bot: its channel is switched off, the admins hear of it once, and later
    alerts are not sent there (each would only become another dead letter)."""
    world.telegram.forget("1001")
    telegram = world.settings.notifiers.telegram.model_copy(update={"admin_chats": ("999",)})
    settings = world.settings.model_copy(update={"notifiers": world.settings.notifiers.model_copy(
        update={"telegram": telegram})})
    daemon = Daemon(settings, world.engine, world.clock)

    def deliver() -> None:
        async def go() -> None:
            daemon.notifiers = build_notifiers(settings, world.environ)
            try:
                await daemon.deliver()
            finally:
                await close_notifiers(daemon.notifiers)
        asyncio.run(go())

    world.enqueue_only()
    deliver()
    dead = list_deliveries(world.engine, failed=True)
    assert dead and {r.channel for r in dead} == {"telegram"}
    assert all("Chat not found" in (r.last_error or "") for r in dead)
    assert world.rows(channel="webhook", status="sent")  # the other channel is unaffected
    with world.engine.connect() as connection:
        active, note = connection.execute(sa.text(
            "SELECT active, note FROM subscriber_channels WHERE channel = 'telegram'")).one()
    assert not active and "Chat not found" in note
    [notice] = [m for m in world.telegram.sent if m.chat_id == "999"]
    assert "1 channel(s) switched off" in notice.text
    assert "telegram of ana (1001): telegram: Chat not found" in notice.text
    assert f"{len(dead)} message(s) could not be delivered" in notice.text
    # later alerts skip the switched-off channel: no new dead letters, no new notice
    _move_h2_deadline(world)
    world.now += timedelta(hours=6)
    world.enqueue_only()
    deliver()
    assert len(world.rows(channel="telegram")) == len(dead)
    assert [m.chat_id for m in world.telegram.sent] == ["999"]


def test_a_crash_before_sending_loses_nothing(world: World) -> None:
    """Rows claimed by a process that died before sending go out once the lease expires."""
    world.enqueue_only()
    pending = world.rows(status="pending")
    assert pending
    claimed = dispatch_module.claim(world.engine, world.now, 1000)  # then the "process" dies
    assert len(claimed) == len(pending)
    assert world.dispatch().count("sent") == 0  # still leased: nobody sends it twice
    world.now += dispatch_module.LEASE + timedelta(seconds=1)
    report = world.dispatch()
    assert report.count("sent") == len(pending)
    assert len(world.telegram.sent) + len(world.hooks.received) == len(pending)
    assert world.dispatch().count("sent") == 0


def test_the_remaining_window_a_crash_after_send_before_commit(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documented: if the process dies after the channel accepted a message and before the
    ``sent`` commit, that one message is sent again after the lease; nothing else repeats."""
    real_update = dispatch_module._update
    crashed: list[int] = []

    def crash_on_first_sent(engine: Engine, row_id: int, **values: Any) -> None:
        if values.get("status") == "sent" and not crashed:
            crashed.append(row_id)
            raise RuntimeError("simulated crash between send and commit")
        real_update(engine, row_id, **values)

    monkeypatch.setattr(dispatch_module, "_update", crash_on_first_sent)
    with pytest.raises(RuntimeError, match="simulated crash"):
        world.cycle()
    monkeypatch.setattr(dispatch_module, "_update", real_update)
    assert crashed
    assert {r.status for r in world.rows(id=crashed[0])} == {"sending"}  # accepted, not committed
    world.dispatch()  # restart at once: claimed rows are still leased, nobody sends them
    world.now += dispatch_module.LEASE + timedelta(seconds=1)
    world.dispatch()  # the leases expired: what was claimed goes out
    rows = world.rows()
    assert rows and all(r.status == "sent" for r in rows)
    total = len(world.telegram.sent) + len(world.hooks.received)
    repeated = total - len(rows)
    # the crashed message repeats; at most one more, the other channel's message in flight
    # at the moment the process died (channels send concurrently)
    assert 1 <= repeated <= len({r.channel for r in rows})
    texts = [m.text for m in world.telegram.sent]
    hook_ids = [h.headers["webhook-id"] for h in world.hooks.received]
    duplicates = (len(texts) - len(set(texts))) + (len(hook_ids) - len(set(hook_ids)))
    assert duplicates == repeated  # the repeats are the same messages, nothing new or lost
    world.now += timedelta(hours=1)
    world.dispatch()
    assert len(world.telegram.sent) + len(world.hooks.received) == total


def test_every_message_is_written_in_the_subscribers_language(world: World, tmp_path: Path) -> None:
    """ana's file says ``language: pl``: the first cycle's summary, her digest email (its
    subject, body and per-recipient footer) and a reminder are all in Polish, through the
    outbox, which reads the subscriber's language."""
    path = tmp_path / "subscribers" / "ana.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "language: pl\n", encoding="utf-8")
    world.cycle()
    [summary] = world.telegram.sent
    assert summary.text.startswith("<b>4 nabory pasują do hydrogen-valley; oto one, od "
                                   "najbliższego terminu</b>")
    assert "Dlaczego: dopasowano <i>hydrogen</i>, <i>electrolysers</i> w tytule" in summary.text
    assert world.hooks.received[0].json()["subject"] == "4 nabory pasują do hydrogen-valley"
    world.now = datetime(2026, 11, 26, 7, 5, tzinfo=UTC)  # 08:05 in Madrid
    assert enqueue_digests(world.engine, world.now, ["email", "telegram", "webhook"]) == 1
    world.dispatch()
    [received] = world.smtp.messages
    assert received.message["Subject"].startswith("Codzienne podsumowanie callwatch: ")
    text = received.message.get_body(("plain",)).get_content()
    assert "Nowe nabory (" in text and "Wysłane przez callwatch." in text
    assert "Sent by callwatch" not in text
    html = received.message.get_body(("html",)).get_content()
    assert '<html lang="pl">' in html and "Wysłane przez callwatch." in html
    world.now = datetime(2027, 1, 13, 9, 0, tzinfo=UTC)  # 7 days before the H2 cut-off
    enqueue_reminders(world.engine, world.now, ["telegram", "webhook", "email"])
    world.dispatch()
    assert any(m.text.startswith("<b>Termin za 7 dni</b>") for m in world.telegram.sent)
