"""The daemon's schedule, in process: job options, and a failing source that backs off (capped),
never holds up the others, and recovers on its own.

`tests/test_daemon_process.py` runs the whole daemon as a subprocess; this file looks at the
schedule it builds, with a paused scheduler, so nothing runs on its own and no test waits.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.sources_support import EFRE_AT_SELECTORS, FIXTURES
from tracker.config import Settings, load_config
from tracker.demo.fakes._server import Reply
from tracker.demo.fakes.sites import FixtureSite
from tracker.service.daemon import FIRST_RETRY, Daemon
from tracker.source_status import status_of
from tracker.store.calls import Store

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HTML = FIXTURES / "html_list"
SOURCE = """
[sources.{name}]
kind = "html_list"
url = "{url}"
interval = "{interval}"
""" + EFRE_AT_SELECTORS


def settings_for(tmp_path: Path, site: FixtureSite) -> Settings:
    """Two user sources on one site (the packaged ones off): `good`, and `flaky`, which
    fails while its page is missing."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "subscribers").mkdir()
    config = tmp_path / "callwatch.toml"
    config.write_text("""
[http]
delay = 0
retries = 0
[profiles]
directory = "profiles"
[subscribers]
directory = "subscribers"
[notifiers.console]
enabled = false
""" + SOURCE.format(name="good", url=site.url + "/calls", interval="6h")
        + SOURCE.format(name="flaky", url=site.url + "/flaky", interval="20m"),
        encoding="utf-8")
    settings = load_config(config, environ={})
    sources = {name: source if name in ("good", "flaky") else source.model_copy(update={"enabled": False})
               for name, source in settings.sources.items()}
    return settings.model_copy(update={"sources": sources})


def test_every_job_coalesces_runs_once_at_a_time_and_tolerates_minutes_of_misfire(
        tmp_path: Path, engine: Engine) -> None:
    with FixtureSite({}) as site:
        settings = settings_for(tmp_path, site)

    async def jobs() -> dict[str, object]:
        scheduler = Daemon(settings, engine, clock=lambda: NOW)._schedule()
        scheduler.start(paused=True)  # applies the job defaults; runs nothing
        try:
            return {job.id: job for job in scheduler.get_jobs()}
        finally:
            scheduler.shutdown(wait=False)

    found = asyncio.run(jobs())
    assert set(found) == {"scrape:good", "scrape:flaky", "dispatch", "digests", "statuses",
                          "reminders", "heartbeat"}  # disabled sources get no job
    for job in found.values():
        assert job.coalesce is True, job  # type: ignore[attr-defined]
        assert job.max_instances == 1, job  # type: ignore[attr-defined]
        assert job.misfire_grace_time >= 60, job  # type: ignore[attr-defined]  # minutes, not 1 s
    good = found["scrape:good"].trigger  # type: ignore[attr-defined]
    assert good.interval == timedelta(hours=6) and good.jitter == 300  # scheduler.jitter = 5m
    assert found["scrape:flaky"].trigger.jitter == 300  # type: ignore[attr-defined]
    assert found["dispatch"].trigger.interval == timedelta(minutes=1)  # type: ignore[attr-defined]
    # the clock opens and closes calls between scrapes (Store.refresh_statuses)
    assert found["statuses"].trigger.interval == timedelta(minutes=5)  # type: ignore[attr-defined]
    assert found["scrape:good"].next_run_time == NOW  # type: ignore[attr-defined]  # first run at start


def test_a_failing_source_backs_off_capped_never_holds_up_the_others_and_recovers(
        tmp_path: Path, engine: Engine) -> None:
    with FixtureSite({"/calls": HTML / "efre_calls_page1.html",
                      "/calls?page=2": HTML / "efre_calls_page2.html"}) as site:
        settings = settings_for(tmp_path, site)
        store = Store(engine)

        async def main() -> None:
            daemon = Daemon(settings, engine, clock=lambda: NOW)
            daemon.scheduler = scheduler = daemon._schedule()
            scheduler.start(paused=True)

            def next_run(name: str) -> datetime:
                job = scheduler.get_job(f"scrape:{name}")
                assert job is not None
                return job.next_run_time  # type: ignore[no-any-return]

            try:
                waits = []
                for _ in range(4):  # the page is missing: every run fails
                    await daemon.scrape("flaky")
                    waits.append(next_run("flaky") - NOW)
                # sooner than usual at first, doubling, never later than its own interval
                assert waits == [FIRST_RETRY, 2 * FIRST_RETRY, timedelta(minutes=20),
                                 timedelta(minutes=20)]
                assert status_of(store, "flaky").level == "red"

                before = next_run("good")
                await daemon.scrape("good")  # the other source is not held up
                assert status_of(store, "good").level == "green"
                assert next_run("good") == before  # nor rescheduled by the other's failures

                site.set_route("/flaky", HTML / "efre_calls_page1.html")  # the site is back
                await daemon.scrape("flaky")
                assert daemon.failures == {}
                assert status_of(store, "flaky").level == "green"
                # the streak is over: a new failure starts the back-off from the beginning
                site.set_route("/flaky", Reply.text("busy", 503))
                await daemon.scrape("flaky")
                assert next_run("flaky") - NOW == FIRST_RETRY
            finally:
                scheduler.shutdown(wait=False)

        asyncio.run(main())


def test_a_job_that_crashes_is_logged_and_the_schedule_goes_on(
        tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    with FixtureSite({}) as site:
        settings = settings_for(tmp_path, site)
    daemon = Daemon(settings, engine, clock=lambda: NOW)

    async def boom() -> None:
        raise RuntimeError("a bug in one job")

    async def scheduled() -> None:  # what APScheduler awaits
        await daemon._job("scrape:flaky", boom)()

    asyncio.run(scheduled())  # does not raise into the scheduler
    assert daemon.running == set()
    assert "job=scrape:flaky crashed" in caplog.text and "a bug in one job" in caplog.text


def test_freed_memory_goes_back_when_the_last_running_job_ends(
        tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon at rest held its first cycle's high-water mark (186 MiB, issue 15): glibc
    keeps freed pages unless asked. Asked once no job runs, not while another still works."""
    with FixtureSite({}) as site:
        settings = settings_for(tmp_path, site)
    daemon = Daemon(settings, engine, clock=lambda: NOW)
    released: list[tuple[int, bool]] = []  # jobs running, and whether garbage was collected

    def release(*, collect: bool) -> bool:
        released.append((len(daemon.running), collect))
        return True

    monkeypatch.setattr("tracker.service.daemon.release_free_memory", release)
    inner_done = asyncio.Event()

    async def inner() -> None:
        inner_done.set()

    async def outer() -> None:  # runs while `inner` starts and ends
        await asyncio.create_task(daemon._job("dispatch", inner)())
        assert released == []  # `outer` still runs
        await inner_done.wait()

    asyncio.run(daemon._job("scrape:good", outer)())
    assert released == [(0, True)]  # after a scrape: cycles collected first
    asyncio.run(daemon._job("dispatch", inner)())
    assert released == [(0, True), (0, False)]  # every minute's dispatch: no full collection


def test_releasing_free_memory_asks_glibc_on_linux() -> None:
    import platform
    import sys

    from tracker.memory import release_free_memory

    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    assert release_free_memory() is True
