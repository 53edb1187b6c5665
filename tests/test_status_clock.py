"""Statuses follow the clock between scrapes (issue 13 point 2).

Two portal topics the portal kept "forthcoming" after they opened: the real bulk-file row of
EDF-EDIP-P-2026-2027-FNLC-SA-SEAP (opens 2026-09-02; cut-offs 13 Oct 2026, 16 Feb and
28 Sep 2027) and HORIZON-CL4-2027-04-DIGITAL-EMERGING-10 written in the same shape (opens
2026-11-17, deadline 18 Mar 2027); see tests/fixtures/ft_portal/README.md. They are scraped
once through the real scraper's bulk-file fallback from the replay server, with the clock
before their opening dates; then the clock moves with no scrape at all: ``calls list``,
``match`` and the exports show the new status at once, and the cycle (``run --once``, or the
daemon's statuses job) tells the subscriber once, through the fake Telegram Bot API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from scrapers._http import PoliteClient
from scrapers.ft_portal import FtPortalSettings, FtPortalSource
from tracker.cli import cli
from tracker.compose import build_notifiers
from tracker.config import HttpSettings, Settings, load_config
from tracker.demo.fakes.portal import PortalReplayServer
from tracker.demo.fakes.telegram_api import FakeTelegram
from tracker.models import CallStatus, ChangeKind
from tracker.pipeline import close_notifiers, load_audience, scrape_sources
from tracker.service.daemon import Daemon
from tracker.status import status_for
from tracker.store.calls import Store
from tracker.store.db import deliveries_table

FIXTURES = Path(__file__).parent / "fixtures" / "ft_portal"
#: recorded: one object of a real grantsTenders.json sample (see the fixtures README)
EDF_ROW = FIXTURES / "grantsTenders_EDF-EDIP-P-2026-2027-FNLC-SA-SEAP__viabolat_funding_radar.json"
#: written in the real shape of that row, with the topic's published dates
CL4_ROW = FIXTURES / "grantsTenders_HORIZON-CL4-2027-04-DIGITAL-EMERGING-10_written.json"
EDF = "ft_portal:EDF-EDIP-P-2026-2027-FNLC-SA-SEAP"
CL4 = "ft_portal:HORIZON-CL4-2027-04-DIGITAL-EMERGING-10"
EDF_TITLE = "Support for the functioning of SEAPs"
CL4_TITLE = "Horizon scanning and foresight in future digital technologies"
TOKEN = "123456:TEST-TOKEN"

BEFORE_OPENING = datetime(2026, 8, 20, 9, 0, tzinfo=UTC)  # both forthcoming, as flagged
BOTH_OPEN = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # both opened, cut-offs ahead
CL4_CLOSED = datetime(2027, 4, 1, 12, 0, tzinfo=UTC)  # CL4's only cut-off passed, EDF open
BOTH_CLOSED = datetime(2027, 10, 1, 12, 0, tzinfo=UTC)  # EDF's last cut-off passed too

PROFILE = """\
name: defence-and-digital
description: defence-industrial readiness and digital foresight
query: defence OR foresight
programmes: [European Defence Fund, Horizon Europe]
"""
SUBSCRIBER = """\
name: lena
timezone: Europe/Brussels
channels:
  telegram: "2002"
subscriptions:
  - profile: defence-and-digital
    mode: instant
