"""Drift detection: zero items after a good run, or most items lacking what a list gives."""

from __future__ import annotations

from tests.factories import make_call
from tracker.models import RunOutcome, ScrapeResult
from tracker.store.drift import (
    FALL_WINDOW,
    RED_AFTER,
    HealthState,
    assess_run,
    consecutive_bad,
    last_good_count,
    outcome,
    sharp_fall,
    source_health,
)


def test_a_normal_run_is_not_suspicious() -> None:
    result = ScrapeResult(records=[make_call(f"T-{i}") for i in range(4)], invalid=1)
    verdict = assess_run(result, last_good_items=5)
    assert not verdict.suspicious and verdict.reasons == ()
    assert outcome(result, verdict) is RunOutcome.OK


def test_zero_items_after_a_good_run_is_suspicious() -> None:
    verdict = assess_run(ScrapeResult(), last_good_items=12)
    assert verdict.suspicious
    assert verdict.describe() == "parsed zero items; the last good run had 12"
    assert outcome(ScrapeResult(), verdict) is RunOutcome.SUSPICIOUS


def test_zero_items_is_fine_for_a_new_or_always_empty_source() -> None:
    assert not assess_run(ScrapeResult(), last_good_items=None).suspicious
    assert not assess_run(ScrapeResult(), last_good_items=0).suspicious


def test_most_items_without_deadline_or_link_is_suspicious() -> None:
    records = [make_call(f"T-{i}", deadlines=(), url=None) for i in range(3)] + [make_call("T-9")]
    verdict = assess_run(ScrapeResult(records=records), last_good_items=4)
    assert verdict.suspicious
    assert verdict.reasons == ("3 of 4 items lack a url", "3 of 4 items lack a deadline")


def test_exactly_half_lacking_is_not_yet_suspicious() -> None:
    records = [make_call("A", deadlines=()), make_call("B")]
    assert not assess_run(ScrapeResult(records=records), 2).suspicious


def test_skipped_items_count_as_lacking() -> None:
    result = ScrapeResult(records=[make_call("A")], invalid=2)
    verdict = assess_run(result, last_good_items=3)
    assert verdict.suspicious and "2 of 3 items lack a title" in verdict.reasons


def test_a_feed_without_deadlines_is_judged_without_them() -> None:
    records = [make_call(f"N-{i}", deadlines=()) for i in range(5)]
    result = ScrapeResult(records=records)
    assert assess_run(result, 5).suspicious
    assert not assess_run(result, 5, expected_fields=("title", "url")).suspicious


def test_a_failed_run_stays_failed() -> None:
    result = ScrapeResult(complete=False, error="HTTP 503")
    verdict = assess_run(result, last_good_items=10)
    assert not verdict.suspicious
    assert outcome(result, verdict) is RunOutcome.FAILED


def test_health_turns_red_after_three_bad_runs_in_a_row() -> None:
    bad, ok = RunOutcome.SUSPICIOUS, RunOutcome.OK
    assert RED_AFTER == 3
    assert consecutive_bad([bad, RunOutcome.FAILED, ok, bad]) == 2
    assert source_health([bad, RunOutcome.FAILED, ok]).state == "amber"
    assert source_health([bad, RunOutcome.FAILED, bad, ok]).state == "red"
    assert source_health([RunOutcome.PARTIAL, bad, bad, bad]).state == "amber"


def test_last_good_count_skips_bad_runs() -> None:
    runs = [(RunOutcome.SUSPICIOUS, 0), (RunOutcome.FAILED, 0), (RunOutcome.PARTIAL, 7), (RunOutcome.OK, 9)]
    assert last_good_count(runs) == 7
    assert last_good_count([(RunOutcome.FAILED, 0)]) is None


def test_source_health_names_the_state_and_why() -> None:
    """`callwatch sources` shows one word and a reason; partial data is amber, never red."""
    bad, ok = RunOutcome.SUSPICIOUS, RunOutcome.OK
    assert source_health([]) == HealthState("unknown", "never run")
    assert source_health([ok, bad]) == HealthState("green", "last run ok")
    assert source_health([RunOutcome.PARTIAL, bad, bad, bad], "page 3 failed") == \
        HealthState("amber", "last run partial: page 3 failed")
    amber = source_health([bad, RunOutcome.FAILED, ok], "suspicious: parsed zero items")
    assert amber == HealthState("amber", "2 failed or suspicious run(s) in a row: "
                                         "suspicious: parsed zero items")
    red = source_health([bad, RunOutcome.FAILED, bad, ok], "HTTP 503")
    assert red.state == "red" and red.reason.startswith("3 failed or suspicious run(s) in a row")
    assert source_health([bad, bad], red_after=2).state == "red"



def calls(n: int) -> ScrapeResult:
    return ScrapeResult(records=[make_call(f"T-{i}") for i in range(n)])


def test_a_sharp_fall_against_the_recent_ok_runs_is_suspicious() -> None:
    """40 calls falling to 1 is a broken page far more often than 39 withdrawn calls."""
    verdict = assess_run(calls(1), last_good_items=40, recent_ok_calls=[40, 40, 39, 41, 40])
    assert verdict.suspicious
    assert verdict.reasons == ("fell to 1 calls from 40, the median of the last 5 ok run(s)",)
    assert outcome(calls(1), verdict) is RunOutcome.SUSPICIOUS


def test_an_ordinary_fall_is_not_suspicious() -> None:
    assert not assess_run(calls(35), 40, recent_ok_calls=[40]).suspicious
    assert not assess_run(calls(20), 40, recent_ok_calls=[40]).suspicious  # exactly half
    assert assess_run(calls(19), 40, recent_ok_calls=[40]).suspicious
    assert not assess_run(calls(1), 40).suspicious  # no ok run known: nothing to fall from


def test_a_tiny_source_falling_to_one_is_an_ordinary_change() -> None:
    """2 or 3 calls falling to 1 loses fewer than FALL_MIN_LOST (5): judged normally;
    a fall to zero is still suspicious by the zero rule."""
    assert not assess_run(calls(1), 3, recent_ok_calls=[3, 2, 3]).suspicious
    assert sharp_fall(1, [2, 2]) is None
    assert assess_run(ScrapeResult(), 3, recent_ok_calls=[3]).suspicious
    assert sharp_fall(3, [8, 8]) == "fell to 3 calls from 8, the median of the last 2 ok run(s)"


def test_the_median_of_the_window_resists_one_odd_run() -> None:
    """One odd ok run neither drags the baseline down nor hides a fall; runs past the
    window do not count."""
    assert sharp_fall(15, [12, 40, 40, 40, 40]) is not None
    assert sharp_fall(15, [40, 12, 12, 12, 12]) is None  # the source really shrank to 12
    assert sharp_fall(15, [40] * FALL_WINDOW + [1000] * 10) is not None
    assert sharp_fall(15, [30, 30, 30, 30, 30, 1000]) is None


def test_only_a_complete_run_is_judged_for_a_fall() -> None:
    """A partial run marks nothing removed anyway: it stays partial, not suspicious."""
    partial = ScrapeResult(records=[make_call("T-0")], complete=False, error="page 2 failed")
    verdict = assess_run(partial, 40, recent_ok_calls=[40])
    assert not verdict.suspicious and outcome(partial, verdict) is RunOutcome.PARTIAL
