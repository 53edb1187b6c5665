"""Dates as European sites write them, parsed in one place into timezone-aware UTC deadlines.

Sites write "16 January 2025", "16.01.2025", "16/01/2025 17:00 CET", "16 janvier 2025",
"16. ledna 2025" or "16 de enero de 2025". dateparser already knows these languages, so no
month table is written here. Rules every source shares:

- day first: "03/04/2025" is 3 April, as everywhere in the EU;
- a day, a month and a year are required: "16 January" alone is not a deadline;
- a date without a time means the end of that day in the source's zone
  (``tracker.dates.end_of_day_utc``); an opening date without a time means its start;
- a zone written in the text ("CET", "CEST", "Z") wins over the source's zone;
- only an absolute date is a deadline. "Tomorrow", "today", "in 2 days", "demain", "morgen",
  "mañana", "domani", "jutro" or "zítra" name a different day each time the page is read, so
  a daily scrape would move such a "deadline" every day and tell subscribers so every day.
  dateparser's ``relative-time`` parser is therefore left out, and ``names_relative_day``
  tells such a text apart from garbage: the caller then leaves the deadline unknown and keeps
  the call;
- anything else that does not parse gives ``None``: the caller marks the item invalid.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

from tracker.dates import BRUSSELS, end_of_day_utc, local_to_utc

# dateparser (0.5 s to import) is imported where a date is read, not here: every command that
# loads the configuration loads the source plugins, and so this module.
if TYPE_CHECKING:
    from dateparser.date import DateDataParser

#: A clock time in the text ("17:00", "14:00:00", "12h00"); "16.01.2025" is not one.
_HAS_TIME = re.compile(r"(?<!\d)(?:[01]?\d|2[0-3])\s?(?::|h\s?)[0-5]\d(?!\d)", re.IGNORECASE)

#: Date-looking pieces of a longer text ("Deadline: 16.01.2025 – apply now"), tried in order.
_DATE_PIECES = (
    re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?"),
    re.compile(r"\d{1,2}[./-]\s?\d{1,2}[./-]\s?\d{4}(?:,?\s*(?:at\s+|à\s+|um\s+)?\d{1,2}[:h]\d{2}"
               r"(?:\s*\(?[A-Z]{3,4}\)?)?)?"),
    re.compile(r"\d{1,2}\.?\s+(?:de\s+)?[^\W\d_]{3,}\.?\s+(?:de\s+)?\d{4}(?:,?\s*(?:at\s+|à\s+)?"
               r"\d{1,2}[:h]\d{2}(?:\s*\(?[A-Z]{3,4}\)?)?)?"),
    re.compile(r"[^\W\d_]{3,}\.?\s+\d{1,2},?\s+\d{4}(?:\s*[,–-]?\s*\d{1,2}:\d{2}(?:\s*\(?[A-Z]{3,4}\)?)?)?"),
)


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError (for settings validation) when it does not exist."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}; use an IANA name like Europe/Brussels") from exc


def check_language(code: str) -> str:
    """``code`` if dateparser knows the language (settings validation), else ValueError."""
    from dateparser.languages.loader import default_loader  # dateparser: only when used

    try:
        default_loader.get_locale_map(languages=[code])
    except ValueError as exc:
        raise ValueError(f"unknown date language {code!r}; use a code like en, fr, cs, es") from exc
    return code


#: The EU's official languages: where ``names_relative_day`` looks when a source names none.
EU_LANGUAGES = ("en", "fr", "de", "es", "it", "pl", "cs", "nl", "pt", "ro", "hu", "sk", "sl", "hr",
                "bg", "el", "sv", "da", "fi", "et", "lv", "lt", "ga", "mt")

#: dateparser's parsers (``dateparser_data.settings.default_parsers``) less ``relative-time``,
#: which reads "tomorrow", "today", "in 2 days" and their translations against the clock.
ABSOLUTE_PARSERS = ["timestamp", "custom-formats", "absolute-time"]


@functools.lru_cache(maxsize=64)
def _parser(zone_key: str, languages: tuple[str, ...] | None) -> DateDataParser:
    from dateparser.date import DateDataParser

    return DateDataParser(
        languages=list(languages) if languages else None,
        settings={
            "DATE_ORDER": "DMY",
            "PREFER_DAY_OF_MONTH": "first",
            "RETURN_AS_TIMEZONE_AWARE": True,
            "TIMEZONE": zone_key,
            "REQUIRE_PARTS": ["day", "month", "year"],
            "PARSERS": ABSOLUTE_PARSERS,
        },
    )


def _languages(language: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if not language:
        return None
    wanted = (language,) if isinstance(language, str) else tuple(language)
    # English labels and month names turn up on almost every EU site, whatever its language.
    return tuple(dict.fromkeys((*wanted, "en")))


def _parse_exact(text: str, zone: ZoneInfo, languages: tuple[str, ...] | None,
                 end_of_day: bool) -> datetime | None:
    try:
        found = _parser(zone.key, languages).get_date_data(text).date_obj
    except (ValueError, OverflowError):
        return None
    if found is None:
        return None
    if found.tzinfo is None:  # pragma: no cover - RETURN_AS_TIMEZONE_AWARE always sets one
        found = found.replace(tzinfo=zone)
    if _HAS_TIME.search(text):
        return found.astimezone(UTC)
    day = found.date()
    return end_of_day_utc(day, zone) if end_of_day else local_to_utc(day, time(0, 0), zone)


def parse_date(
    text: str | None,
    *,
    zone: ZoneInfo = BRUSSELS,
    language: str | Sequence[str] | None = None,
    end_of_day: bool = True,
) -> datetime | None:
    """The UTC instant ``text`` names, or None when it names no full date.

    ``text`` may be a bare date or a longer line ("DEADLINE: 17 September 2026 Details"):
    the whole text is tried first, then each date-looking piece of it.
    """
    if not text or not text.strip():
        return None
    cleaned = " ".join(text.replace("\u00a0", " ").split())
    languages = _languages(language)
    if len(cleaned) <= 40:
        whole = _parse_exact(cleaned, zone, languages, end_of_day)
        if whole is not None:
            return whole
    for pattern in _DATE_PIECES:
        for match in pattern.finditer(cleaned):
            found = _parse_exact(match.group(0), zone, languages, end_of_day)
            if found is not None:
                return found
    return None


def names_relative_day(text: str | None, *, language: str | Sequence[str] | None = None) -> bool:
    """Whether ``text`` names a day only relative to the day it is read: "tomorrow",
    "Deadline: today", "in 2 days", "demain", "Einreichfrist: morgen", "zítra".

    ``parse_date`` refuses such a text; a caller asks this to tell it apart from a text that
    is no date at all ("laufend", "to be announced"), which makes an item invalid, whereas a
    relative day only leaves the deadline unknown. dateparser's own ``relative-time`` parser
    finds these words, in the source's language and English or, when the source names none,
    in the EU's official languages; the date it computes is not used. Only a text that
    ``parse_date`` refused is asked. Measured on the 2-core review machine: under 1 ms a
    text with a language, 6-30 ms over the 24 (0.6-0.8 s once per process to load them),
    50-110 ms guessing among all of dateparser's ~200 (2 s to load them).
    """
    from dateparser.search import search_dates

    if not text or not text.strip():
        return False
    languages = _languages(language) or EU_LANGUAGES
    try:
        found = search_dates(" ".join(text.split()), languages=list(languages),
                             settings={"PARSERS": ["relative-time"]})
    except (ValueError, OverflowError):
        return False
    return bool(found)


def parse_with_format(text: str | None, fmt: str, *, zone: ZoneInfo = BRUSSELS) -> datetime | None:
    """``text`` read with a strptime ``fmt`` (a site's fixed format); None when it does not fit.

    Without ``%H`` in the format the date means the end of that day in ``zone``.
    """
    if not text:
        return None
    try:
        parsed = datetime.strptime(" ".join(text.split()), fmt).replace(tzinfo=zone)
    except ValueError:
        return None
    if "%H" in fmt or "%I" in fmt:
        return parsed.astimezone(UTC)
    return end_of_day_utc(parsed.date(), zone)


def parse_iso(value: str | None, *, zone: ZoneInfo = BRUSSELS, midnight_is_date: bool = False,
              end_of_day: bool = True) -> datetime | None:
    """An ISO 8601 timestamp as UTC; None when missing or malformed.

    ``midnight_is_date``: some indexes store a bare date as ``T00:00:00Z`` (interreg.eu
    does); such a value then means that day in ``zone``, at its end (or start).
    """
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    if midnight_is_date and parsed.timetz().replace(tzinfo=None) == time(0, 0) \
            and parsed.utcoffset() == UTC.utcoffset(None):
        day = parsed.date()
        return end_of_day_utc(day, zone) if end_of_day else local_to_utc(day, time(0, 0), zone)
    return parsed.astimezone(UTC)


def _zone_name(value: str) -> str:
    zone_named(value)
    return value


def _language_code(value: str | None) -> str | None:
    return None if value is None else check_language(value)


#: A settings field holding an IANA zone name, checked when the config is loaded.
ZoneName = Annotated[str, AfterValidator(_zone_name)]
#: A settings field holding a date language code (en, fr, cs, es …), checked at load.
LanguageCode = Annotated[str | None, AfterValidator(_language_code)]
