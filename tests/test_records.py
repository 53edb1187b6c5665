"""Reading one item into a record: any failure costs that item only; scraped numbers that are
not finite are no numbers (scrapers/_records.py, no I/O)."""

from __future__ import annotations

import logging
import math
from decimal import Decimal
from typing import Any

import pytest

from scrapers._records import RecordBatch, amount_eur, count_of, finite_number, read_item
from tests.factories import make_call
from tracker.errors import InvalidRecord
from tracker.models import CallRecord, CallStatus


def overflowing() -> CallRecord:
    return make_call("B", budget_eur=round(float("inf")))


def with_a_bug() -> CallRecord:
    raise KeyError("budgetTopicActionMap")  # a scraper bug, not a data problem


def test_any_failure_on_one_item_costs_only_that_item(caplog: pytest.LogCaptureFixture) -> None:
    """OverflowError (``round(inf)``) and an unexpected exception each make their item
    invalid, logged with its id; the items before and after are kept."""
    batch = RecordBatch("ft_portal")
    with caplog.at_level(logging.WARNING, logger="scrapers._records"):
        batch.add("A", lambda: make_call("A"))
        assert batch.add("B", overflowing) is None
        assert batch.add("C", with_a_bug) is None
        batch.add("D", lambda: make_call("D"))
    result = batch.result()
    assert [r.native_id for r in result.records] == ["A", "D"]
    assert result.invalid == 2
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("invalid item")]
    assert warnings == [
        "invalid item source=ft_portal call=B reason=cannot convert float infinity to integer",
        "invalid item source=ft_portal call=C reason=unexpected KeyError: 'budgetTopicActionMap'",
    ]
    [bug] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "call=C" in bug.getMessage() and bug.exc_info is not None  # the traceback is logged


def test_read_item_names_the_item_whatever_was_raised() -> None:
    def invalid() -> CallRecord:
        raise InvalidRecord("no title")

    def not_a_record() -> CallRecord:
        return CallRecord(source="s", native_id="X", title="t", status=CallStatus.OPEN,
                          expected_grants=-1)

    for build, reason in ((invalid, "no title"),
                          (not_a_record, "Input should be greater than or equal to 0"),
                          (lambda: make_call("X", expected_grants=int(float("nan"))),
                           "cannot convert float NaN to integer")):
        outcome = read_item("s", "X", build)
        assert isinstance(outcome, InvalidRecord)
        assert (outcome.native_id, outcome.reason) == ("X", reason)


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        (9_000_000, 9_000_000.0),
        ("9000000", 9_000_000.0),
        ("1,500,000.50", 1_500_000.5),
        (2.5, 2.5),
        (-3, -3.0),
        (float("inf"), None),
        (float("-inf"), None),
        (float("nan"), None),
        ("1e400", None),  # what a JSON parser makes of 1e400
        ("Infinity", None),
        ("NaN", None),
        (10**400, None),  # an int no float can hold
        (Decimal("1500000.50"), 1500000.5),  # ijson reads the bulk file's fractions so
        (Decimal("1e400"), None),
        (Decimal("NaN"), None),
        (True, None),
        ("", None),
        ("n/a", None),
        (None, None),
        ([1], None),
    ],
)
def test_finite_number(raw: Any, number: float | None) -> None:
    assert finite_number(raw) == number


def test_amounts_and_counts_refuse_what_is_not_finite() -> None:
    assert amount_eur("23000000") == 23_000_000
    assert amount_eur(1_000_000.4) == 1_000_000
    assert amount_eur(12_345_678_901_234_567_890) == 12_345_678_901_234_567_890  # exact
    assert [amount_eur(v) for v in (math.inf, math.nan, "1e400", -5, "", None)] == [None] * 6
    assert count_of(3) == 3 and count_of(3.0) == 3 and count_of("7") == 7
    assert [count_of(v) for v in (math.inf, math.nan, 2.5, -1, "x", None, True)] == [None] * 7
