"""The web app's service URLs on loopback: /healthz, /metrics, token-guarded feeds (formerly the
aiohttp health server's, same URLs and answers); web.listen and its deprecated alias; the heartbeat."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import httpx
import icalendar
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from tests.factories import make_call, make_runs
from tracker.config import HEALTH_LISTEN_DEPRECATED, Settings, load_config
from tracker.errors import ConfigError
from tracker.exports import reading
from tracker.health import HealthReport
from tracker.models import RunOutcome, ScrapeResult
from tracker.rules.matcher import Match
from tracker.rules.store import RulesStore
from tracker.source_status import source_status
from tracker.store.calls import Store
from tracker.store.db import deliveries_table, subscribers_table
from tracker.store.db import source_runs_table as runs_table
from tracker.store.heartbeat import (
    STALE_AFTER,
    heartbeat_summary,
    mark_stopped,
    read_heartbeat,
    scheduler_state,
    write_heartbeat,
)
from tracker.web.app import create_app
from tracker.web.security import CONTENT_SECURITY_POLICY
from tracker.web.serve import start_in_loop

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
OK, PARTIAL, FAILED, SUSPICIOUS = (RunOutcome.OK, RunOutcome.PARTIAL, RunOutcome.FAILED,
                                   RunOutcome.SUSPICIOUS)


# -- the health rule (pure) -----------------------------------------------------------------

@pytest.mark.parametrize(("alive", "outcomes", "healthy", "red"), [
    (True, {"a": [OK], "b": []}, True, []),
    (True, {"a": [FAILED, FAILED, OK]}, True, []),
    (True, {"a": [FAILED, SUSPICIOUS, FAILED, OK]}, False, ["a"]),
    (True, {"a": [SUSPICIOUS, SUSPICIOUS, SUSPICIOUS]}, False, ["a"]),
    (True, {"a": [PARTIAL, FAILED, FAILED, FAILED]}, True, []),  # data arrives again
    (False, {"a": [OK]}, False, []),
])
def test_health_report(alive: bool, outcomes: dict[str, list[RunOutcome]], healthy: bool,
                       red: list[str]) -> None:
    report = HealthReport(scheduler_alive=alive, sources=[
        source_status(name, True, make_runs(name, runs)) for name, runs in outcomes.items()])
    assert report.healthy is healthy
    assert report.red_sources == red
    body = report.as_json()
    assert body["status"] == ("ok" if healthy else "unhealthy")
    assert bool(body["reasons"]) is not healthy
    if not alive:
        assert "the scheduler is not running" in body["reasons"]
    for name in red:
        assert body["sources"][name]["state"] == "red"
        assert any(f"source {name} is red" in reason for reason in body["reasons"])


# -- the server: the web app, served in the loop as the daemon serves it -----------------------

@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "h2.yaml").write_text("name: h2\nquery: hydrogen\n", encoding="utf-8")
    config = tmp_path / "callwatch.toml"
    config.write_text('[profiles]\ndirectory = "profiles"\n[web]\nlisten = "127.0.0.1:0"\n')
    return load_config(config, environ={})


def serve(settings: Settings, engine: Engine, alive: Callable[[], bool],
          work: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    """Serve the web app with uvicorn in a fresh loop, as `callwatch run` does (on
    ``web.listen``, or the deprecated ``health.listen``), run ``work`` against it, stop it."""
    async def go() -> Any:
        server = await start_in_loop(settings, engine, alive, lambda: datetime.now(UTC))
        assert server is not None
        try:
            async with httpx.AsyncClient(base_url=server.url) as client:
                return await work(client)
        finally:
            await server.close()
    return asyncio.run(go())


def _fail(store: Store, source: str, times: int, now: datetime = T0) -> None:
    for n in range(times):
        at = now + timedelta(minutes=n)
        store.record_run(source, ScrapeResult(complete=False, error="HTTP 503"), started_at=at,
                         now=at)


def test_healthz_200_when_alive_and_no_source_red(settings: Settings, engine: Engine,
                                                  store: Store) -> None:
    _fail(store, "ft_portal", 2)
    response = serve(settings, engine, lambda: True, lambda c: c.get("/healthz"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["reasons"] == []
    assert body["sources"]["ft_portal"] == {"state": "ok", "failed_in_a_row": 2,
                                            "last_outcome": "failed"}


def test_healthz_503_when_the_scheduler_is_down(settings: Settings, engine: Engine) -> None:
    response = serve(settings, engine, lambda: False, lambda c: c.get("/healthz"))
    assert response.status_code == 503
    assert response.json()["reasons"] == ["the scheduler is not running"]


def test_healthz_503_when_a_source_is_red(settings: Settings, engine: Engine,
                                          store: Store) -> None:
    _fail(store, "ft_portal", 3)
    response = serve(settings, engine, lambda: True, lambda c: c.get("/healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["sources"]["ft_portal"]["state"] == "red"
    assert body["reasons"] == ["source ft_portal is red: 3 failed or suspicious runs in a row"]


def test_healthz_ignores_a_disabled_source(settings: Settings, engine: Engine,
                                           store: Store) -> None:
    assert not settings.sources["interreg"].enabled
    _fail(store, "interreg", 5)
    response = serve(settings, engine, lambda: True, lambda c: c.get("/healthz"))
    assert response.status_code == 200
    assert "interreg" not in response.json()["sources"]


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(family: Any, suffix: str = "", **labels: str) -> float:
    values = [s.value for s in family.samples
              if s.name == family.name + suffix and s.labels == labels]
    assert len(values) == 1, (family.name, labels, family.samples)
    return float(values[0])


def _add_deliveries(engine: Engine, rows: list[tuple[str, str]]) -> None:
    with engine.begin() as connection:
        subscriber = connection.execute(subscribers_table.insert().values(
            name="ana", timezone="Europe/Madrid", language="en", reminders=[], origin="file",
            created_at=T0, updated_at=T0)).inserted_primary_key[0]
        for n, (channel, status) in enumerate(rows):
            connection.execute(deliveries_table.insert().values(
                key=f"k{n}", subscriber_id=subscriber, channel=channel, kind="alert",
                message={}, status=status, attempts=0, parts_sent=0, next_attempt_at=T0,
                created_at=T0))


def test_metrics_come_from_the_database(settings: Settings, engine: Engine,
                                        store: Store) -> None:
    store.record_run("ft_portal", ScrapeResult(records=[make_call("A"), make_call("B")]),
                     started_at=T0, now=T0)
    moved = make_call("A", deadlines=(datetime(2027, 5, 1, 15, 0, tzinfo=UTC),))
    store.record_run("ft_portal", ScrapeResult(records=[moved, make_call("B")]),
                     started_at=T0 + timedelta(hours=1), now=T0 + timedelta(hours=1))
    _fail(store, "ft_portal", 1, T0 + timedelta(hours=2))
    _fail(store, "eccp", 3)
    with engine.begin() as connection:  # drift marked the latest eccp run suspicious
        latest = max(r.id for r in store.runs("eccp"))
        connection.execute(runs_table.update().where(runs_table.c.id == latest)
                           .values(outcome=SUSPICIOUS.value))
    _add_deliveries(engine, [("telegram", "sent"), ("telegram", "sent"), ("email", "pending"),
                             ("email", "dead"), ("telegram", "sending")])
    write_heartbeat(engine, T0, {"dispatch": T0 + timedelta(minutes=1)}, process="test:1")

    response = serve(settings, engine, lambda: True, lambda c: c.get("/metrics"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    metrics = _families(response.text)
    runs = metrics["callwatch_source_runs"]
    assert runs.type == "counter"
    assert _value(runs, "_total", source="ft_portal", outcome="ok") == 2
    assert _value(runs, "_total", source="ft_portal", outcome="failed") == 1
    assert _value(runs, "_total", source="eccp", outcome="suspicious") == 1
    assert _value(metrics["callwatch_source_failures"], "_total", source="eccp") == 3
    assert _value(metrics["callwatch_source_items"], "_total", source="ft_portal") == 4
    changes = metrics["callwatch_call_changes"]
    assert _value(changes, "_total", source="ft_portal", kind="new") == 2
    assert _value(changes, "_total", source="ft_portal", kind="deadline_changed") == 1
    assert _value(metrics["callwatch_source_last_success_timestamp_seconds"],
                  source="ft_portal") == (T0 + timedelta(hours=1)).timestamp()
    assert _value(metrics["callwatch_source_red"], source="eccp") == 1
    assert _value(metrics["callwatch_source_red"], source="ft_portal") == 0
    assert _value(metrics["callwatch_source_failed_in_a_row"], source="eccp") == 3
    deliveries = metrics["callwatch_deliveries"]
    assert _value(deliveries, channel="telegram", status="sent") == 2
    assert _value(deliveries, channel="email", status="dead") == 1
    assert _value(metrics["callwatch_outbox_backlog"]) == 2
    assert _value(metrics["callwatch_dead_letters"]) == 1
    assert _value(metrics["callwatch_calls"], source="ft_portal", status="open") == 2
    assert _value(metrics["callwatch_scheduler_heartbeat_timestamp_seconds"]) == T0.timestamp()


def _match_h2(store: Store, engine: Engine) -> None:
    call = make_call("H2-A")
    store.record_run("ft_portal", ScrapeResult(records=[call]), started_at=T0, now=T0)
    RulesStore(engine).record_matches([Match(
        profile="h2", call_id=call.id, score=1, reasons=('keyword "hydrogen"',), call=call,
        next_deadline=call.deadlines[0])], T0)


def test_feeds_need_the_profiles_token(settings: Settings, engine: Engine, store: Store) -> None:
    _match_h2(store, engine)
    token = reading.feed_token(engine, "h2", T0)
    ghost = reading.feed_token(engine, "ghost", T0)  # a token for a profile that does not exist

    async def work(client: httpx.AsyncClient) -> dict[str, httpx.Response]:
        paths = {
            "no token": "/feeds/h2.ics",
            "wrong token": "/feeds/h2.ics?token=" + token[:-2],
            "other profile's token": "/feeds/h2.atom?token=" + ghost,
            "unknown profile": f"/feeds/ghost.ics?token={ghost}",
            "unknown kind": f"/feeds/h2.rss?token={token}",
            "ics": f"/feeds/h2.ics?token={token}",
            "atom": f"/feeds/h2.atom?token={token}",
        }
        return {name: await client.get(path) for name, path in paths.items()}

    responses = serve(settings, engine, lambda: True, work)
    for name in ("no token", "wrong token", "other profile's token", "unknown profile",
                 "unknown kind"):
        assert responses[name].status_code == 404, name
        assert responses[name].text == "not found\n", name
    ics = responses["ics"]
    assert ics.status_code == 200
    assert ics.headers["content-type"] == "text/calendar; charset=utf-8"
    assert ics.headers["referrer-policy"] == "no-referrer"  # the route's own, kept
    for response in responses.values():  # the web app's security middleware covers the feeds
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    events = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
    assert [str(e["UID"]) for e in events] == ["ft_portal:H2-A/0@callwatch"]
    atom = responses["atom"]
    assert atom.status_code == 200
    assert atom.headers["content-type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(atom.content)
    assert not parsed.bozo
    assert [e.link for e in parsed.entries] == ["https://example.invalid/topic-details/H2-A"]


def test_healthz_and_metrics_carry_the_security_headers(settings: Settings,
                                                         engine: Engine) -> None:
    async def work(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.get("/healthz"), await client.get("/metrics")]

    for response in serve(settings, engine, lambda: True, work):
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["referrer-policy"] == "same-origin"
        assert "server" not in response.headers


def test_the_footer_pages_are_the_member_pages_under_the_middleware(settings: Settings,
                                                                   engine: Engine) -> None:
    """/unsubscribe and /manage are the web app's member pages on the daemon's address too:
    an unknown token is the site's 404 page, with the site's security headers."""
    async def work(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.get("/unsubscribe/nope"), await client.post("/unsubscribe/nope"),
                await client.get("/manage/nope")]

    for response in serve(settings, engine, lambda: True, work):
        assert response.status_code == 404
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-frame-options"] == "DENY"


def test_the_same_server_serves_the_pages(settings: Settings, engine: Engine) -> None:
    """One app: the pages of tracker/web beside the service URLs, on the one address."""
    async def work(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.get("/"), await client.get("/static/callwatch.css")]

    home, css = serve(settings, engine, lambda: True, work)
    assert home.status_code == 200 and "callwatch" in home.text
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_no_server_when_listen_is_empty(engine: Engine) -> None:
    settings = load_config(environ={})
    assert settings.web.listen == "" and settings.health.listen == ""
    assert settings.web_listen() == ("web.listen", "")
    assert asyncio.run(start_in_loop(settings, engine, lambda: True, lambda: T0)) is None


def test_the_server_leaves_the_daemons_signal_handlers_alone(settings: Settings,
                                                             engine: Engine) -> None:
    """uvicorn would take SIGINT and SIGTERM for itself and raise them again when it stops;
    in the daemon's loop the daemon keeps them (its first stop lets the running step end)."""
    signals = (signal.SIGINT, signal.SIGTERM)

    async def go() -> list[dict[int, Any]]:
        handlers = [{n: signal.getsignal(n) for n in signals}]
        server = await start_in_loop(settings, engine, lambda: True, lambda: T0)
        assert server is not None
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/healthz")).status_code == 200
        handlers.append({n: signal.getsignal(n) for n in signals})
        await server.close()
        handlers.append({n: signal.getsignal(n) for n in signals})
        return handlers

    before, serving, after = asyncio.run(go())
    assert serving == before and after == before


