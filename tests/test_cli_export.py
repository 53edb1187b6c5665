"""`callwatch export …` and `callwatch status`, run as a user would: the installed script."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import icalendar
import pytest

from tests.factories import make_call
from tracker.models import ScrapeResult
from tracker.rules.matcher import Match
from tracker.rules.store import RulesStore
from tracker.store import db
from tracker.store.calls import Store
from tracker.store.heartbeat import write_heartbeat

CALLWATCH = shutil.which("callwatch") or str(Path(sys.executable).with_name("callwatch"))
NOW = datetime.now(UTC)  # the CLI reads the real clock
DEADLINES = (NOW + timedelta(days=30), NOW + timedelta(days=90))


@pytest.fixture
def workdir(tmp_path: Path, database_url: str) -> Path:
    """Profile h2 matching one of two stored calls."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "h2.yaml").write_text("name: h2\nquery: hydrogen\n", encoding="utf-8")
    (tmp_path / "callwatch.toml").write_text(
        f'[database]\nurl = "{database_url}"\n[profiles]\ndirectory = "profiles"\n'
        '[health]\nlisten = "127.0.0.1:8099"\n')
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    h2 = make_call("H2-A", deadlines=DEADLINES)
    other = make_call("SOIL", title="Soil health", keywords=("soil",))
    Store(engine).record_run("ft_portal", ScrapeResult(records=[h2, other]),
                             started_at=NOW - timedelta(minutes=5), now=NOW - timedelta(minutes=5))
    RulesStore(engine).record_matches([Match(
        profile="h2", call_id=h2.id, score=1, reasons=('keyword "hydrogen" in title',), call=h2,
        next_deadline=DEADLINES[0])], NOW)
    engine.dispose()
    return tmp_path


def cw(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
    return subprocess.run(  # noqa: S603 - our own console script
        [CALLWATCH, "--config", str(workdir / "callwatch.toml"), *args], cwd=workdir,
        env=environment, capture_output=True, text=True, timeout=60, check=False)


def test_export_ical_to_a_file(workdir: Path) -> None:
    target = workdir / "h2.ics"
    result = cw(workdir, "export", "ical", "--profile", "h2", "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    events = icalendar.Calendar.from_ical(target.read_bytes()).walk("VEVENT")
    assert sorted(str(e["UID"]) for e in events) == ["ft_portal:H2-A/0@callwatch",
                                                     "ft_portal:H2-A/1@callwatch"]
    assert not list(workdir.glob("*.partial"))


def test_export_ical_of_an_unknown_profile_fails(workdir: Path) -> None:
    result = cw(workdir, "export", "ical", "--profile", "nope")
    assert result.returncode == 1
    assert "no profile named 'nope'" in result.stderr


def test_export_csv_of_every_call_and_json_of_a_profile(workdir: Path) -> None:
    result = cw(workdir, "export", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["id"] for r in rows} == {"ft_portal:H2-A", "ft_portal:SOIL"}

    result = cw(workdir, "export", "json", "--profile", "h2")
    assert result.returncode == 0, result.stderr
    calls = json.loads(result.stdout)
    assert [c["id"] for c in calls] == ["ft_portal:H2-A"]
    assert calls[0]["reasons"] == ['keyword "hydrogen" in title']


def test_export_atom(workdir: Path) -> None:
    result = cw(workdir, "export", "atom", "--profile", "h2")
    assert result.returncode == 0, result.stderr
    parsed = feedparser.parse(result.stdout)
    assert not parsed.bozo
    assert [e.title for e in parsed.entries] == [make_call("H2-A").title]


def test_export_token_is_stable_until_rotated(workdir: Path) -> None:
    first = cw(workdir, "export", "token", "--profile", "h2")
    assert first.returncode == 0, first.stderr
    token = first.stdout.strip()
    assert len(token) >= 40
    assert f"http://127.0.0.1:8099/feeds/h2.ics?token={token}" in first.stderr
    assert cw(workdir, "export", "token", "--profile", "h2").stdout.strip() == token
    rotated = cw(workdir, "export", "token", "--profile", "h2", "--rotate").stdout.strip()
    assert rotated and rotated != token


def test_status_without_and_with_a_running_scheduler(workdir: Path, database_url: str) -> None:
    result = cw(workdir, "status", "--format", "json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["scheduler"]["state"] == "never"
    assert status["healthy"] is False
    assert status["reasons"] == ["the scheduler is not running"]
    ft = next(s for s in status["sources"] if s["name"] == "ft_portal")
    assert ft["state"] == "green" and ft["outcome"] == "ok" and ft["failed_in_a_row"] == 0
    assert status["last_runs"][0]["source"] == "ft_portal"
    assert status["outbox"] == {"pending": 0, "sending": 0, "sent": 0, "dead_letters": 0}
    table = cw(workdir, "status")
    assert table.returncode == 0, table.stderr
    assert "scheduler: not running" in table.stdout
    assert "outbox: 0 pending" in table.stdout

    engine = db.make_engine(database_url)
    write_heartbeat(engine, datetime.now(UTC), {"scrape:ft_portal": NOW + timedelta(hours=6),
                                                "dispatch": NOW + timedelta(minutes=1)},
                    process="box:4242")
    engine.dispose()
    status = json.loads(cw(workdir, "status", "--format", "json").stdout)
    assert status["scheduler"]["state"] == "running"
    assert [j["id"] for j in status["scheduler"]["next_jobs"]] == ["dispatch", "scrape:ft_portal"]
    assert status["healthy"] is True
    table = cw(workdir, "status").stdout
    assert "scheduler: running (box:4242" in table
    assert "next jobs" in table and "scrape:ft_portal" in table


@pytest.mark.parametrize(("outcomes", "level"), [
    ((False,), "amber"),                      # one failed run: not yet red
    ((False, True), "amber"),                 # then a partial run: data arrives, still amber
])
def test_status_and_sources_report_the_same_level(workdir: Path, database_url: str,
                                                  outcomes: tuple[bool, ...], level: str) -> None:
    """`status` and `sources` read one SourceStatus: after a failed run both say amber (status
    said ok while sources said amber). Green after an ok run: the test above; red: both
    always agreed (tests/test_source_status.py has every level)."""
    engine = db.make_engine(database_url)
    store = Store(engine)
    for n, partial in enumerate(outcomes):
        at = NOW - timedelta(minutes=4 - n)
        result = ScrapeResult(records=[make_call("H2-A", deadlines=DEADLINES)] if partial else [],
                              complete=False, error="page 2: HTTP 503" if partial else "HTTP 503")
        store.record_run("ft_portal", result, started_at=at, now=at)
    engine.dispose()
    status = cw(workdir, "status", "--format", "json")
    sources = cw(workdir, "sources", "--format", "json")
    assert status.returncode == 0 and sources.returncode == 0, status.stderr + sources.stderr
    [by_status] = [s["state"] for s in json.loads(status.stdout)["sources"]
                   if s["name"] == "ft_portal"]
    [by_sources] = [s["health"] for s in json.loads(sources.stdout) if s["name"] == "ft_portal"]
    assert (by_status, by_sources) == (level, level)
    table = cw(workdir, "status").stdout  # piped: tab-separated
    assert ["ft_portal", "yes", level] in [line.split("\t")[:3] for line in table.splitlines()], table
