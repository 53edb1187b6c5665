"""Which columns a table shows in a given width (`tracker.cli.app.fit_columns`), tested
without a terminal; tests/test_cli_terminal.py runs the commands in one."""

from __future__ import annotations

from tracker.cli.app import Column, fit_columns, measure, plain_lines, table_width

TITLE = ("Next-generation PEM and solid-oxide electrolysers for renewable hydrogen "
         "production at industrial scale")


def sized(header: str, width: int, priority: int = 0, wraps: bool = False,
          short: Column | None = None) -> Column:
    return Column(header, header, priority=priority, wraps=wraps, width=width, short=short)


def test_a_narrow_table_shortens_then_drops_the_least_important_columns() -> None:
    columns = [sized("id", 35), sized("sources", 9, priority=7), sized("status", 11, priority=4),
               sized("deadline", 16, priority=1, short=sized("day", 10)),
               sized("title", 24, wraps=True)]
    assert [c.header for c in fit_columns(columns, 200)] == [
        "id", "sources", "status", "deadline", "title"]
    # 100 columns: the sources go first; the deadline keeps its time
    assert [c.header for c in fit_columns(columns, 100)] == ["id", "status", "deadline", "title"]
    # 80: the status goes too, then the deadline shows its day only
    at_80 = fit_columns(columns, 80)
    assert [c.header for c in at_80] == ["id", "day", "title"]
    assert table_width(at_80) <= 80
    # too narrow for the columns that always stay: they stay, nothing else does
    assert [c.header for c in fit_columns(columns, 30)] == ["id", "title"]


def test_columns_are_measured_by_their_widest_value_and_a_wrapping_one_by_its_minimum() -> None:
    columns = [Column("id", "id"), Column("title", "title", wraps=True, min_width=24),
               Column("short", "note", wraps=True, min_width=24)]
    rows = [{"id": "ft_portal:HORIZON-CL5-2027-D3-01-05", "title": TITLE, "short": "ok"},
            {"id": "x", "title": "two\nlines", "short": ""}]
    assert [c.width for c in measure(columns, rows)] == [35, 24, 4]  # "note" is the widest


def test_plain_lines_are_tab_separated_with_every_column_on_one_line() -> None:
    columns = [Column("id", "id"), Column("title", "title", wraps=True, priority=3)]
    assert plain_lines(columns, [{"id": "a", "title": "one\ttwo\nthree"}]) == [
        "id\ttitle", "a\tone two | three"]