def test_a_busy_port_is_a_config_error(tmp_path: Path, engine: Engine) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "c.toml"
        config.write_text(f'[web]\nlisten = "127.0.0.1:{port}"\n')
        settings = load_config(config, environ={})
        with pytest.raises(ConfigError, match=r"web\.listen: cannot listen on 127\.0\.0\.1:"):
            asyncio.run(start_in_loop(settings, engine, lambda: True, lambda: T0))


@pytest.mark.parametrize("key", ["WEB", "HEALTH"])
@pytest.mark.parametrize("listen", ["8080", "localhost", ":8080", "127.0.0.1:http", "h:70000"])
def test_bad_listen_addresses_are_refused(key: str, listen: str) -> None:
    with pytest.raises(ConfigError, match=rf"{key.lower()}\.listen"):
        load_config(environ={f"CALLWATCH_{key}__LISTEN": listen})


def test_listen_accepts_ipv6_in_brackets() -> None:
    settings = load_config(environ={"CALLWATCH_WEB__LISTEN": "[::1]:9000"})
    assert settings.web.address() == ("::1", 9000)
    assert settings.web_listen() == ("web.listen", "[::1]:9000")


# -- health.listen: the deprecated name of web.listen ------------------------------------------

def test_health_listen_still_serves_with_a_warning(tmp_path: Path, engine: Engine,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[health]\nlisten = "127.0.0.1:0"\n')
    settings = load_config(config, environ={})
    assert settings.web_listen() == ("health.listen", "127.0.0.1:0")
    with caplog.at_level(logging.WARNING):
        response = serve(settings, engine, lambda: True, lambda c: c.get("/healthz"))
    assert response.status_code == 200
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
            and r.name == "tracker.web.serve"] == [HEALTH_LISTEN_DEPRECATED]
    assert "rename it to web.listen" in HEALTH_LISTEN_DEPRECATED


