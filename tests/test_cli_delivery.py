"""The delivery commands as an operator types them: `subscribers check`, `run --once`,
`digest [--subscriber] [--preview]`, `notify`, `deliveries --failed` and `dismiss`.

Each test drives the real command line (click, in process, so the clock can be fixed at the
week the portal pages were recorded) against the portal replay server, the fake Telegram
Bot API and a real SMTP server, and checks what arrived there and what the outbox says.
Every test runs on SQLite and, when configured, on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from tracker.cli import App, cli
from tracker.delivery.outbox import enqueue_reminders
from tracker.demo.fakes.portal import PortalReplayServer
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.demo.fakes.telegram_api import FakeTelegram
from tracker.store.db import channels_table, deliveries_table

REPO = Path(__file__).resolve().parent.parent
TOKEN = "123456:TEST-TOKEN"
H2 = "ft_portal:HORIZON-CL5-2027-D3-01-05"  # closes 20 Jan 2027, 17:00 Brussels
H2_TITLE = "PEM and solid-oxide electrolysers"
MADRID_6AM = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)

SUBSCRIBER = """\
name: ana
timezone: Europe/Madrid
channels:
  telegram: "{chat}"
  email: ana@example.org
subscriptions:
  - profile: hydrogen-valley
    mode: instant
    channels: [telegram]
  - profile: alentejo-agrifood
    mode: daily
    channels: [email]
"""


@dataclass
class Operator:
    """A config file, the local stand-ins it points at, and a fixed clock for the commands."""

    config: Path
    database_url: str
    engine: Engine
    portal: PortalReplayServer
    telegram: FakeTelegram
    smtp: SmtpSink
    now: datetime

    def __call__(self, *args: str) -> Result:
        result = CliRunner().invoke(cli, ["--config", str(self.config), "--db", self.database_url,
                                          *args], catch_exceptions=False)
        assert "Traceback" not in result.output, result.output
        return result

    def write_subscriber(self, chat: str) -> None:
        (self.config.parent / "subscribers" / "ana.yaml").write_text(
            SUBSCRIBER.format(chat=chat), encoding="utf-8")

    def rows(self, **where: object) -> list[sa.Row[tuple[object, ...]]]:
        query = sa.select(deliveries_table).order_by(deliveries_table.c.id)
        for column, value in where.items():
            query = query.where(deliveries_table.c[column] == value)
        with self.engine.connect() as connection:
            return list(connection.execute(query))

    def telegram_address(self) -> tuple[str, str]:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(channels_table.c.address,
                                               channels_table.c.configured_address)
                                     .where(channels_table.c.channel == "telegram")).one()
        return str(row.address), str(row.configured_address)


@pytest.fixture
def operator(tmp_path: Path, engine: Engine, database_url: str,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Operator]:
    shutil.copytree(REPO / "config" / "profiles", tmp_path / "profiles")
    (tmp_path / "subscribers").mkdir()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # the commands set up logging on stderr
    with PortalReplayServer() as portal, FakeTelegram(TOKEN) as telegram, SmtpSink() as smtp:
        disabled = "".join(f"[sources.{name}]\nenabled = false\n"
                           for name in ("eccp", "eismea", "hadea", "eit", "cascade_hub"))
        config = tmp_path / "callwatch.toml"
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
[notifiers.webhook]
enabled = false
[notifiers.telegram]
base_url = "{telegram.base_url}"
pacing = "off"
[notifiers.email]
host = "127.0.0.1"
port = {smtp.port}
sender = "callwatch@example.org"
""", encoding="utf-8")
        monkeypatch.setenv("CALLWATCH_TELEGRAM_TOKEN", TOKEN)
        op = Operator(config, database_url, engine, portal, telegram, smtp, MADRID_6AM)
        monkeypatch.setattr(App, "now", staticmethod(lambda: op.now))
        op.write_subscriber("1001")
        try:
            yield op
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)


