"""Any HTML list of calls, described by CSS selectors in config: kind ``html_list``.

Manifest
- URL: whatever ``url`` says, e.g. a regional managing authority's calls page
  (https://www.efre.gv.at/calls, https://europe-en-hautsdefrance.eu/appels-a-projets).
- Returns: one record per element matching ``item``: its title (``title``), link
  (``link``, absolute), deadline (``deadline``, read with ``date_format`` or in
  ``language``), optional summary, and the programme, country and region the config gives.
  Pages are followed through ``next_page`` up to ``max_pages``.
- Changes: as the site publishes; default interval 6h.
- Quirks: sites differ, so everything is in the selectors (other_sources.md §3 lists
  working ones for ten regional sites). A first page on which ``item`` matches nothing
  fails the run as a changed layout, unless ``allow_empty`` says an empty list is normal.
  A bot-challenge page fails the run with that reason.
- Fixtures: tests/fixtures/html_list/: efre.gv.at-style pages written in the real shape,
  and the real dotaceeu.cz call list (tests/test_recorded_pages.py), whose "16. 7. 2026 -
  17. 12. 2026" window is why a window gives the opening date and the deadline.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from scrapers._dates import (
    LanguageCode,
    ZoneName,
    names_relative_day,
    parse_date,
    parse_with_format,
    zone_named,
)
from scrapers._pages import fetch_page, soup_of
from scrapers._records import PlacedSettings, RecordBatch, configured_record, require
from scrapers._source import HttpSource, ListPage, Pager, items_of, link_of, must_compile
from tracker.config import WebUrl
from tracker.models import CallRecord
from tracker.plaintext import html_to_text, one_line
from tracker.ports import Progress, SourcePlugin

if TYPE_CHECKING:  # BeautifulSoup loads where a page is parsed
    from bs4 import Tag


def _selector(value: str | None) -> str | None:
    if value:
        import soupsieve  # with BeautifulSoup: only when an html_list source sets a selector

        must_compile(value, soupsieve.compile, soupsieve.SelectorSyntaxError, "a CSS selector")
    return value or None


class HtmlListSettings(PlacedSettings):
    """Settings of one ``kind = "html_list"`` instance."""

    url: WebUrl = Field(description="the first page of the list")
    item: str = Field(description="CSS selector of one call in the list")
    title: str = Field("a", description="CSS selector of the title inside an item")
    link: str = Field("a[href]", description="CSS selector of the link inside an item (its href)")
    deadline: str | None = Field(None, description="CSS selector of the deadline inside an item")
    summary: str | None = Field(None, description="CSS selector of a short description")
    next_page: str | None = Field(None, description="CSS selector of the next-page link")
    date_format: str | None = Field(None, description="strptime format of the deadline, e.g. %d.%m.%Y")
    language: LanguageCode = Field(None, description="language of the dates when no format is set")
    timezone: ZoneName = Field("Europe/Brussels", description="zone of dates written without one")
    max_pages: int = Field(10, ge=1, le=100, description="pages to follow at most")
    allow_empty: bool = Field(False, description="an empty list is normal, not a changed layout")

    _check_selectors = field_validator("item", "title", "link", "deadline", "summary",
                                       "next_page")(_selector)

    @field_validator("region")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.strip().upper() if value else None


@dataclass(frozen=True)
class ListItem:
    """One call as the list shows it."""

    title: str
    link: str | None
    deadline_text: str | None
    summary: str


def _text(node: Tag | None) -> str:
    return one_line(node.get_text(" ")) if node is not None else ""


def parse_list(markup: str, *, url: str, settings: HtmlListSettings,
               first: bool = True) -> ListPage[ListItem]:
    """The items and next page of one list page; LayoutChanged when a first page has no item."""
    soup = soup_of(markup)
    nodes = items_of(soup, settings.item, required=first and not settings.allow_empty,
                       missing=f"no element matches the item selector {settings.item!r} at {url}")
    items = []
    for node in nodes:
        title_node = node.select_one(settings.title)
        link_node = node.select_one(settings.link)
        deadline_node = node.select_one(settings.deadline) if settings.deadline else None
        summary_node = node.select_one(settings.summary) if settings.summary else None
        items.append(ListItem(
            title=_text(title_node),
            link=link_of(link_node, url),
            deadline_text=_text(deadline_node) or None,
            summary=html_to_text(str(summary_node)) if summary_node is not None else "",
        ))
    next_url = None
    if settings.next_page:
        next_url = link_of(soup.select_one(settings.next_page), url)
    return ListPage(items, next_url)


#: Between the two ends of a call's window: "16. 7. 2026 - 17. 12. 2026", "1.2.2027 až
#: 30.4.2027", "du 3 mars 2027 au 30 avril 2027". Only a dash or a word with spaces around it, so
#: an ISO date's hyphens never split it.
_WINDOW_SEPARATOR = re.compile(r"\s+(?:[-–—]|až|do|to|until|bis|au|al)\s+", re.IGNORECASE)


def window(text: str, *, zone: ZoneInfo, language: str | None) -> tuple[datetime, datetime] | None:
    """The opening and the deadline of a text that gives the call's window (two dates, the
    end not before the start), else None. Managing authorities list calls this way
    (dotaceeu.cz: "Termín pro podání žádosti: 16. 7. 2026 - 17. 12. 2026"); read as one
    date, the text gives its first date, the opening, so an open call looked closed."""
    parts = _WINDOW_SEPARATOR.split(text)
    if len(parts) < 2:
        return None
    start = parse_date(parts[0], zone=zone, language=language, end_of_day=False)
    end = parse_date(parts[-1], zone=zone, language=language)
    if start is None or end is None or end < start:
        return None
    return start, end


def record_from_item(item: ListItem, *, source: str, settings: HtmlListSettings, now: datetime
                     ) -> CallRecord:
    """One list item as a call; a deadline that does not parse makes the item invalid, one
    that names a day only relative to today ("morgen", "tomorrow") leaves it unknown, and a
    window ("16. 7. 2026 - 17. 12. 2026") gives the opening date and the deadline."""
    native_id = item.link or hashlib.sha256(item.title.encode()).hexdigest()[:16]
    zone = zone_named(settings.timezone)
    deadlines: tuple[datetime, ...] = ()
    opening: datetime | None = None
    if item.deadline_text:
        if settings.date_format:
            deadline = parse_with_format(item.deadline_text, settings.date_format, zone=zone)
        elif (both := window(item.deadline_text, zone=zone, language=settings.language)):
            opening, deadline = both
        else:
            deadline = parse_date(item.deadline_text, zone=zone, language=settings.language)
        if deadline is None and not names_relative_day(item.deadline_text, language=settings.language):
            raise ValueError(f"{native_id}: unparseable deadline {item.deadline_text!r}")
        deadlines = (deadline,) if deadline else ()
    return configured_record(settings, source=source, native_id=native_id,
                             title=require(item.title, "title", native_id), summary=item.summary,
                             url=item.link, opening=opening, deadlines=deadlines, now=now)


class HtmlListSource(HttpSource[HtmlListSettings]):
    """One configured list page."""

    @property
    def expected_fields(self) -> tuple[str, ...]:
        """What drift detection expects of every item: a deadline only if one is configured."""
        return ("title", "url", "deadline") if self.settings.deadline else ("title", "url")

    async def read(self, batch: RecordBatch, now: datetime, progress: Progress | None) -> None:
        pager = Pager(self.settings.url, self.settings.max_pages, progress)
        for url in pager:
            page = parse_list(await fetch_page(self.http, url), url=url, settings=self.settings,
                              first=pager.first)
            if not page.items and not pager.first:
                break
            for item in page.items:  # a failure on a later page keeps this one's calls
                batch.add(item.link or item.title, functools.partial(
                    record_from_item, item, source=self.name, settings=self.settings, now=now))
            pager.follow(page.next_url)


PLUGIN = SourcePlugin(kind="html_list", settings=HtmlListSettings, create=HtmlListSource, description=(
    "any HTML list of calls, described by CSS selectors in config"))
