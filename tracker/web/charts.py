"""Stacked bar charts drawn on the server as SVG: no JavaScript, no chart library, no CDN.

Pure: labels and series in, a :class:`Chart` with every rectangle's place out; the template
``_chart.html`` draws it. Accessible as the issue asks: the SVG is ``role="img"`` with a
``<title>`` and a ``<desc>`` that says the totals in words, and the same numbers follow in a
table (the fallback a screen reader or a copy-paste uses). Colours come from classes in
``callwatch.css`` (``series-0`` …), never inline styles, which the CSP refuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

WIDTH, HEIGHT = 640, 240
#: room for the axis labels: left (the scale), bottom (the bar labels)
LEFT, BOTTOM, TOP = 40, 40, 10
#: series drawn in their own colour; the rest are summed into "Other"
MAX_SERIES = 6


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int
    value: int
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    labels: tuple[str, ...]
    series: tuple[tuple[str, tuple[int, ...]], ...]
    bars: tuple[Bar, ...]
    ticks: tuple[tuple[float, int], ...]
    #: every n-th label is written under its bar, so 30 days do not overlap
    label_every: int
    #: what one bar is ("Day", "Week", "Month"): the first column of the table fallback
    axis: str = "Day"
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def totals(self) -> tuple[int, ...]:
        return tuple(sum(values[i] for _name, values in self.series) for i in range(len(self.labels)))

    def label_x(self, index: int) -> float:
        return LEFT + (index + 0.5) * (WIDTH - LEFT) / max(1, len(self.labels))


def _top(series: Sequence[tuple[str, Sequence[int]]]) -> list[tuple[str, tuple[int, ...]]]:
    """The biggest ``MAX_SERIES - 1`` series, then the rest summed as "Other"."""
    ranked = sorted(series, key=lambda item: (-sum(item[1]), item[0]))
    if len(ranked) <= MAX_SERIES:
        return [(name, tuple(values)) for name, values in ranked]
    kept, rest = ranked[:MAX_SERIES - 1], ranked[MAX_SERIES - 1:]
    other = tuple(sum(values) for values in zip(*(values for _n, values in rest), strict=True))
    return [*((name, tuple(values)) for name, values in kept), ("Other", other)]


def _step(peak: int) -> int:
    """A round tick step giving at most 5 ticks up to ``peak``."""
    step = 1
    while peak / step > 5:
        for factor in (2, 5, 10):
            if peak / (step * factor) <= 5:
                return step * factor
        step *= 10
    return step


def stacked_bars(title: str, what: str, labels: Sequence[str],
                 series: Sequence[tuple[str, Sequence[int]]], axis: str = "Day") -> Chart:
    """A chart of one bar per label, stacked by series; ``what`` names the unit ("calls"),
    ``axis`` what a bar stands for (the table's first column)."""
    shown = _top(series)
    totals = [sum(values[i] for _n, values in shown) for i in range(len(labels))]
    peak = max(totals, default=0)
    step = _step(peak) if peak else 1
    scale_top = max(step, -(-peak // step) * step)
    plot = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(1, len(labels))
    bars = []
    for index, label in enumerate(labels):
        base = float(HEIGHT - BOTTOM)
        for number, (_name, values) in enumerate(shown):
            if values[index]:
                height = values[index] * plot / scale_top
                base -= height
                bars.append(Bar(x=round(LEFT + index * slot + slot * 0.15, 2), y=round(base, 2),
                                width=round(slot * 0.7, 2), height=round(height, 2),
                                series=number, value=values[index], label=label))
    ticks = tuple((round(HEIGHT - BOTTOM - value * plot / scale_top, 2), value)
                  for value in range(0, scale_top + 1, step))
    busiest = max(range(len(labels)), key=lambda i: totals[i]) if labels else None
    description = (f"{sum(totals)} {what} in {len(labels)} bars, from {labels[0]} to {labels[-1]}"
                   + (f"; the most, {totals[busiest]}, in {labels[busiest]}" if busiest is not None
                      and totals[busiest] else "") + "." if labels else f"No {what} yet.")
    return Chart(title=title, description=description, labels=tuple(labels),
                 series=tuple(shown), bars=tuple(bars), ticks=ticks,
                 label_every=max(1, -(-len(labels) // 8)), axis=axis)


def week_start(day: date) -> date:
    """The Monday of ``day``'s week (ISO weeks, as Europe counts them)."""
    return day - timedelta(days=day.weekday())


def per_week(dated: Iterable[tuple[str, date]], first: date, weeks: int
             ) -> tuple[list[date], list[tuple[str, list[int]]]]:
    """Count ``(series, day)`` pairs into ``weeks`` weeks from the Monday ``first``: the
    weeks' Mondays, and each series' count per week (days outside the weeks left out)."""
    mondays = [first + timedelta(weeks=n) for n in range(weeks)]
    counts: dict[str, list[int]] = {}
    for name, day in dated:
        slot = (day - first).days // 7
        if 0 <= slot < weeks:
            counts.setdefault(name, [0] * weeks)[slot] += 1
    return mondays, sorted(counts.items())