def test_subscribers_check_passes_good_files_and_names_every_problem(operator: Operator) -> None:
    ok = operator("subscribers", "check")
    assert ok.exit_code == 0 and "1 subscriber(s) OK" in ok.stdout
    folder = operator.config.parent / "subscribers"
    (folder / "bob.yaml").write_text("name: bob\nchannels:\n  telegram: not-a-chat\n"
                                     "subscriptions:\n  - profile: hydrogen-valley\n",
                                     encoding="utf-8")
    (folder / "eve.yaml").write_text("name: eve\nchannels:\n  email: eve@example.org\n"
                                     "subscriptions:\n  - profile: hydrogen-valey\n",
                                     encoding="utf-8")
    failed = operator("subscribers", "check")
    assert failed.exit_code == 2
    assert f"{folder / 'bob.yaml'}:3: channels.telegram" in failed.stderr
    assert f"{folder / 'eve.yaml'}:5: subscriptions[0].profile: unknown profile" in failed.stderr
    assert "did you mean 'hydrogen-valley'" in failed.stderr
    assert "2 problem(s) in subscribers" in failed.stderr
    # `run --once` refuses to start the same way, before it scrapes or sends anything
    refused = operator("run", "--once")
    assert refused.exit_code == 2 and operator.portal.searches == []


def test_run_once_alerts_and_a_second_run_with_no_upstream_change_sends_nothing(
        operator: Operator) -> None:
    first = operator("run", "--once")
    assert first.exit_code == 0, first.output
    alerts = [m for m in operator.telegram.sent if H2_TITLE in m.text]
    assert len(alerts) == 1 and alerts[0].chat_id == "1001"
    assert "calls match hydrogen-valley" in alerts[0].text  # a first cycle: one summary
    rows = operator.rows()
    assert rows and {(r.channel, r.status) for r in rows} == {("telegram", "sent")}
    assert operator.smtp.messages == []  # agri-food is a daily digest: nothing instant by email

    sent = len(operator.telegram.sent)
    operator.now += timedelta(hours=1)  # 07:00 in Madrid: the daily digest is not due yet
    second = operator("run", "--once")
    assert second.exit_code == 0, second.output
    assert "0 changes, 0 matches" in second.stderr
    assert re.search(r"0 alerts, 0 digest \w+, 0 reminders, 0 digests", second.stderr)
    assert "nothing due" in second.stderr
    assert len(operator.telegram.sent) == sent and operator.smtp.messages == []
    assert len(operator.rows()) == len(rows)


def test_digest_preview_prints_without_sending_then_digest_sends_it_once(operator: Operator) -> None:
    assert operator("run", "--once").exit_code == 0
    queued = len(operator.rows())

    preview = operator("digest", "--preview")
    assert preview.exit_code == 0, preview.output
    assert "== daily digest for ana: callwatch daily digest" in preview.stdout
    assert "AGRIFOOD-TWIN Eurocluster" in preview.stdout
    # first-time matches are new calls (they were "changed" before issue 16), in sections
    assert re.search(r"callwatch daily digest: \d+ new", preview.stdout)
    assert re.search(r"\nNew calls \(\d+\)\n-+\n", preview.stdout)
    assert "Changed" not in preview.stdout
    for name in ("ana", "nobody"):  # one subscriber's, or a clear nothing
        only = operator("digest", "--preview", "--subscriber", name)
        assert only.exit_code == 0, only.output
        assert ("== daily digest for ana" in only.stdout) is (name == "ana")
        assert ("nothing to put in a digest" in only.stdout) is (name == "nobody")
    assert operator.smtp.messages == [] and len(operator.rows()) == queued  # nothing sent or kept

    other = operator("digest", "--subscriber", "nobody")
    assert other.exit_code == 0 and "0 digest message(s) enqueued" in other.stdout
    assert operator.smtp.messages == []

    sent = operator("digest", "--subscriber", "ana")  # 07:00 in Madrid: before its hour, forced
    assert sent.exit_code == 0, sent.output
    assert "1 digest message(s) enqueued" in sent.stdout
    [mail] = operator.smtp.messages
    assert mail.message["To"] == "ana@example.org"
    assert str(mail.message["Subject"]).startswith("callwatch daily digest")
    plain = mail.message.get_body(("plain",))
    assert plain is not None and "AGRIFOOD-TWIN Eurocluster" in plain.get_content()

    again = operator("digest", "--subscriber", "ana")
    assert "0 digest message(s) enqueued" in again.stdout
    assert len(operator.smtp.messages) == 1


