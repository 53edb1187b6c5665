"""A portal row whose digest is the stored one is not read again, and nothing else changes.

The portal's search API is a POST: no 304 can say that nothing changed, so each search
result is compared with the row its stored call was read from (``row_digest``, kept in
``calls.raw_digest``). A row that is the stored one is not normalized; the store marks the
call seen, and stores again, through the diff, a call whose status time moved. Held here:
the stored calls, the change events and the run report are those a full reading gives, at
the same moment, whether time moved statuses or not (issue 15).
"""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import scrapers.ft_portal as ft_portal
from scrapers.ft_portal import Collector, row_digest
from tracker.config import load_config
from tracker.demo.fakes.portal import RECORDED_SEARCHES, PortalReplayServer, load_results
from tracker.models import RunOutcome, ScrapeResult
from tracker.pipeline import scrape_sources
from tracker.store import db
from tracker.store.calls import RunReport, Store

PORTAL = "https://portal.example/opportunities"
FIRST = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def rows() -> list[dict[str, Any]]:
    return load_results(RECORDED_SEARCHES)


def collect(results: list[dict[str, Any]], now: datetime,
            known: dict[str, str] | None = None) -> ScrapeResult:
    collector = Collector(source="ft_portal", portal_url=PORTAL, now=now, known=known,
                          salt=b"test")
    collector.add(results)
    records, invalid = collector.result()
    return ScrapeResult(records=records, invalid=invalid, digests=collector.digests(),
                        unchanged=collector.unchanged())


def stored_state(engine: Engine, report: RunReport) -> tuple[Any, ...]:
    """Every stored column of every call, the run's events and its counts."""
    with engine.connect() as connection:
        calls = [tuple(row) for row in connection.execute(
            sa.select(db.calls_table).order_by(db.calls_table.c.id))]
    events = sorted((c.call_id, c.kind.value, c.field, json.dumps(c.old), json.dumps(c.new))
                    for c in report.changes)
    return calls, events, (report.outcome, report.items_seen, report.new, report.changed,
                           report.invalid)


def fresh_store(tmp_path: Path, name: str) -> tuple[Engine, Store]:
    engine = db.make_engine(f"sqlite:///{tmp_path / name}.db")
    db.upgrade(engine)
    return engine, Store(engine)


def test_unchanged_rows_are_not_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    first = collect(rows(), FIRST)
    assert first.records and set(first.digests) == {r.native_id for r in first.records}

    def never(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("an unchanged row was read again")

    monkeypatch.setattr(ft_portal, "normalize_result", never)
    second = collect(rows(), FIRST, known=first.digests)
    assert second.records == [] and second.invalid == first.invalid
    assert {k: d for k, (d, _status) in second.unchanged.items()} == first.digests
    assert {k: s for k, (_d, s) in second.unchanged.items()} == {
        r.native_id: r.status for r in first.records}


def test_a_changed_row_or_other_settings_are_read_again() -> None:
    results = rows()
    first = collect(results, FIRST)
    edited = copy.deepcopy(results)
    edited[0]["metadata"]["title"] = ["A new title"]
    second = collect(edited, FIRST, known=first.digests)
    assert [r.title for r in second.records] == ["A new title"]
    assert len(second.unchanged) == len(first.records) - 1
    assert row_digest(results[0], b"one") != row_digest(results[0], b"two")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "123456789012345678901234567890"])
def test_values_orjson_would_write_alike_give_other_digests(value: str) -> None:
    """orjson writes NaN and Infinity as null: the digest must still tell them apart."""
    odd = json.loads(f'{{"metadata": {{"budget": [{value}]}}}}')
    assert row_digest(odd) != row_digest({"metadata": {"budget": [None]}})
    assert row_digest(odd) == row_digest(json.loads(json.dumps(odd)))


@pytest.mark.parametrize("later", [timedelta(0), timedelta(days=40), timedelta(days=220),
                                   timedelta(days=3650)])
def test_the_store_ends_as_after_a_full_reading(tmp_path: Path, later: timedelta) -> None:
    """Later runs move statuses (calls open and close): the unchanged path stores the same
    calls, events and counts as reading every row again, at the same moment."""
    now = FIRST + later
    states = []
    for name, skip in (("full", False), ("skip", True)):
        engine, store = fresh_store(tmp_path, name)
        first = collect(rows(), FIRST)
        store.record_run("ft_portal", first, started_at=FIRST, now=FIRST)
        known = store.raw_digests("ft_portal") if skip else None
        second = collect(rows(), now, known=known)
        assert bool(second.unchanged) is skip
        states.append(stored_state(engine, store.record_run("ft_portal", second,
                                                            started_at=now, now=now)))
    assert states[0] == states[1]
    if later > timedelta(days=200):
        assert any(kind == "closed" for _id, kind, *_rest in states[1][1])  # time moved some


def test_a_call_missing_then_back_and_a_partial_run(tmp_path: Path) -> None:
    """Strikes count the unchanged calls as seen; a partial run of unchanged calls only is
    partial, not failed."""
    _engine, store = fresh_store(tmp_path, "calls")
    results = rows()
    store.record_run("ft_portal", collect(results, FIRST), started_at=FIRST, now=FIRST)
    known = store.raw_digests("ft_portal")
    gone = ft_portal.row_key(results[0])
    others = [r for r in results if ft_portal.row_key(r) != gone]
    report = store.record_run("ft_portal", collect(others, FIRST, known), started_at=FIRST,
                              now=FIRST)
    assert report.outcome is RunOutcome.OK and report.changes == []  # one strike: not yet
    back = store.record_run("ft_portal", collect(results, FIRST, known), started_at=FIRST,
                            now=FIRST)
    assert back.changes == [] and back.items_seen == report.items_seen + 1
    partial = collect(results, FIRST, known).model_copy(update={"complete": False})
    assert partial.outcome is RunOutcome.PARTIAL
    assert all(c.still_listed for c in store.list_calls(statuses=None))


def test_callwatch_scrape_leaves_the_stored_rows_unread(tmp_path: Path, store: Store,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the pipeline: the second scrape of the replayed portal reads no row a call
    was read from (the one invalid row is read again) and reports every call seen, ok."""
    with PortalReplayServer() as server:
        config = tmp_path / "callwatch.toml"
        config.write_text(
            "[http]\ndelay = 0\nbackoff = 0.01\nmax_backoff = 0.05\n\n[sources.ft_portal]\n"
            f'search_url = "{server.search_url}"\nbulk_url = "{server.bulk_url}"\n',
            encoding="utf-8")
        settings = load_config(config, environ={})

        def scrape() -> RunReport:
            [outcome] = asyncio.run(scrape_sources(settings, store, ["ft_portal"],
                                                   clock=lambda: FIRST))
            return outcome.report

        first = scrape()
        read: list[str] = []
        normalize = ft_portal.normalize_result

        def counted(result: Any, **kwargs: Any) -> Any:
            read.append(str(result.get("reference")))
            return normalize(result, **kwargs)

        monkeypatch.setattr(ft_portal, "normalize_result", counted)
        second = scrape()
    assert first.outcome is second.outcome is RunOutcome.OK
    assert second.items_seen == first.items_seen == first.new > 0
    assert (second.new, second.changed, second.changes) == (0, 0, [])
    assert len(read) == second.invalid == 1  # only the row no call could be read from
