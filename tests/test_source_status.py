"""A source's status from its run log (pure), and read from a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import make_call, make_runs
from tracker.models import RunOutcome, ScrapeResult
from tracker.source_status import WINDOW, Level, read_statuses, source_status
from tracker.store.calls import Store

OK, PARTIAL, FAILED, SUSPICIOUS = (RunOutcome.OK, RunOutcome.PARTIAL, RunOutcome.FAILED,
                                   RunOutcome.SUSPICIOUS)


@pytest.mark.parametrize(("outcomes", "level", "failures", "bad"), [
    ([], Level.UNKNOWN, 0, 0),
    ([OK, FAILED], Level.GREEN, 0, 0),
    ([FAILED, OK], Level.AMBER, 1, 1),
    ([SUSPICIOUS, FAILED, OK], Level.AMBER, 2, 2),
    ([FAILED, SUSPICIOUS, FAILED, OK], Level.RED, 3, 3),
    ([PARTIAL, FAILED, FAILED, FAILED], Level.AMBER, 4, 0),  # data arrives again
    ([FAILED, PARTIAL, FAILED, FAILED], Level.AMBER, 4, 1),
])
def test_level_and_streaks(outcomes: list[RunOutcome], level: Level, failures: int,
                           bad: int) -> None:
    status = source_status("eit", True, make_runs("eit", outcomes))
    assert (status.level, status.consecutive_failures, status.bad_in_a_row) == (level, failures, bad)
    assert status.red is (level is Level.RED)
    assert status.last_outcome == (outcomes[0] if outcomes else None)


def test_reason_last_run_and_last_success() -> None:
    runs = make_runs("eit", [FAILED, FAILED, OK, OK], error="HTTP 503")
    status = source_status("eit", False, runs)
    assert status.reason == "2 failed or suspicious run(s) in a row: HTTP 503"
    assert status.last_run == runs[0] and status.last_error == "HTTP 503"
    assert status.last_success == runs[2].finished_at  # the newest ok run
    assert status.enabled is False  # shown as it is, whether watched or not


def test_a_success_older_than_the_runs_given() -> None:
    older = datetime(2026, 1, 1, tzinfo=UTC)
    assert source_status("eit", True, make_runs("eit", [FAILED]), older).last_success == older
    assert source_status("eit", True, make_runs("eit", [OK]), older).last_success != older
    assert source_status("eit", True, []).last_success is None


def test_read_from_the_store_in_the_given_order(store: Store, now: datetime) -> None:
    store.record_run("ft_portal", ScrapeResult(records=[make_call()]), started_at=now, now=now)
    later = now + timedelta(hours=1)
    store.record_run("ft_portal", ScrapeResult(complete=False, error="HTTP 503"), started_at=later,
                     now=later)
    eit, ft = read_statuses(store, {"eit": False, "ft_portal": True})
    assert (eit.name, eit.enabled, eit.level, eit.last_run) == ("eit", False, Level.UNKNOWN, None)
    assert (ft.name, ft.level, ft.last_error, ft.last_success) == ("ft_portal", Level.AMBER,
                                                                   "HTTP 503", now)


def test_read_finds_a_success_before_a_long_streak(store: Store, now: datetime) -> None:
    store.record_run("ft_portal", ScrapeResult(records=[make_call()]), started_at=now, now=now)
    for n in range(1, WINDOW + 1):
        at = now + timedelta(hours=n)
        store.record_run("ft_portal", ScrapeResult(complete=False, error="HTTP 503"), started_at=at,
                         now=at)
    [status] = read_statuses(store, {"ft_portal": True})
    assert (status.level, status.bad_in_a_row, status.last_success) == (Level.RED, WINDOW, now)