def test_health_listen_names_itself_when_its_port_is_busy(tmp_path: Path, engine: Engine) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = load_config(environ={
            "CALLWATCH_HEALTH__LISTEN": f"127.0.0.1:{taken.getsockname()[1]}"})
        with pytest.raises(ConfigError, match=r"^health\.listen: cannot listen"):
            asyncio.run(start_in_loop(settings, engine, lambda: True, lambda: T0))


def test_web_listen_wins_when_both_agree_and_two_addresses_are_refused() -> None:
    same = load_config(environ={"CALLWATCH_HEALTH__LISTEN": "127.0.0.1:8080",
                                "CALLWATCH_WEB__LISTEN": "127.0.0.1:8080"})
    assert same.web_listen() == ("web.listen", "127.0.0.1:8080")
    with pytest.raises(ConfigError, match=r"CALLWATCH_HEALTH__LISTEN: health\.listen: .*remove "
                                          r"health\.listen"):
        load_config(environ={"CALLWATCH_HEALTH__LISTEN": "127.0.0.1:8080",
                             "CALLWATCH_WEB__LISTEN": "127.0.0.1:9090"})


# -- `callwatch web` alone: the heartbeat says whether a scheduler runs ------------------------

def test_healthz_without_a_scheduler_of_its_own_reads_the_heartbeat(engine: Engine) -> None:
    settings = load_config(environ={})
    now = T0 + timedelta(minutes=1)
    app = create_app(settings, engine, lambda: now, secret="s" * 32)

    async def healthz() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/healthz")

    assert asyncio.run(healthz()).json()["scheduler"] == "down"  # no heartbeat yet
    write_heartbeat(engine, T0, {}, process="host:1")
    answer = asyncio.run(healthz())
    assert answer.status_code == 200 and answer.json()["scheduler"] == "alive"
    mark_stopped(engine, now)
    assert asyncio.run(healthz()).status_code == 503


