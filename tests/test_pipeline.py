"""The cycle as ``callwatch run --once`` composes it from the pipeline's steps.

The daemon's jobs run the same steps (``tracker.pipeline``); these tests hold ``run
--once`` to what the daemon does, with a source on a local fixture site and a fake Telegram
Bot API, never a mock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from notifiers.telegram import TOKEN_ENV
from tests.sources_support import FIXTURES
from tests.test_store_drift import daemon_settings
from tracker.cli import cli
from tracker.demo.fakes.sites import FixtureSite
from tracker.demo.fakes.telegram_api import FakeTelegram
from tracker.models import ScrapeResult
from tracker.source_status import status_of
from tracker.store import db
from tracker.store.calls import Store
from tracker.store.drift import RED_AFTER

TOKEN = "123456:TEST-TOKEN"  # the fake Bot API's token
ADMIN = "42"  # daemon_settings' admin chat


def test_run_once_tells_the_admins_once_when_a_source_turns_red(tmp_path: Path, now: datetime) -> None:
    """Failed runs stored by earlier cron runs plus a suspicious one now make the streak
    that turns the source red: the admins hear of it once, as from the daemon, and not
    again from the next ``run --once`` while the streak goes on."""
    html = FIXTURES / "html_list"
    database = f"sqlite:///{tmp_path / 'callwatch.db'}"
    engine = db.make_engine(database)
    db.upgrade(engine)
    store = Store(engine)
    for hours in range(RED_AFTER - 1, 0, -1):  # the earlier runs, from cron
        at = now - timedelta(hours=hours)
        store.record_run("efre_at", ScrapeResult(complete=False, error="HTTP 503"),
                         started_at=at, now=at)
    assert status_of(store, "efre_at").bad_in_a_row == RED_AFTER - 1
    with FixtureSite({"/calls": html / "efre_calls_titles_moved.html",
                      "/calls?page=2": html / "efre_calls_page2.html"}) as site, \
            FakeTelegram(TOKEN) as bot_api:
        daemon_settings(tmp_path, site.url + "/calls", bot_api.base_url)
        config = tmp_path / "callwatch.toml"

        def run_once() -> Result:
            return CliRunner().invoke(
                cli, ["--config", str(config), "--db", database, "run", "--once"],
                obj=lambda: now, env={TOKEN_ENV: TOKEN}, catch_exceptions=False)

        turned_red = run_once()
        assert turned_red.exit_code == 1, turned_red.output  # a source that is not ok
        assert status_of(store, "efre_at").level == "red"
        assert [m.chat_id for m in bot_api.sent] == [ADMIN]
        text = bot_api.sent[0].text
        assert f"source efre_at failed {RED_AFTER} time(s) in a row" in text
        assert "suspicious:" in text and "lack a title" in text
        still_red = run_once()
        assert still_red.exit_code == 1, still_red.output
        assert status_of(store, "efre_at").bad_in_a_row == RED_AFTER + 1
    assert len(bot_api.sent) == 1
    engine.dispose()