reminders: []
"""


def bulk_file() -> bytes:
    """One grantsTenders.json body holding both rows, as the portal serves them together."""
    items = [item for path in (EDF_ROW, CL4_ROW)
             for item in json.loads(path.read_text("utf-8"))["fundingData"]["GrantTenderObj"]]
    return json.dumps({"fundingData": {"GrantTenderObj": items}}).encode()


@dataclass
class World:
    portal: PortalReplayServer
    telegram: FakeTelegram
    config: Path
    database_url: str
    engine: Engine
    now: datetime = BEFORE_OPENING
    environ: dict[str, str] = field(default_factory=lambda: {"CALLWATCH_TELEGRAM_TOKEN": TOKEN})

    def clock(self) -> datetime:
        return self.now

    def callwatch(self, *args: str) -> Result:
        """The real CLI, in this process, working at ``self.now``."""
        return CliRunner().invoke(
            cli, ["--config", str(self.config), "--db", self.database_url, *args],
            obj=self.clock, env=self.environ, catch_exceptions=False)

    def json(self, *args: str) -> list[dict[str, object]]:
        result = self.callwatch(*args)
        assert result.exit_code == 0, result.output
        value = json.loads(result.stdout)
        assert isinstance(value, list)
        return value

    def settings(self) -> Settings:
        return load_config(self.config, environ={})

    def stop_scraping(self) -> None:
        """From now on no source is scraped: only the clock moves."""
        text = self.config.read_text("utf-8")
        self.config.write_text(text.replace("[sources.ft_portal]\n",
                                            "[sources.ft_portal]\nenabled = false\n"), "utf-8")

    def statuses(self) -> dict[str, str]:
        """What the store holds, not what a read derives."""
        store = Store(self.engine)
        return {c.id: c.record.status.value for c in store.list_calls()}

    def outbox(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(deliveries_table))
                       .scalar_one())

    def sent_since(self, count: int) -> list[str]:
        return [m.text for m in self.telegram.sent[count:]]


@pytest.fixture
def world(tmp_path: Path, database_url: str, engine: Engine) -> Iterator[World]:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "defence-and-digital.yaml").write_text(PROFILE, "utf-8")
    (tmp_path / "subscribers").mkdir()
    (tmp_path / "subscribers" / "lena.yaml").write_text(SUBSCRIBER, "utf-8")
    with PortalReplayServer(results=[], bulk=bulk_file()) as portal, \
            FakeTelegram(TOKEN) as telegram:
        portal.fail_next(10_000, 500)  # the search API is down: the bulk file is read
        disabled = "\n".join(f"[sources.{name}]\nenabled = false\n" for name in
                             ("eccp", "eismea", "hadea", "eit", "cascade_hub"))
        config = tmp_path / "callwatch.toml"
        config.write_text(f"""
