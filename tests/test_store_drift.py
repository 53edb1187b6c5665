"""Drift detection wired into storing a run: suspicious runs, the absence rule, health, alerts.

Store tests run on every backend (``store`` and ``engine`` fixtures); the scrape and daemon
tests drive the real ``scrape_one`` and ``Daemon.scrape`` with small fake sources, channels
and a local fixture site, never a mock.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from tests.factories import make_call
from tests.sources_support import EFRE_AT_SELECTORS, FIXTURES
from tests.test_cli import run
from tracker.config import Settings, load_config
from tracker.demo.fakes.sites import FixtureSite
from tracker.models import CallRecord, ChangeKind, RunOutcome, ScrapeResult
from tracker.pipeline import scrape_one
from tracker.ports import Message, Progress, Recipient, SendResult
from tracker.service.daemon import Daemon
from tracker.source_status import status_of
from tracker.store.calls import RunReport, Store
from tracker.store.drift import RED_AFTER

FOUR = ("A", "B", "C", "D")


def save(store: Store, at: datetime, *records, complete: bool = True, invalid: int = 0,
         error: str | None = None, expected: tuple[str, ...] | None = None) -> RunReport:
    result = ScrapeResult(records=list(records), complete=complete, invalid=invalid, error=error)
    if expected is None:
        return store.record_run("ft_portal", result, started_at=at, now=at)
    return store.record_run("ft_portal", result, started_at=at, now=at, expected_fields=expected)


def test_zero_items_after_a_good_run_is_suspicious_and_removes_nothing(
    store: Store, now: datetime
) -> None:
    """A layout change that yields nothing must not look like every call being withdrawn."""
    save(store, now, *(make_call(n) for n in FOUR))
    for hours in (6, 12, 18):
        report = save(store, now + timedelta(hours=hours))
        assert report.outcome is RunOutcome.SUSPICIOUS
        assert report.changes == []
        assert report.error == "suspicious: parsed zero items; the last good run had 4"
    # the baseline stays the last good run, however many suspicious runs follow
    assert [r.outcome for r in store.runs("ft_portal")][:3] == [RunOutcome.SUSPICIOUS] * 3
    listed = store.list_calls(listed_only=True)
    assert sorted(c.record.native_id for c in listed) == sorted(FOUR)
    assert all(c.record == make_call(c.record.native_id) for c in listed)
    assert all([ch.kind for ch in store.history(c.id)] == [ChangeKind.NEW] for c in listed)


def test_a_suspicious_run_keeps_stored_deadlines_and_links(store: Store, now: datetime) -> None:
    """Items that lost their deadline to a changed layout neither blank the stored ones nor
    send 'deadline changed' alerts; a real change in the same run is still recorded."""
    save(store, now, *(make_call(n) for n in FOUR))
    later = now + timedelta(hours=6)
    lost = [make_call(n, deadlines=(), url=None) for n in ("A", "B", "C")]
    report = save(store, later, *lost, make_call("D", title="Electrolysers, revised"))
    assert report.outcome is RunOutcome.SUSPICIOUS
    assert report.error == ("suspicious: 3 of 4 items lack a url; 3 of 4 items lack a deadline")
    assert [(c.call_id, c.kind) for c in report.changes] == [("ft_portal:D", ChangeKind.TITLE_CHANGED)]
    kept = store.get_call("ft_portal:A")
    assert kept.record.deadlines == make_call("A").deadlines and kept.record.url == make_call("A").url
    assert store.runs("ft_portal")[0].error == report.error


def test_a_suspicious_run_still_stores_a_new_call(store: Store, now: datetime) -> None:
    """Suspicious is a warning about the run, not a reason to drop what it did read."""
    save(store, now, *(make_call(n) for n in FOUR))
    report = save(store, now + timedelta(hours=1), make_call("E"), invalid=3)
    assert report.outcome is RunOutcome.SUSPICIOUS and report.new == 1
    assert store.get_call("ft_portal:E").still_listed


def test_a_source_without_deadlines_is_judged_by_its_expected_fields(
    store: Store, now: datetime
) -> None:
    """A news feed gives no deadlines; it says so and its runs stay ok."""
    feed = [make_call(n, deadlines=()) for n in FOUR]
    assert save(store, now, *feed).outcome is RunOutcome.SUSPICIOUS
    assert save(store, now, *feed, expected=("title", "url")).outcome is RunOutcome.OK


def test_an_ok_run_after_suspicious_ones_strikes_again(store: Store, now: datetime) -> None:
    """Suspicious runs neither strike nor reset strikes: two complete runs without B remove it."""
    save(store, now, *(make_call(n) for n in FOUR))
    three = [make_call(n) for n in ("A", "C", "D")]
    save(store, now + timedelta(hours=1), *three)  # first strike for B
    save(store, now + timedelta(hours=2))  # suspicious: nothing
    report = save(store, now + timedelta(hours=3), *three)
    assert report.outcome is RunOutcome.OK
    assert [(c.call_id, c.kind) for c in report.changes] == [
        ("ft_portal:B", ChangeKind.REMOVED_FROM_SOURCE)]


def forty(count: int = 40) -> list[CallRecord]:
    return [make_call(f"T-{n:02d}") for n in range(count)]


def removed(report: RunReport) -> list[str]:
    return sorted(c.call_id for c in report.changes if c.kind is ChangeKind.REMOVED_FROM_SOURCE)


def test_a_fall_from_40_to_1_is_suspicious_and_removes_nothing(
    store: Store, now: datetime, database_url: str, tmp_path: Path
) -> None:
    """However often the page shows 1 call of 40, no call is marked removed, the run log,
    the source's health and `callwatch sources` say why, and every call stays listed."""
    save(store, now, *forty())
    for hours in (6, 12):
        report = save(store, now + timedelta(hours=hours), make_call("T-00"))
        assert report.outcome is RunOutcome.SUSPICIOUS
        assert report.changes == []
        assert report.error == ("suspicious: fell to 1 calls from 40, the median of the last "
                                "1 ok run(s)")
    assert store.runs("ft_portal")[0].outcome is RunOutcome.SUSPICIOUS
    health = status_of(store, "ft_portal")
    assert (health.level, health.bad_in_a_row) == ("amber", 2)
    assert health.reason == ("2 failed or suspicious run(s) in a row: suspicious: fell to 1 calls "
                             "from 40, the median of the last 1 ok run(s)")
    listed = store.list_calls(listed_only=True)
    assert len(listed) == 40 and all(c.record == make_call(c.record.native_id) for c in listed)
    shown = run("--db", database_url, "sources", "--format", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    portal = next(s for s in json.loads(shown.stdout) if s["name"] == "ft_portal")
    assert (portal["outcome"], portal["health"]) == ("suspicious", "amber")
    assert "fell to 1 calls from 40" in portal["health_reason"]


def test_a_fall_from_40_to_35_still_removes_the_five(store: Store, now: datetime) -> None:
    save(store, now, *forty())
    first = save(store, now + timedelta(hours=6), *forty(35))
    second = save(store, now + timedelta(hours=12), *forty(35))
    assert (first.outcome, second.outcome) == (RunOutcome.OK, RunOutcome.OK)
    assert removed(first) == []  # the first strike
    assert removed(second) == [f"ft_portal:T-{n}" for n in range(35, 40)]
    assert len(store.list_calls(listed_only=True)) == 35


def test_the_next_normal_run_after_a_fall_is_ordinary(store: Store, now: datetime) -> None:
    """A suspicious run is no baseline: 40, 1, 40 is two ok runs around a blip, with no
    event; later falls are judged against the ok runs, and ordinary removals go on."""
    save(store, now, *forty())
    assert save(store, now + timedelta(hours=1), make_call("T-00")).outcome is RunOutcome.SUSPICIOUS
    back = save(store, now + timedelta(hours=2), *forty())
    assert (back.outcome, back.changes, back.error) == (RunOutcome.OK, [], None)
    assert status_of(store, "ft_portal").level == "green"
    assert save(store, now + timedelta(hours=3), make_call("T-00")).outcome is RunOutcome.SUSPICIOUS
    save(store, now + timedelta(hours=4), *forty(35))
    report = save(store, now + timedelta(hours=5), *forty(35))
    assert report.outcome is RunOutcome.OK
    assert removed(report) == [f"ft_portal:T-{n}" for n in range(35, 40)]


def test_health_turns_red_after_three_suspicious_or_failed_runs(store: Store, now: datetime) -> None:
    """Red follows the stored run log: suspicious and failed runs count, partial ones break it."""
    assert (status_of(store, "ft_portal").level, status_of(store, "ft_portal").reason) == ("unknown",
                                                                                  "never run")
    save(store, now, *(make_call(n) for n in FOUR))
    assert status_of(store, "ft_portal").level == "green"
    save(store, now + timedelta(hours=1))  # suspicious
    save(store, now + timedelta(hours=2), complete=False, error="HTTP 503")  # failed
    health = status_of(store, "ft_portal")
    assert (health.level, health.bad_in_a_row) == ("amber", 2)
    assert health.reason == "2 failed or suspicious run(s) in a row: HTTP 503"
    save(store, now + timedelta(hours=3))  # suspicious again
    health = status_of(store, "ft_portal")
    assert (health.level, health.bad_in_a_row) == ("red", RED_AFTER)
    assert health.reason.endswith("suspicious: parsed zero items; the last good run had 4")
    save(store, now + timedelta(hours=4), make_call("A"), complete=False, error="page 2 failed")
    partial = status_of(store, "ft_portal")
    assert (partial.level, partial.bad_in_a_row, partial.consecutive_failures) == ("amber", 0, 4)


class ScriptedSource:
    """A source that returns the next prepared result on each scrape (a fake, not a mock)."""

    def __init__(self, name: str, results: list[ScrapeResult],
                 expected_fields: tuple[str, ...] = ("title", "url", "deadline")) -> None:
        self.name = name
        self.results = results
        self.expected_fields = expected_fields

    async def scrape(self, now: datetime, progress: Progress | None = None) -> ScrapeResult:
        return self.results.pop(0)


def test_scrape_one_judges_runs_by_the_fields_the_source_promises(store: Store, now: datetime) -> None:
    """The pipeline hands the store what the source says its items carry."""
    feed = [make_call(n, deadlines=()) for n in FOUR]
    as_feed = ScriptedSource("ft_portal", [ScrapeResult(records=feed)], ("title", "url"))
    as_list = ScriptedSource("ft_portal", [ScrapeResult(records=feed)])
    first = asyncio.run(scrape_one("ft_portal", as_feed, store, lambda: now))
    second = asyncio.run(scrape_one("ft_portal", as_list, store, lambda: now))
    assert first.report.outcome is RunOutcome.OK
    assert second.report.outcome is RunOutcome.SUSPICIOUS
    assert second.report.error == "suspicious: 4 of 4 items lack a deadline"


# -- the daemon's operator alert follows the stored streak ---------------------------------

class RecordingTelegram:
    """A Telegram channel that keeps what it is asked to send."""

    channel = "telegram"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, recipient: Recipient, message: Message) -> SendResult:
        self.sent.append((recipient.address, message.text))
        return SendResult(channel=self.channel, address=recipient.address)

    async def aclose(self) -> None:
        return None


