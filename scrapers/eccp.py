"""European Cluster Collaboration Platform: the call inventory (cluster and cascade calls).

Manifest
- URL: https://www.clustercollaboration.eu/search-results?type=eccp_calls&page=0
  (``list_url``), following the pager; then each detail page ``/content/<slug>``.
- Returns: one record per call: title, the "DEADLINE:" line (or, for calls mirrored from
  the F&T Portal, the "Deadline date … 14:00 (CEST)" of the Details block, which wins),
  status, opening date and deadline model from the Details block, the page text as summary
  with the outbound links (project sites, EUSurvey forms, portal pages) listed at its end,
  and the portal topic identifier when the page mirrors one (for cross-source dedupe).
- Changes: a few new calls a week; 228 items on 20 pages in Aug 2026. Default 1d.
- Quirks: 12 cards per page, the last page is empty; a Cloudflare check was seen on the
  site in Sep 2026, and such a page fails the run with that reason instead of "zero
  calls". A first page without cards is a changed layout. Links to ``/expertise`` are not
  calls. Recipe and evidence: shared/sources/other_sources.md §2B.
- Fixtures: tracker/demo/fakes/recordings/eccp/ (list and detail pages, also served by the demo,
  all written; four detail pages carry the real text of recorded extracts);
  tests/fixtures/eccp/ (those extracts, a changed layout). No raw HTML of the site was
  found (tests/fixtures/README.md).
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import Field

from scrapers._dates import ZoneName, parse_date, zone_named
from scrapers._pages import soup_of
from scrapers._records import RecordBatch, own_identifier, stated_deadline
from scrapers._source import HttpSource, ListPage, all_listed, fetch_detail, items_of, link_of, outbound_links
from tracker import programmes
from tracker.config import WebUrl
from tracker.errors import InvalidRecord, LayoutChanged
from tracker.models import CallRecord
from tracker.plaintext import normalize_space, one_line
from tracker.ports import Duration, Progress, SourcePlugin, SourceSettings
from tracker.status import status_for

if TYPE_CHECKING:  # BeautifulSoup loads where a page is parsed
    from bs4 import Tag

_NOT_TITLES = {"opportunity", "funding opportunity", "call", "calls", "details", "links"}
_DEADLINE_DATE = re.compile(
    r"Deadline date\s+(\d{1,2}\s+\w+\s+\d{4}(?:,?\s*\d{1,2}:\d{2})?(?:\s*\((?:CET|CEST)\))?)")
_DEADLINE_LINE = re.compile(r"DEADLINE:\s*(\d{1,2}\s+[^\W\d_]+\s+\d{4})")
_DEADLINE_ANY = re.compile(r"DEADLINE:\s*(\S+(?:\s+\S+){0,2})")
_STATUS = re.compile(r"Details\s+Status\s+(\w+)")
_OPENING = re.compile(r"Opening date\s+(\d{1,2}\s+\w+\s+\d{4})")
_MODEL = re.compile(r"Deadline model\s+(Single-stage|Two-stage|Multiple cut-off|Continuous|[\w-]+)")


class EccpSettings(SourceSettings):
    """Settings of ``[sources.eccp]``."""

    interval: Duration = Field(timedelta(days=1), description="how often to scrape")
    list_url: WebUrl = Field("https://www.clustercollaboration.eu/search-results?type=eccp_calls&page=0",
                          description="first page of the call inventory")
    max_pages: int = Field(25, ge=1, le=100, description="list pages to walk at most")
    timezone: ZoneName = Field("Europe/Brussels", description="zone of deadlines without one")


def parse_list(markup: str, *, url: str, first: bool) -> ListPage[str]:
    """The detail links of one inventory page and the next page; LayoutChanged when a first
    page has no cards."""
    soup = soup_of(markup)
    cards = items_of(soup, ".search-result-item", required=first,
                       missing=f"no .search-result-item cards on the first inventory page {url}")
    links: list[str] = []
    for card in cards:
        for anchor in card.select("a[href]"):
            link = link_of(anchor, url)
            if link and "/content/" in link and not link.rstrip("/").endswith("/expertise"):
                if link not in links:
                    links.append(link)
                break
    if first and cards and not links:
        raise LayoutChanged(f"inventory cards at {url} hold no /content/ links")
    next_node = (soup.select_one("a[rel=next]") or soup.select_one('.pager a[aria-label="Next page"]')
                 or soup.select_one(".pager__item--next a"))
    next_url = link_of(next_node, url) if links else None
    return ListPage(links, next_url)


def _title(soup: Any, main: Tag) -> str:
    candidates = [one_line(h.get_text(" ")) for h in main.select("h1, h2")]
    candidates = [c for c in candidates if c and c.casefold() not in _NOT_TITLES]
    if candidates:
        return max(candidates, key=len)
    og = soup.select_one('meta[property="og:title"]')
    if og is not None and isinstance(og.get("content"), str):
        return one_line(str(og["content"]))
    title = soup.title.get_text() if soup.title else ""
    return one_line(title.split("|")[0])


def record_from_detail(markup: str, *, url: str, source: str, now: datetime, timezone: str = "Europe/Brussels"
                       ) -> CallRecord:
    """One detail page as a call; InvalidRecord when it has no title or an unreadable deadline."""
    soup = soup_of(markup)
    main = soup.select_one("main") or soup.body
    if main is None:
        raise LayoutChanged(f"no <main> or <body> in {url}")
    native_id = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or url
    text = normalize_space(main.get_text(" "))
    flat = " ".join(text.split())
    title = _title(soup, main)
    if not title:
        raise InvalidRecord("no title", native_id=native_id)
    zone = zone_named(timezone)
    found = _DEADLINE_DATE.search(flat) or _DEADLINE_LINE.search(flat) or _DEADLINE_ANY.search(flat)
    deadlines = stated_deadline(found, zone=zone, native_id=native_id)
    mirrored = _STATUS.search(flat)
    opening_match = _OPENING.search(flat)
    opening = parse_date(opening_match.group(1), zone=zone, end_of_day=False) if opening_match else None
    model = _MODEL.search(flat)
    outbound = outbound_links(main, url)
    identifier = own_identifier(flat) if mirrored else None
    programme = programmes.lookup(identifier.split("-")[0]) if identifier else None
    body = flat.split(title, 1)[-1].strip() if title in flat else flat
    summary = body[:2000] + ("\n\nLinks: " + " ".join(outbound) if outbound else "")
    return CallRecord(
        source=source,
        native_id=native_id,
        title=title,
        status=status_for(opening, deadlines, now, mirrored.group(1) if mirrored else None),
        programme=programme.name if programme else None,
        topic_identifier=identifier,
        summary=summary,
        url=url,
        opening_date=opening,
        deadlines=deadlines,
        deadline_model=model.group(1).lower() if model else None,
        tags=("clusters",),
        language="en",
    )


class EccpSource(HttpSource[EccpSettings]):
    """The ECCP call inventory."""

    async def read(self, batch: RecordBatch, now: datetime, progress: Progress | None) -> None:
        listed = await all_listed(self.http, parse_list, self.settings, progress)
        links = list(dict.fromkeys(listed))  # a call on two inventory pages is read once
        for done, link in enumerate(links, 1):
            markup = await fetch_detail(self.http, link, batch)
            if markup is None:  # the call is lost to this run
                batch.invalid += 1
                continue
            batch.add(link, functools.partial(
                record_from_detail, markup, url=link, source=self.name, now=now,
                timezone=self.settings.timezone))
            if progress:
                progress(done, len(links))


PLUGIN = SourcePlugin(kind="eccp", settings=EccpSettings, create=EccpSource, description=(
    "European Cluster Collaboration Platform call inventory (cluster and cascade calls)"))