# -- the heartbeat ------------------------------------------------------------------------

def test_heartbeat_round_trip_and_states(engine: Engine) -> None:
    assert read_heartbeat(engine) is None
    assert scheduler_state(None, T0) == "never"
    jobs = {"scrape:ft_portal": T0 + timedelta(hours=6), "dispatch": T0 + timedelta(minutes=1),
            "paused": None}
    write_heartbeat(engine, T0, jobs, process="host:42")
    beat = read_heartbeat(engine)
    assert beat is not None
    assert beat.process == "host:42" and beat.beat_at == T0 and beat.stopped_at is None
    assert {j.id: j.next_run for j in beat.jobs} == jobs
    assert scheduler_state(beat, T0 + STALE_AFTER) == "running"
    assert scheduler_state(beat, T0 + STALE_AFTER + timedelta(seconds=1)) == "stale"
    summary = heartbeat_summary(beat, T0)
    assert [j["id"] for j in summary["next_jobs"]] == ["dispatch", "scrape:ft_portal", "paused"]

    later = T0 + timedelta(minutes=1)
    write_heartbeat(engine, later, {"dispatch": later + timedelta(minutes=1)}, process="host:42")
    beat = read_heartbeat(engine)
    assert beat is not None and beat.beat_at == later and len(beat.jobs) == 1

    mark_stopped(engine, later)
    beat = read_heartbeat(engine)
    assert beat is not None
    assert scheduler_state(beat, later) == "stopped"
    assert heartbeat_summary(beat, later)["next_jobs"] == []
    write_heartbeat(engine, later, {}, process="host:43")  # a new scheduler took over
    assert scheduler_state(read_heartbeat(engine), later) == "running"


