"""The server-drawn SVG charts, pure: bars stacked to scale, at most six colours, the words."""

from __future__ import annotations

from datetime import date

import pytest

from tracker.web.charts import BOTTOM, HEIGHT, MAX_SERIES, TOP, per_week, stacked_bars, week_start


def test_bars_stack_to_scale_and_the_description_says_the_totals() -> None:
    chart = stacked_bars("Deliveries per day", "deliveries", ["1 Dec", "2 Dec", "3 Dec"],
                         [("Sent", [2, 0, 6]), ("Dead letters", [1, 0, 0])])
    assert chart.totals == (3, 0, 6)
    assert chart.description == ("9 deliveries in 3 bars, from 1 Dec to 3 Dec; the most, 6, "
                                 "in 3 Dec.")
    assert [tick for _y, tick in chart.ticks] == [0, 2, 4, 6]
    plot = HEIGHT - BOTTOM - TOP
    tallest = [bar for bar in chart.bars if bar.label == "3 Dec"]
    assert [(bar.series, bar.value, bar.height) for bar in tallest] == [(0, 6, plot)]
    first = [bar for bar in chart.bars if bar.label == "1 Dec"]
    assert [bar.height for bar in first] == [round(2 * plot / 6, 2), round(plot / 6, 2)]
    assert first[1].y + first[1].height == pytest.approx(first[0].y, abs=0.02)  # stacked
    assert not [bar for bar in chart.bars if bar.label == "2 Dec"]  # nothing to draw


def test_small_series_are_summed_as_other_and_an_empty_chart_says_so() -> None:
    series = [(f"P{n}", [n, 1]) for n in range(MAX_SERIES + 3)]
    chart = stacked_bars("Calls", "calls", ["Jan", "Feb"], series)
    names = [name for name, _values in chart.series]
    assert len(names) == MAX_SERIES and names[-1] == "Other"
    assert names[0] == f"P{MAX_SERIES + 2}"  # the biggest first
    assert chart.totals == (sum(range(MAX_SERIES + 3)), MAX_SERIES + 3)  # nothing lost
    assert stacked_bars("Calls", "calls", [], []).description == "No calls yet."


def test_deadlines_are_counted_per_week_from_monday_and_outside_days_left_out() -> None:
    assert week_start(date(2026, 11, 25)) == date(2026, 11, 23)  # a Wednesday
    assert week_start(date(2026, 11, 23)) == date(2026, 11, 23)
    mondays, series = per_week([("h2", date(2026, 11, 29)),   # Sunday: still the first week
                                ("h2", date(2026, 11, 30)),   # Monday: the second
                                ("agri", date(2026, 12, 13)),
                                ("agri", date(2026, 11, 22)),  # before the first Monday
                                ("h2", date(2026, 12, 14))],   # the fourth week: left out
                               date(2026, 11, 23), 3)
    assert mondays == [date(2026, 11, 23), date(2026, 11, 30), date(2026, 12, 7)]
    assert series == [("agri", [0, 0, 1]), ("h2", [1, 1, 0])]
    chart = stacked_bars("Deadlines", "deadlines", ["23 Nov", "30 Nov", "07 Dec"], series,
                         axis="Week of")
    assert chart.axis == "Week of" and chart.totals == (1, 1, 1)
