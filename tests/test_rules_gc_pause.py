"""The matcher's pause of the cyclic garbage collector: short, restored, and safe across threads."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.factories import make_call
from tracker.models import CallRecord
from tracker.rules.gc_pause import cycle_collection_paused
from tracker.rules.matcher import match_calls
from tracker.rules.profiles import Profile

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    """Every test starts with the collector on, as a process does, and leaves it on."""
    assert gc.isenabled()
    yield
    gc.enable()


def test_matching_reads_its_calls_with_the_collector_on_and_leaves_it_on() -> None:
    """The calls may come lazily (from a query): that work is not inside the pause."""
    seen: list[bool] = []

    def calls() -> Iterator[CallRecord]:
        for i in range(50):
            seen.append(gc.isenabled())
            yield make_call(f"C{i}", title=f"Renewable hydrogen valley {i}")

    profiles = [Profile.model_validate({"name": f"p{i}", "query": "hydrogen"}) for i in range(20)]
    matches = match_calls(calls(), profiles, NOW)
    assert len(matches) == 50 * 20
    assert seen == [True] * 50
    assert gc.isenabled()


def test_an_exception_inside_the_pause_turns_the_collector_back_on() -> None:
    with pytest.raises(RuntimeError, match="inside the loop"), cycle_collection_paused():
        assert not gc.isenabled()
        raise RuntimeError("inside the loop")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with cycle_collection_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
    with pytest.raises(ValueError, match="boom"), cycle_collection_paused():
        raise ValueError("boom")
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads_end_with_the_last_one() -> None:
    """Thread A enters, then B; A leaves first: B's loop keeps its pause until B leaves."""
    a_inside, b_inside, a_may_leave, a_left, b_may_leave = (threading.Event() for _ in range(5))
    seen: dict[str, bool] = {}

    def first() -> None:
        with cycle_collection_paused():
            a_inside.set()
            a_may_leave.wait(60)
        a_left.set()

    def second() -> None:
        a_inside.wait(60)
        with cycle_collection_paused():
            b_inside.set()
            b_may_leave.wait(60)
            seen["b, after A left"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    assert b_inside.wait(60)  # a bound so a broken pause fails instead of hanging
    a_may_leave.set()
    assert a_left.wait(60)
    seen["main, after A left"] = gc.isenabled()
    b_may_leave.set()
    for thread in threads:
        thread.join()
    assert seen == {"main, after A left": False, "b, after A left": False}
    assert gc.isenabled()