def test_notify_sends_what_waited_and_deliveries_failed_lists_dead_letters(operator: Operator) -> None:
    operator.telegram.flood(retry_after=120, chat_id="1001", times=20)
    assert operator("run", "--once").exit_code == 0
    waiting = operator.rows(channel="telegram", status="pending")
    assert waiting and operator.telegram.sent == []

    early = operator("notify")  # nothing is due before the Retry-After has passed
    assert early.exit_code == 0 and operator.telegram.sent == []
    operator.telegram._floods.clear()
    operator.now += timedelta(minutes=5)
    sent = operator("notify")
    assert sent.exit_code == 0, sent.output
    assert len(operator.telegram.sent) == len(waiting)
    assert {r.status for r in operator.rows(channel="telegram")} == {"sent"}

    listed = json.loads(operator("deliveries", "--format", "json").stdout)
    assert len(listed) == len(waiting) and {d["status"] for d in listed} == {"sent"}
    assert json.loads(operator("deliveries", "--failed", "--format", "json").stdout) == []

    # the chat blocks the bot: the next alert is a dead letter, listed with its error
    operator.telegram.block("1001")
    results = [dict(r) for r in operator.portal.results]
    row = next(r for r in results if r.get("reference") == "50201101TOPICSen")
    row["metadata"] = {**row["metadata"], "deadlineDate": ["2027-02-03T00:00:00.000+0000"]}
    operator.portal.results = results
    operator.now += timedelta(hours=6)
    assert operator("run", "--once").exit_code == 0
    dead = json.loads(operator("deliveries", "--failed", "--format", "json").stdout)
    assert [(d["subscriber"], d["channel"], d["kind"], d["call_id"], d["status"]) for d in dead] \
        == [("ana", "telegram", "alert", H2, "dead")]
    assert "blocked" in dead[0]["last_error"]
    table = operator("deliveries", "--failed", "--format", "table")
    assert "dead letters" in table.stdout and "ana" in table.stdout


def test_run_once_and_notify_claim_with_the_configured_lease_and_batch(operator: Operator) -> None:
    """``dispatch.lease`` and ``dispatch.batch`` hold for the command line as for the daemon:
    at every send, the outbox shows at most ``batch`` rows claimed, each until now + lease."""
    with operator.config.open("a", encoding="utf-8") as config:
        # every alert on its own (no first-cycle summary), so there are several to claim
        config.write('[dispatch]\nlease = "7m"\nbatch = 1\n[alerts]\nsummary_after = 0\n')
    claimed: list[tuple[int, datetime | None]] = []

    def look(_message: object) -> None:
        with operator.engine.connect() as connection:
            count, until = connection.execute(
                sa.select(sa.func.count(), sa.func.max(deliveries_table.c.lease_until))
                .where(deliveries_table.c.status == "sending")).one()
        claimed.append((count, until.replace(tzinfo=UTC) if until else None))

    operator.telegram.on_send = look
    assert operator("run", "--once").exit_code == 0
    rows = operator.rows(channel="telegram")
    assert len(rows) > 1 and {r.status for r in rows} == {"sent"}
    assert claimed == [(1, MADRID_6AM + timedelta(minutes=7))] * len(rows)

    claimed.clear()
    operator.now += timedelta(hours=1)
    with operator.engine.begin() as connection:  # the same messages queued once more
        connection.execute(deliveries_table.update().values(status="pending",
                                                            next_attempt_at=operator.now))
    assert operator("notify").exit_code == 0
    assert {r.status for r in operator.rows(channel="telegram")} == {"sent"}
    assert claimed == [(1, operator.now + timedelta(minutes=7))] * len(rows)


def test_reminders_skip_a_call_dismissed_for_the_profile(operator: Operator) -> None:
    assert operator("run", "--once").exit_code == 0
    # 30 days before the H2 cut-off in Madrid: reminded
    assert enqueue_reminders(operator.engine, datetime(2026, 12, 21, 9, 0, tzinfo=UTC),
                             ["telegram", "email"]) >= 1
    assert [r.call_id for r in operator.rows(kind="reminder")].count(H2) == 1

    dismissed = operator("dismiss", "hydrogen-valley", H2)
    assert dismissed.exit_code == 0 and f"dismissed {H2}" in dismissed.stdout
    # 7 and 1 days before: never again for a dismissed call
    for day in (datetime(2027, 1, 13, 9, 0, tzinfo=UTC), datetime(2027, 1, 19, 9, 0, tzinfo=UTC)):
        enqueue_reminders(operator.engine, day, ["telegram", "email"])
    assert [r.call_id for r in operator.rows(kind="reminder")].count(H2) == 1


