"""EIT Opportunities: the open calls of every EIT community (KIC) on one Drupal views page.

Manifest
- URL: https://www.eit.europa.eu/our-activities/opportunities (``list_url``), following the
  views pager; with ``details = true`` also each ``/our-activities/opportunities/<slug>``.
- Returns: one record per ``.views-row``: title and link (``.teaser-title a``), start and
  end dates (``.start-date``, ``.end-date``, dd/mm/yyyy; the end is the deadline, end of
  day in Brussels), the community (``.opportunity-kics``, as sub-programme), programme
  "EIT"; with details, the page text as summary and its links to the KIC's own call page.
- Changes: a few calls a week across the KICs; default interval 1d.
- Quirks: EIT rate-limits bursts, so detail pages are off by default and ``http.delay``
  paces them when on. Rows whose end date has passed are kept as closed (absence is not
  closure). EIT has no RSS. Many KIC calls are also portal cascade calls: dedupe by url.
  Recipe: shared/sources/other_sources.md §2E.
- Fixtures: tracker/demo/fakes/recordings/eit/ (list pages, also served by the demo);
  tests/fixtures/eit/ (a detail page, a redesigned list). All written in the real shape: no
  recording of the site was found (tests/fixtures/README.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from scrapers._dates import ZoneName, parse_date, zone_named
from scrapers._pages import soup_of
from scrapers._records import RecordBatch, require
from scrapers._source import HttpSource, ListPage, all_listed, fetch_detail, items_of, link_of, outbound_links
from tracker.config import WebUrl
from tracker.errors import InvalidRecord, LayoutChanged
from tracker.models import CallRecord
from tracker.plaintext import normalize_space, one_line
from tracker.ports import Duration, Progress, SourcePlugin, SourceSettings
from tracker.status import status_for


class EitSettings(SourceSettings):
    """Settings of ``[sources.eit]``."""

    interval: Duration = Field(timedelta(days=1), description="how often to scrape")
    list_url: WebUrl = Field("https://www.eit.europa.eu/our-activities/opportunities",
                          description="the opportunities page")
    details: bool = Field(False, description="read each opportunity's page (EIT limits bursts)")
    max_pages: int = Field(10, ge=1, le=50, description="list pages to walk at most")
    timezone: ZoneName = Field("Europe/Brussels", description="zone of the dd/mm/yyyy dates")


@dataclass(frozen=True)
class Row:
    """One opportunity as the list shows it."""

    title: str
    link: str | None
    start: str
    end: str
    community: str


def _text(node: Any) -> str:
    return one_line(node.get_text(" ")) if node is not None else ""


def parse_list(markup: str, *, url: str, first: bool) -> ListPage[Row]:
    """Rows and next page; LayoutChanged when a first page has no ``.views-row``."""
    soup = soup_of(markup)
    nodes = items_of(soup, ".views-row", required=first,
                       missing=f"no .views-row on the EIT opportunities page {url}")
    rows = []
    for node in nodes:
        anchor = node.select_one(".teaser-title a")
        rows.append(Row(
            title=_text(anchor),
            link=link_of(anchor, url),
            start=_text(node.select_one(".start-date")),
            end=_text(node.select_one(".end-date")),
            community=_text(node.select_one(".opportunity-kics")),
        ))
    if first and rows and not any(r.title for r in rows):
        raise LayoutChanged(f"EIT rows at {url} have no .teaser-title a")
    next_node = soup.select_one("a[rel=next]") or soup.select_one(".pager__item--next a")
    return ListPage(rows, link_of(next_node, url))


@dataclass(frozen=True)
class Detail:
    text: str
    links: list[str]


def parse_detail(markup: str, *, url: str) -> Detail:
    """The opportunity page's text and its links off the EIT site (the KIC's call page)."""
    soup = soup_of(markup)
    main = soup.select_one("main article") or soup.select_one("main") or soup.body
    if main is None:
        return Detail("", [])
    return Detail(" ".join(normalize_space(main.get_text(" ")).split()), outbound_links(main, url))


def record_from_row(row: Row, detail: Detail | None, *, source: str, now: datetime,
                    timezone: str = "Europe/Brussels") -> CallRecord:
    """One row (and its page) as a call; an unreadable end date makes it invalid."""
    native_id = urlsplit(row.link).path.rstrip("/").rsplit("/", 1)[-1] if row.link else row.title
    zone = zone_named(timezone)
    # the site is in English (as its records say): without a language, dateparser tries each
    # of its ~200 locales on a text like "tbc" (2.3 s, a third of `callwatch demo`, issue 15)
    deadline = parse_date(row.end, zone=zone, language="en")
    if deadline is None:
        raise InvalidRecord(f"unparseable end date {row.end!r}", native_id=native_id)
    opening = parse_date(row.start, zone=zone, language="en", end_of_day=False) if row.start else None
    if row.start and opening is None:
        raise InvalidRecord(f"unparseable start date {row.start!r}", native_id=native_id)
    summary = ""
    if detail is not None:
        summary = detail.text[:2000] + ("\n\nLinks: " + " ".join(detail.links) if detail.links else "")
    return CallRecord(
        source=source,
        native_id=require(native_id, "link or title", "?"),
        title=require(row.title, "title", native_id),
        status=status_for(opening, (deadline,), now),
        programme="EIT",
        sub_programme=row.community or None,
        summary=summary,
        url=row.link,
        opening_date=opening,
        deadlines=(deadline,),
        language="en",
    )


class EitSource(HttpSource[EitSettings]):
    """The EIT opportunities page."""

    async def read(self, batch: RecordBatch, now: datetime, progress: Progress | None) -> None:
        rows = await all_listed(self.http, parse_list, self.settings, progress)
        for row in rows:
            detail = None
            if self.settings.details and row.link:
                markup = await fetch_detail(self.http, row.link, batch)
                detail = parse_detail(markup, url=row.link) if markup is not None else None
            batch.add(row.link or row.title, functools.partial(  # without its page if need be
                record_from_row, row, detail, source=self.name, now=now,
                timezone=self.settings.timezone))


PLUGIN = SourcePlugin(kind="eit", settings=EitSettings, create=EitSource, description=(
    "EIT Opportunities: open calls of every EIT community on one page"))