def daemon_settings(tmp_path: Path, url: str, bot_api: str = "https://api.telegram.org/bot") -> Settings:
    """One source at ``url``, admin chat 42, written to ``tmp_path / "callwatch.toml"``."""
    config = tmp_path / "callwatch.toml"
    config.write_text(f"""
[http]
delay = 0
retries = 0
[profiles]
directory = "{tmp_path / 'profiles'}"
[subscribers]
directory = "{tmp_path / 'subscribers'}"
[notifiers.console]
enabled = false
[notifiers.telegram]
base_url = "{bot_api}"
admin_chats = ["42"]
[sources.efre_at]
kind = "html_list"
url = "{url}"
{EFRE_AT_SELECTORS}""", encoding="utf-8")
    (tmp_path / "profiles").mkdir()
    (tmp_path / "subscribers").mkdir()
    return load_config(config, environ={})


def test_the_daemon_alerts_once_when_the_stored_streak_turns_red(
    tmp_path: Path, engine: Engine, now: datetime
) -> None:
    """Two suspicious runs stored before a restart plus one by the new daemon make three:
    the admins hear of it once, and not again while the streak goes on."""
    html = FIXTURES / "html_list"
    with FixtureSite({"/calls": html / "efre_calls_page1.html",
                      "/calls?page=2": html / "efre_calls_page2.html"}) as site:
        settings = daemon_settings(tmp_path, site.url + "/calls")
        store = Store(engine)
        telegram = RecordingTelegram()

        def new_daemon() -> Daemon:
            daemon = Daemon(settings, engine, clock=lambda: now)
            daemon.notifiers = {"telegram": telegram}
            return daemon

        asyncio.run(new_daemon().scrape("efre_at"))
        assert status_of(store, "efre_at").level == "green"
        site.set_route("/calls", html / "efre_calls_titles_moved.html")
        before_restart = new_daemon()
        for _ in range(RED_AFTER - 1):
            asyncio.run(before_restart.scrape("efre_at"))
        assert telegram.sent == [] and status_of(store, "efre_at").level == "amber"
        after_restart = new_daemon()
        asyncio.run(after_restart.scrape("efre_at"))
        assert status_of(store, "efre_at").level == "red"
        asyncio.run(after_restart.scrape("efre_at"))
    assert len(telegram.sent) == 1
    chat, text = telegram.sent[0]
    assert chat == "42"
    assert f"source efre_at failed {RED_AFTER} time(s) in a row" in text
    assert "suspicious:" in text and "lack a title" in text


