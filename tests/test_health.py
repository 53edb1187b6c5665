"""The health server on loopback: /healthz, /metrics, token-guarded feeds; the heartbeat."""

from __future__ import annotations

import asyncio
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
from tracker.config import Settings, load_config
from tracker.errors import ConfigError
from tracker.exports import reading
from tracker.models import RunOutcome, ScrapeResult
from tracker.rules.matcher import Match
from tracker.rules.store import RulesStore
from tracker.service.health import HealthReport, HealthServer, start_health_server
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


# -- the server ---------------------------------------------------------------------------

@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "h2.yaml").write_text("name: h2\nquery: hydrogen\n", encoding="utf-8")
    config = tmp_path / "callwatch.toml"
    config.write_text('[profiles]\ndirectory = "profiles"\n[health]\nlisten = "127.0.0.1:0"\n')
    return load_config(config, environ={})


def serve(settings: Settings, engine: Engine, alive: Callable[[], bool],
          work: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    """Start the server in a fresh loop, run ``work`` against it, close it."""
    async def go() -> Any:
        server = await start_health_server(settings, engine, alive)
        try:
            assert server.url is not None
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
    assert ics.headers["referrer-policy"] == "no-referrer"
    events = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
    assert [str(e["UID"]) for e in events] == ["ft_portal:H2-A/0@callwatch"]
    atom = responses["atom"]
    assert atom.status_code == 200
    assert atom.headers["content-type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(atom.content)
    assert not parsed.bozo
    assert [e.link for e in parsed.entries] == ["https://example.invalid/topic-details/H2-A"]


def test_no_server_when_listen_is_empty(engine: Engine) -> None:
    settings = load_config(environ={})
    assert settings.health.listen == ""

    async def go() -> HealthServer:
        server = await start_health_server(settings, engine, lambda: True)
        await server.close()
        return server
    assert asyncio.run(go()).url is None


def test_a_busy_port_is_a_config_error(tmp_path: Path, engine: Engine) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "c.toml"
        config.write_text(f'[health]\nlisten = "127.0.0.1:{port}"\n')
        settings = load_config(config, environ={})
        with pytest.raises(ConfigError, match=r"health\.listen: cannot listen on 127\.0\.0\.1:"):
            asyncio.run(start_health_server(settings, engine, lambda: True))


@pytest.mark.parametrize("listen", ["8080", "localhost", ":8080", "127.0.0.1:http", "h:70000"])
def test_bad_listen_addresses_are_refused(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"health\.listen"):
        load_config(environ={"CALLWATCH_HEALTH__LISTEN": listen})


def test_listen_accepts_ipv6_in_brackets() -> None:
    settings = load_config(environ={"CALLWATCH_HEALTH__LISTEN": "[::1]:9000"})
    assert settings.health.address() == ("::1", 9000)


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
    """A bad health.listen must stop `callwatch run` at once, not after a first scrape."""
    from tracker.service.daemon import Daemon, SchedulerLock

    with socket.socket() as taken, socket.socket() as closed:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port, dead = taken.getsockname()[1], closed.getsockname()[1]
        config = tmp_path / "c.toml"
        config.write_text(f"""
[health]
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
        with pytest.raises(ConfigError, match=r"health\.listen"):
            asyncio.run(daemon.lead(lock))
    assert Store(engine).runs("ft_portal") == []
    assert SchedulerLock(engine).try_acquire()  # released for a standby
