"""Sources a user adds in a config file only: loaded, scraped through their plugin, stored, listed."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from tests.sources_support import EFRE_AT_SELECTORS, FIXTURES, NOW, fast_http
from tests.test_cli import run
from tracker.config import Settings, load_config
from tracker.demo.fakes.sites import FixtureSite
from tracker.models import CallStatus, RunOutcome, ScrapeResult
from tracker.plugins import source_plugins
from tracker.store import db
from tracker.store.calls import Store
from tracker.store.drift import RED_AFTER

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "sources.example.toml"

CONFIG = """
[sources.cz_op_tak]
kind = "rss"
url = "{base}/cs/ostatni/web/rss?rss=Vyzvy"
programme = "Cohesion Policy"
country = "CZ"
language = "cs"
timezone = "Europe/Prague"

[sources.efre_at]
kind = "html_list"
url = "{base}/calls"
""" + EFRE_AT_SELECTORS + """\
programme = "Cohesion Policy"
region = "AT31"
"""


def scrape_configured(settings: Settings, name: str) -> ScrapeResult:
    configured = settings.sources[name]
    plugin = source_plugins()[configured.kind or name]

    async def go() -> ScrapeResult:
        async with fast_http() as http:
            return await plugin.create(name, configured, http).scrape(NOW)

    return asyncio.run(go())


def test_rss_and_html_list_sources_from_a_config_file_are_scraped_stored_and_listed(
    tmp_path: Path, store: Store
) -> None:
    routes = {
        "/cs/ostatni/web/rss?rss=Vyzvy": FIXTURES / "rss" / "dotaceeu_vyzvy_drupal_debug.xml",
        "/calls": FIXTURES / "html_list" / "efre_calls_page1.html",
        "/calls?page=2": FIXTURES / "html_list" / "efre_calls_page2.html",
    }
    with FixtureSite(routes) as site:
        path = tmp_path / "callwatch.toml"
        path.write_text(CONFIG.format(base=site.url), encoding="utf-8")
        settings = load_config(path, environ={})
        results = {name: scrape_configured(settings, name) for name in ("cz_op_tak", "efre_at")}
    for name, result in results.items():
        assert result.outcome is RunOutcome.OK, name
        report = store.record_run(name, result, started_at=NOW, now=NOW)
        assert report.new == len(result.records) and report.invalid == 1

    listed = store.list_calls(statuses=[CallStatus.OPEN, CallStatus.FORTHCOMING])
    by_id = {c.id: c.record for c in listed}
    assert "cz_op_tak:vyzva-01_26_019" in by_id
    assert "cz_op_tak:vyzva-01_25_002" not in by_id  # its deadline has passed: closed
    assert {c.record.source for c in listed} == {"cz_op_tak", "efre_at"}
    efre = [r for r in by_id.values() if r.source == "efre_at"]
    assert len(efre) == 3 and all(r.regions == ("AT31",) for r in efre)
    assert by_id["cz_op_tak:vyzva-01_26_019"].deadlines == (datetime(2027, 1, 15, 22, 59, 59, tzinfo=UTC),)
    assert [c.id for c in store.list_calls(source="efre_at", search="Cluster")] == [
        "efre_at:" + next(r.native_id for r in efre if r.title.startswith("Cluster"))]


def test_the_shipped_example_config_loads_and_its_sources_work(tmp_path: Path) -> None:
    routes = {
        "/rss": FIXTURES / "rss" / "dotaceeu_vyzvy_drupal_debug.xml",
        "/calls": FIXTURES / "html_list" / "efre_calls_page1.html",
        "/calls?page=2": FIXTURES / "html_list" / "efre_calls_page2.html",
    }
    with FixtureSite(routes) as site:
        environ = {"CALLWATCH_SOURCES__CZ_OP_TAK__URL": site.url + "/rss",
                   "CALLWATCH_SOURCES__EFRE_AT__URL": site.url + "/calls"}
        settings = load_config(EXAMPLE, environ=environ)
        assert settings.sources["cz_op_tak"].kind == "rss"
        assert settings.sources["efre_at"].kind == "html_list"
        rss = scrape_configured(settings, "cz_op_tak")
        html = scrape_configured(settings, "efre_at")
    assert len(rss.records) == 3 and rss.invalid == 1
    assert len(html.records) == 3 and html.invalid == 1


def test_callwatch_scrape_then_calls_list_with_sources_from_a_config_file_only(
    tmp_path: Path, database_url: str
) -> None:
    """The whole path a user takes: config file → `callwatch scrape` → `calls list --format
    json`; then the same call at a second source is listed once, and a page whose titles
    moved is flagged suspicious until `callwatch sources` shows the source red."""
    if database_url.startswith("postgresql"):
        assert run("--db", database_url, "db", "upgrade", cwd=tmp_path).returncode == 0
    html = FIXTURES / "html_list"
    routes = {
        "/cs/ostatni/web/rss?rss=Vyzvy": FIXTURES / "rss" / "dotaceeu_vyzvy_drupal_debug.xml",
        "/calls": html / "efre_calls_page1.html",
        "/calls?page=2": html / "efre_calls_page2.html",
    }
    with FixtureSite(routes) as site:
        config = tmp_path / "callwatch.toml"
        config.write_text("[http]\ndelay = 0\nretries = 0\n" + CONFIG.format(base=site.url),
                          encoding="utf-8")

        def callwatch(*args: str) -> tuple[int, str]:
            done = run("--config", str(config), "--db", database_url, *args, cwd=tmp_path)
            assert "Traceback" not in done.stderr, done.stderr
            return done.returncode, done.stdout

        code, out = callwatch("scrape", "cz_op_tak", "efre_at")
        assert code == 0, out
        assert "cz_op_tak" in out and "efre_at" in out
        code, out = callwatch("calls", "list", "--status", "all", "--format", "json")
        assert code == 0  # every status: whether a call is still open depends on today's date
        listed = json.loads(out)
        assert {c["source"] for c in listed} == {"cz_op_tak", "efre_at"}
        assert "cz_op_tak:vyzva-01_26_019" in {c["id"] for c in listed}
        efre = [c for c in listed if c["source"] == "efre_at"]
        assert len(efre) == 3 and all(c["regions"] == ["AT31"] for c in efre)
        assert all(c["sources"] == [c["source"]] for c in listed)

        # the same call published by a second source: stored twice, listed once
        first = efre[0]
        engine = db.make_engine(database_url)
        mirror = Store(engine).get_call(first["id"]).record.model_copy(
            update={"source": "interreg", "native_id": "mirror-1"})
        Store(engine).record_run("interreg", ScrapeResult(records=[mirror]), started_at=NOW,
                                 now=NOW)
        engine.dispose()
        code, out = callwatch("calls", "list", "--status", "all", "--format", "json")
        again = {c["id"]: c for c in json.loads(out)}
        assert len(again) == len(listed) and "interreg:mirror-1" not in again
        assert sorted(again[first["id"]]["sources"]) == ["efre_at", "interreg"]
        assert sorted(again[first["id"]]["ids"]) == sorted([first["id"], "interreg:mirror-1"])
        code, out = callwatch("calls", "list", "--status", "all", "--format", "plain")
        assert len(out.splitlines()) == 1 + len(listed) and "\tefre_at, interreg\t" in out
        code, out = callwatch("calls", "list", "--status", "all", "--source", "interreg",
                              "--format", "json")
        assert [c["id"] for c in json.loads(out)] == ["interreg:mirror-1"]

        # the site changes: items still match but their titles moved
        site.set_route("/calls", html / "efre_calls_titles_moved.html")
        for attempt in range(1, RED_AFTER + 1):
            code, out = callwatch("scrape", "efre_at")
            assert code == 1 and "suspicious" in out
            if attempt not in (1, RED_AFTER):
                continue
            code, out = callwatch("sources", "--format", "json")
            row = next(r for r in json.loads(out) if r["name"] == "efre_at")
            assert row["outcome"] == "suspicious"
            assert row["health"] == ("red" if attempt == RED_AFTER else "amber")
            assert row["health_reason"].startswith(f"{attempt} failed or suspicious run(s) in a row")
            assert "lack a title" in row["health_reason"]
        rss_row = next(r for r in json.loads(out) if r["name"] == "cz_op_tak")
        assert (rss_row["health"], rss_row["health_reason"]) == ("green", "last run ok")
        code, out = callwatch("calls", "list", "--status", "all", "--source", "efre_at",
                              "--format", "json")
        assert sorted(c["id"] for c in json.loads(out)) == sorted(c["id"] for c in efre)