def test_a_group_that_became_a_supergroup_keeps_getting_messages_at_its_new_id(
        operator: Operator) -> None:
    operator.write_subscriber("-4242")
    operator.telegram.migrate("-4242", -1004242)
    assert operator("run", "--once").exit_code == 0
    alerts = [m for m in operator.telegram.sent if H2_TITLE in m.text]
    assert [m.chat_id for m in alerts] == ["-1004242"]
    assert {r.status for r in operator.rows()} == {"sent"}
    # the new id is stored, and the next cycle's sync of the unchanged file keeps it
    assert operator.telegram_address() == ("-1004242", "-4242")

    results = [dict(r) for r in operator.portal.results]
    row = next(r for r in results if r.get("reference") == "50201101TOPICSen")
    row["metadata"] = {**row["metadata"], "deadlineDate": ["2027-02-03T00:00:00.000+0000"]}
    operator.portal.results = results
    operator.now += timedelta(hours=6)
    rejected = len(operator.telegram.rejected)
    assert operator("run", "--once").exit_code == 0
    moved = [m for m in operator.telegram.sent if "deadline 20 Jan → 3 Feb 2027" in m.text]
    assert [m.chat_id for m in moved] == ["-1004242"]
    assert len(operator.telegram.rejected) == rejected  # sent straight to the new id
    assert operator.telegram_address() == ("-1004242", "-4242")


def test_with_no_subscriber_a_first_run_prints_its_alerts_on_the_console(operator: Operator) -> None:
    (operator.config.parent / "subscribers" / "ana.yaml").unlink()
    operator.config.write_text(operator.config.read_text(encoding="utf-8").replace(
        "[notifiers.console]\nenabled = false", "[notifiers.console]\nenabled = true"),
        encoding="utf-8")
    first = operator("run", "--once")
    assert first.exit_code == 0, first.output
    printed = [block for block in first.stdout.split("-" * 72) if "To console: " in block]
    assert any(H2_TITLE in block and "calls match" in block for block in printed), first.stdout
    assert {r.channel for r in operator.rows()} == {"console"}
    assert operator.telegram.sent == [] and operator.smtp.messages == []
    operator.now += timedelta(hours=1)
    again = operator("run", "--once")
    assert "To console: " not in again.stdout  # printed once, like any channel


def test_a_crash_before_the_outbox_commits_leaves_nothing_and_the_next_run_redoes_it(
        operator: Operator) -> None:
    """Alerts, recorded matches and the change cursor commit together: a crash at the last
    statement of that transaction keeps none of them, and the next run sends each alert once."""

    def crash_at_the_cursor(connection: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CURSORS"):
            raise RuntimeError("simulated crash before the commit")

    sa.event.listen(Engine, "before_cursor_execute", crash_at_the_cursor)
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            operator("run", "--once")
    finally:
        sa.event.remove(Engine, "before_cursor_execute", crash_at_the_cursor)
    with operator.engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT count(*) FROM calls")).scalar()
        matches = connection.execute(sa.text("SELECT count(*) FROM matches")).scalar()
    assert stored and matches == 0  # the scrape had committed on its own; the notify step had not
    assert operator.rows() == [] and operator.telegram.sent == []

    redo = operator("run", "--once")
    assert redo.exit_code == 0, redo.output
    assert [m.chat_id for m in operator.telegram.sent if H2_TITLE in m.text] == ["1001"]
    assert {r.status for r in operator.rows()} == {"sent"}
    assert len(operator.telegram.sent) == len(operator.rows())


def test_looking_at_matches_before_a_run_changes_no_alert(operator: Operator) -> None:
    """`callwatch match` only shows: the run after it alerts every match, as if never run."""
    assert operator("scrape", "ft_portal").exit_code == 0
    looked = operator("match", "--all", "--format", "json")
    assert looked.exit_code == 0, looked.output
    shown = {m["call_id"]: m["title"] for m in json.loads(looked.stdout)
             if m["profile"] == "hydrogen-valley"}  # ana follows it, instantly, on Telegram
    assert H2 in shown
    again = operator("match", "--all", "--format", "json")  # looking twice changes nothing
    assert json.loads(again.stdout) == json.loads(looked.stdout)

    ran = operator("run", "--once")
    assert ran.exit_code == 0, ran.output
    alerts = [m.text for m in operator.telegram.sent if "New matching call" in m.text]
    assert len([text for text in alerts if H2_TITLE in text]) == 1
    assert len(alerts) == len(shown), alerts
    assert all(any(title in text for text in alerts) for title in shown.values()), alerts