[profiles]
directory = "{tmp_path / 'profiles'}"
[subscribers]
directory = "{tmp_path / 'subscribers'}"
[http]
delay = 0
retries = 0
backoff = 0.01
max_backoff = 0.05
[sources.ft_portal]
search_url = "{portal.search_url}"
bulk_url = "{portal.bulk_url}"
programmes = ["European Defence Fund", "Horizon Europe"]
{disabled}
[notifiers.console]
enabled = false
[notifiers.email]
enabled = false
[notifiers.telegram]
base_url = "{telegram.base_url}"
[alerts]
summary_after = 0  # one message per call, first cycle included: the tests count them
""", encoding="utf-8")
        yield World(portal, telegram, config, database_url, engine)


def _cycle(world: World) -> list[str]:
    """One ``run --once`` that succeeds; the texts it sent to Telegram."""
    count = len(world.telegram.sent)
    result = world.callwatch("run", "--once")
    assert result.exit_code == 0, result.output
    return world.sent_since(count)


def test_the_clock_opens_and_closes_calls_without_a_scrape_and_tells_once(world: World) -> None:
    # the one scrape, before the opening dates: both stored as the portal flags them
    first = world.callwatch("run", "--once")
    assert first.exit_code == 1  # the search API was down: a partial run from the bulk file
    assert "scrape ft_portal" in first.output and "partial" in first.output
    assert world.statuses() == {EDF: "forthcoming", CL4: "forthcoming"}
    assert len(world.telegram.sent) == 2  # each a new matching call
    world.stop_scraping()
    searches = len(world.portal.searches)

    # -- past both opening dates: every read shows open before any cycle stores it ----------
    world.now = BOTH_OPEN
    listed = {c["id"]: c["status"] for c in world.json("calls", "list", "--format", "json")}
    assert listed == {EDF: "open", CL4: "open"}
    assert {c["id"] for c in world.json("calls", "list", "--status", "open", "--format",
                                        "json")} == {EDF, CL4}
    assert world.json("calls", "list", "--status", "forthcoming", "--format", "json") == []
    shown = json.loads(world.callwatch("calls", "show", EDF, "--format", "json").stdout)
    assert shown["status"] == "open"
    matched = {m["call_id"]: m["status"] for m in world.json("match", "--all", "--format", "json")}
    assert matched == {EDF: "open", CL4: "open"}
    exported = {c["id"]: c["status"] for c in world.json("export", "json")}
    assert exported == {EDF: "open", CL4: "open"}
    profiled = world.json("export", "json", "--profile", "defence-and-digital")
    assert {c["id"]: c["status"] for c in profiled} == {EDF: "open", CL4: "open"}
    csv_export = world.callwatch("export", "csv").stdout
    assert csv_export.count(",open,") == 2 and "forthcoming" not in csv_export
    calendar = world.callwatch("export", "ical", "--profile", "defence-and-digital").stdout
    assert "Status: open" in calendar and "Status: forthcoming" not in calendar
    atom = world.callwatch("export", "atom", "--profile", "defence-and-digital").stdout
    assert "· open" in atom and "forthcoming" not in atom
    # looking wrote nothing: the store still says forthcoming, nothing was enqueued
    assert world.statuses() == {EDF: "forthcoming", CL4: "forthcoming"}
    outbox = world.outbox()
    assert outbox == 2

    opened = _cycle(world)  # no scrape: the statuses step stores what the clock did
    assert len(opened) == 2  # one alert per call, nothing more
    assert all("• now open" in text for text in opened)
    assert any(EDF_TITLE in text for text in opened) and any(CL4_TITLE in text for text in opened)
    assert world.statuses() == {EDF: "open", CL4: "open"}
    store = Store(world.engine)
    for call_id in (EDF, CL4):
        status_events = [c for c in store.history(call_id) if c.field == "status"]
        assert [(c.kind, c.old, c.new) for c in status_events] == [
            (ChangeKind.OPENED, "forthcoming", "open")]
    world.now += timedelta(hours=1)
    assert _cycle(world) == []  # told once

    # -- CL4's deadline passed; EDF has a cut-off left ---------------------------------------
    world.now = CL4_CLOSED
    assert {c["id"] for c in world.json("calls", "list", "--format", "json")} == {EDF}
    assert [c["status"] for c in world.json("calls", "list", "--status", "closed", "--format",
                                            "json")] == ["closed"]
    assert {c["id"]: c["status"] for c in world.json("export", "json")} == {
        EDF: "open", CL4: "closed"}
    assert [m["call_id"] for m in world.json("match", "--all", "--format", "json")] == [EDF]
    assert world.statuses() == {EDF: "open", CL4: "open"}  # not stored yet
    closed = _cycle(world)
    assert len(closed) == 1 and CL4_TITLE in closed[0] and "• now closed" in closed[0]
    world.now += timedelta(hours=1)
    assert _cycle(world) == []

    # -- EDF's last cut-off passed -------------------------------------------------------------
    world.now = BOTH_CLOSED
    assert world.json("calls", "list", "--format", "json") == []
    assert {c["id"]: c["status"] for c in world.json("export", "json")} == {
        EDF: "closed", CL4: "closed"}
    closed = _cycle(world)
    assert len(closed) == 1 and EDF_TITLE in closed[0] and "• now closed" in closed[0]
    world.now += timedelta(days=1)
    assert _cycle(world) == []
    assert world.statuses() == {EDF: "closed", CL4: "closed"}
    assert len(world.portal.searches) == searches  # no scrape since the first cycle


def test_the_daemon_statuses_job_tells_once(world: World) -> None:
    settings = world.settings()

    async def main() -> None:
        daemon = Daemon(settings, world.engine, clock=world.clock)
        daemon.notifiers = build_notifiers(settings, world.environ)
        try:
            await scrape_sources(settings, Store(world.engine), ["ft_portal"], world.clock)
            await daemon.notify()
            await daemon.deliver()
            assert len(world.telegram.sent) == 2  # the new matches
            world.now = BOTH_OPEN
            await daemon.statuses()
            opened = world.sent_since(2)
            assert len(opened) == 2 and all("• now open" in t for t in opened)
            world.now += timedelta(minutes=5)
            await daemon.statuses()  # the job's next run
            assert len(world.telegram.sent) == 4
            world.now = CL4_CLOSED
            await daemon.statuses()
            closed = world.sent_since(4)
            assert len(closed) == 1 and CL4_TITLE in closed[0]
            await daemon.statuses()
            assert len(world.telegram.sent) == 5
        finally:
            await close_notifiers(daemon.notifiers)

    asyncio.run(main())
    assert Store(world.engine).get_call(CL4).record.status is CallStatus.CLOSED


FAST = HttpSettings(delay=0, backoff=0.01, max_backoff=0.05, retries=0, timeout=5)


def _scrape(world: World, now: datetime) -> object:
    settings = FtPortalSettings(search_url=world.portal.search_url,
                                bulk_url=world.portal.bulk_url,
                                programmes=("European Defence Fund", "Horizon Europe"))

    async def go() -> object:
        async with PoliteClient(FAST) as client:
            return await FtPortalSource("ft_portal", settings, client).scrape(now)

    return asyncio.run(go())


def test_a_scrape_and_the_refresh_step_record_each_move_once(world: World) -> None:
    store = Store(world.engine)
    store.record_run("ft_portal", _scrape(world, BEFORE_OPENING),  # type: ignore[arg-type]
                     started_at=BEFORE_OPENING, now=BEFORE_OPENING)
    # the portal still says forthcoming after the opening date: the scrape itself reads the
    # dates, records the opening once, and the refresh step finds nothing left to do
    report = store.record_run("ft_portal", _scrape(world, BOTH_OPEN),  # type: ignore[arg-type]
                              started_at=BOTH_OPEN, now=BOTH_OPEN)
    assert sorted((c.call_id, c.kind) for c in report.changes) == [
        (EDF, ChangeKind.OPENED), (CL4, ChangeKind.OPENED)]
    assert store.refresh_statuses(BOTH_OPEN) == []
    # the other way round: the refresh step first, then a scrape of the same stale flags
    moved = store.refresh_statuses(CL4_CLOSED)
    assert [(c.call_id, c.kind, c.old, c.new) for c in moved] == [
        (CL4, ChangeKind.CLOSED, "open", "closed")]
    assert store.refresh_statuses(CL4_CLOSED + timedelta(minutes=5)) == []
    again = store.record_run("ft_portal", _scrape(world, CL4_CLOSED),  # type: ignore[arg-type]
                             started_at=CL4_CLOSED, now=CL4_CLOSED)
    assert [c for c in again.changes if c.field == "status"] == []
    kinds = [c.kind for c in store.history(CL4) if c.field == "status"]
    assert kinds == [ChangeKind.OPENED, ChangeKind.CLOSED]
    assert store.get_call(CL4).last_changed == CL4_CLOSED


def test_match_and_calls_list_only_look(world: World) -> None:
    """Reads at a later clock change nothing the next cycle tells (issue 12 point 14)."""
    profiles, subscribers = load_audience(world.settings(), world.engine)
    assert [p.name for p in profiles] == ["defence-and-digital"] and subscribers
    world.callwatch("run", "--once")
    world.stop_scraping()
    world.now = BOTH_OPEN
    for _ in range(2):
        world.json("match", "--format", "json")
        world.json("calls", "list", "--format", "json")
    assert world.statuses() == {EDF: "forthcoming", CL4: "forthcoming"}
    assert len(_cycle(world)) == 2


@pytest.mark.parametrize(("opening", "deadlines", "stated", "expected"), [
    # the dates decide wherever they are known, whatever the source says
    ("2026-09-02", ["2026-10-13", "2027-09-28"], "forthcoming", CallStatus.OPEN),
    ("2026-12-01", ["2027-03-18"], "open", CallStatus.FORTHCOMING),
    ("2026-09-02", ["2026-10-13"], "open", CallStatus.CLOSED),
    (None, ["2026-10-13"], "forthcoming", CallStatus.CLOSED),
    ("2026-09-02", ["2027-09-28"], "closed", CallStatus.OPEN),
    # an opening date that has passed, no cut-off known: open unless the source says closed
    ("2026-09-02", [], "forthcoming", CallStatus.OPEN),
    ("2026-09-02", [], "closed", CallStatus.CLOSED),
    # no opening date: the source's word while a cut-off is ahead; open when it says nothing
    (None, ["2027-03-18"], "forthcoming", CallStatus.FORTHCOMING),
    (None, ["2027-03-18"], None, CallStatus.OPEN),
    (None, [], "Closed", CallStatus.CLOSED),
    (None, [], None, CallStatus.OPEN),
])
def test_one_rule_for_the_status(opening: str | None, deadlines: list[str], stated: str | None,
                                 expected: CallStatus) -> None:
    def at(day: str) -> datetime:
        return datetime.fromisoformat(day).replace(hour=15, tzinfo=UTC)

    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    status = status_for(at(opening) if opening else None, [at(d) for d in deadlines], now, stated)
    assert status is expected