def test_an_accepted_level_ends_the_fall_and_the_missing_calls_are_removed(
    store: Store, now: datetime
) -> None:
    """A fall that is real (an operator checked the site) would stay suspicious for good;
    accepting the latest count makes the next run at that level ok, with the usual strikes."""
    save(store, now, *forty())
    for hours in (6, 12):
        assert save(store, now + timedelta(hours=hours), make_call("T-00")).outcome \
            is RunOutcome.SUSPICIOUS
    accepted = store.accept_level("ft_portal", now + timedelta(hours=13))
    assert accepted is not None and accepted.outcome is RunOutcome.SUSPICIOUS  # history kept
    assert accepted.items_seen == 1
    first = save(store, now + timedelta(hours=18), make_call("T-00"))
    second = save(store, now + timedelta(hours=24), make_call("T-00"))
    assert (first.outcome, second.outcome) == (RunOutcome.OK, RunOutcome.OK)
    assert removed(first) == []  # the first strike
    assert sorted(removed(second)) == sorted(f"ft_portal:T-{n:02d}" for n in range(1, 40))
    assert [c.record.native_id for c in store.list_calls(listed_only=True)] == ["T-00"]
    assert status_of(store, "ft_portal").level == "green"
    # a later fall is judged against the new level's ok runs, not the old forty
    assert save(store, now + timedelta(hours=30)).outcome is RunOutcome.SUSPICIOUS  # zero items


def test_sources_accept_names_the_level_and_refuses_unknown_sources(
    store: Store, now: datetime, database_url: str, tmp_path: Path
) -> None:
    never = run("--db", database_url, "sources", "--accept", "ft_portal", cwd=tmp_path)
    assert never.returncode == 1 and "ft_portal has never run" in never.stderr
    save(store, now, *forty())
    save(store, now + timedelta(hours=6), make_call("T-00"))
    accepted = run("--db", database_url, "sources", "--accept", "ft_portal", cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    assert "ft_portal: 1 item(s) of its latest run (suspicious) accepted as its level" \
        in accepted.stderr
    assert "level accepted by an operator at" in (store.runs("ft_portal")[0].notes or "")
    unknown = run("--db", database_url, "sources", "--accept", "nowhere", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown source nowhere" in unknown.stderr