def test_the_daemon_refuses_a_busy_port_before_any_scrape(tmp_path: Path, engine: Engine) -> None:
    """A bad web.listen must stop `callwatch run` at once, not after a first scrape."""
    from tracker.service.daemon import Daemon, SchedulerLock

    with socket.socket() as taken, socket.socket() as closed:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port, dead = taken.getsockname()[1], closed.getsockname()[1]
        config = tmp_path / "c.toml"
        config.write_text(f"""
[web]
listen = "127.0.0.1:{port}"
[scheduler]
jitter = "0s"
[http]
retries = 0
[sources.ft_portal]
search_url = "http://127.0.0.1:{dead}/search"
bulk_url = "http://127.0.0.1:{dead}/bulk.json"
""")
        settings = load_config(config, environ={})
        daemon = Daemon(settings, engine)
        daemon.notifiers = {}
        lock = SchedulerLock(engine)
        assert lock.try_acquire()
        with pytest.raises(ConfigError, match=r"web\.listen"):
            asyncio.run(daemon.lead(lock))
    assert Store(engine).runs("ft_portal") == []
    assert SchedulerLock(engine).try_acquire()  # released for a standby


def test_the_daemon_serves_the_web_app_in_its_loop_and_stops_it(engine: Engine) -> None:
    """`callwatch run`'s leader serves the web app on web.listen while the schedule runs,
    its /healthz saying the scheduler lives; a stop closes the port with the rest."""
    from tracker.service.daemon import Daemon, SchedulerLock

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environ = {f"CALLWATCH_SOURCES__{name.upper()}__ENABLED": "false"
               for name in load_config(environ={}).sources}
    settings = load_config(environ={**environ, "CALLWATCH_WEB__LISTEN": f"127.0.0.1:{port}"})
    url = f"http://127.0.0.1:{port}"

    async def go() -> list[httpx.Response]:
        daemon = Daemon(settings, engine)
        daemon.notifiers = {}
        lock = SchedulerLock(engine)
        assert lock.try_acquire()
        lead = asyncio.create_task(daemon.lead(lock))
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(500):
                if daemon.alive():
                    break
                await asyncio.sleep(0.01)
            answers = [await client.get("/healthz"), await client.get("/")]
        daemon._on_signal()  # what the first SIGTERM or Ctrl-C calls
        await asyncio.wait_for(lead, 30)
        return answers

    health, home = asyncio.run(go())
    assert health.status_code == 200, health.text
    assert health.json()["scheduler"] == "alive"
    assert home.status_code == 200 and home.headers["x-frame-options"] == "DENY"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=5)
    assert scheduler_state(read_heartbeat(engine), datetime.now(UTC)) == "stopped"
    assert SchedulerLock(engine).try_acquire()
