"""Dates as European sites write them: one parser, timezone-aware, end of day when no time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from scrapers._dates import (
    ABSOLUTE_PARSERS,
    check_language,
    names_relative_day,
    parse_date,
    parse_iso,
    parse_with_format,
    zone_named,
)

END_16_JAN_BRUSSELS = datetime(2025, 1, 16, 22, 59, 59, tzinfo=UTC)  # 23:59:59 CET


@pytest.mark.parametrize(
    "text",
    ["16 January 2025", "16.01.2025", "16/01/2025", "16 janvier 2025", "16. ledna 2025",
     "16 de enero de 2025", "16. Januar 2025", "16 gennaio 2025", "16 stycznia 2025"],
)
def test_a_bare_date_in_any_eu_language_is_the_end_of_that_day(text: str) -> None:
    assert parse_date(text) == END_16_JAN_BRUSSELS


def test_a_written_time_and_zone_are_kept() -> None:
    assert parse_date("16/01/2025 17:00 CET") == datetime(2025, 1, 16, 16, 0, tzinfo=UTC)
    assert parse_date("17 September 2026, 14:00 (CEST)") == datetime(2026, 9, 17, 12, 0, tzinfo=UTC)
    # a time without a zone is the source's zone (summer time in Brussels)
    assert parse_date("5 July 2025, 17:00") == datetime(2025, 7, 5, 15, 0, tzinfo=UTC)


def test_the_source_zone_decides_the_end_of_day() -> None:
    helsinki = parse_date("16.01.2025", zone=ZoneInfo("Europe/Helsinki"))
    assert helsinki == datetime(2025, 1, 16, 21, 59, 59, tzinfo=UTC)


def test_a_date_inside_a_line_is_found() -> None:
    assert parse_date("DEADLINE: 17 September 2026 Details Status Open") == \
        datetime(2026, 9, 17, 21, 59, 59, tzinfo=UTC)
    assert parse_date("Second Cut-off date: October 20, 2026 – 17:00 CET") == \
        datetime(2026, 10, 20, 16, 0, tzinfo=UTC)
    assert parse_date("Uzávěrka: 16. ledna 2025", language="cs") == END_16_JAN_BRUSSELS


@pytest.mark.parametrize("text", ["", "   ", "to be announced", "16 January", "31/02/2025", "Open", None])
def test_what_is_not_a_full_date_gives_none(text: str | None) -> None:
    assert parse_date(text) is None


def test_opening_dates_mean_the_start_of_the_day() -> None:
    assert parse_date("16.01.2025", end_of_day=False) == datetime(2025, 1, 15, 23, 0, tzinfo=UTC)


def test_fixed_formats_and_iso() -> None:
    assert parse_with_format("16.01.2025", "%d.%m.%Y") == END_16_JAN_BRUSSELS
    assert parse_with_format("16.01.2025 12:00", "%d.%m.%Y %H:%M") == datetime(2025, 1, 16, 11, 0, tzinfo=UTC)
    assert parse_with_format("Jan 16", "%d.%m.%Y") is None
    assert parse_iso("2026-09-30T00:00:00Z", midnight_is_date=True) == \
        datetime(2026, 9, 30, 21, 59, 59, tzinfo=UTC)
    assert parse_iso("2026-09-30T00:00:00Z") == datetime(2026, 9, 30, tzinfo=UTC)
    assert parse_iso("2026-10-20 17:00:00") == datetime(2026, 10, 20, 15, 0, tzinfo=UTC)
    assert parse_iso("soon") is None


def test_settings_checks() -> None:
    assert zone_named("Europe/Prague").key == "Europe/Prague"
    with pytest.raises(ValueError, match="unknown time zone"):
        zone_named("Mars/Olympus")
    assert check_language("cs") == "cs"
    with pytest.raises(ValueError, match="unknown date language"):
        check_language("klingon")


#: Days named only relative to the day a page is read, in the languages the sources use.
RELATIVE = [
    ("tomorrow", "en"), ("today", "en"), ("yesterday", "en"), ("in 2 days", "en"),
    ("Deadline: tomorrow", "en"), ("2 days ago", "en"), ("next week", "en"),
    ("demain", "fr"), ("aujourd'hui", "fr"), ("après-demain", "fr"), ("dans 2 jours", "fr"),
    ("morgen", "de"), ("heute", "de"), ("übermorgen", "de"), ("in 2 Tagen", "de"),
    ("Einreichfrist: morgen", "de"),
    ("mañana", "es"), ("hoy", "es"), ("pasado mañana", "es"),
    ("domani", "it"), ("oggi", "it"),
    ("jutro", "pl"), ("dzisiaj", "pl"), ("pojutrze", "pl"),
    ("zítra", "cs"), ("dnes", "cs"), ("pozítří", "cs"), ("za 2 dny", "cs"),
]


@pytest.mark.parametrize(("text", "language"), RELATIVE)
def test_a_relative_day_is_no_deadline_in_any_language(text: str, language: str) -> None:
    """dateparser would read these against today's clock, and a daily scrape would move the
    "deadline" every day; they are refused, with and without the source's language, and
    recognised as relative so the caller keeps the call with its deadline unknown."""
    assert parse_date(text, language=language) is None
    assert parse_date(text) is None
    assert names_relative_day(text, language=language)
    assert names_relative_day(text)  # a source without a language: the EU's languages


@pytest.mark.parametrize("text", ["laufend", "bude upřesněno", "to be announced", "Open", "TBC",
                                  "16 January", "31/02/2025", "", None])
def test_text_that_is_no_date_is_not_a_relative_day(text: str | None) -> None:
    assert not names_relative_day(text)


def test_an_absolute_date_beside_a_relative_word_still_counts() -> None:
    assert parse_date("tomorrow, 16 January 2025") == END_16_JAN_BRUSSELS
    assert parse_date("Date limite : demain, le 16 janvier 2025", language="fr") == END_16_JAN_BRUSSELS


def test_only_the_relative_time_parser_is_left_out() -> None:
    from dateparser_data.settings import default_parsers

    assert [p for p in default_parsers if p != "relative-time"] == ABSOLUTE_PARSERS
