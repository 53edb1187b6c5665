"""Commission agency sites in the Europa Component Library (ECL): EISMEA, HaDEA, EIC, one parser.

Manifest
- URL: one configured instance per site (``kind = "ecl_pages"``), ``list_url`` e.g.
  https://eismea.ec.europa.eu/funding-opportunities/calls-proposals_en,
  https://hadea.ec.europa.eu/calls-proposals_en, https://eic.ec.europa.eu/news_en;
  pages ``?page=1``, ``?page=2`` … until a page has no card or no new card.
- Returns: one record per ``.ecl-content-item`` card (title, link, publication date,
  description, type label) and, with ``details = true``, the labelled fields of its page:
  "Deadline date 5 February 2025, 17:00 (CET)", "Opening date", "Deadline model", the
  status badge ("Call for proposals • Closed") and the topic identifier named on it.
- News, not calls: a card that ends with no deadline (none named at all: "Deadline date
  tomorrow" is a call whose deadline is unknown), no opening date and no status badge
  (every card of a news list such as EIC's, read with ``details = false``) says nothing
  of a call being open. It is stored as news: status closed, tag ``news``, and its
  publication date as its one dated news line ("2024-03-11: News article published"), so
  it stays out of the default ``calls list``, out of profiles' default statuses and out of
  alerts. The publication date is the card's ``time[datetime]``, else its ECL date block
  (day, month, year), else a date written in its meta line.
- Changes: a few calls a month per agency; default interval 1d.
- Quirks: cards are server-rendered (plain HTTP is enough). The classes of the detail
  block are not documented, so its label/value pairs are read from the text. A news list
  (``details = false``) gives no deadlines and is judged by drift detection without them.
  A card's ``time[datetime]`` may be a date ("2024-09-26") or an instant
  ("2024-03-11T12:00:00Z").
  No RSS for these sites is verified (other_sources.md §2D).
- Fixtures: tracker/demo/fakes/recordings/ecl_pages/ (list and call pages, also served by the demo);
  tests/fixtures/ecl_pages/ (a redesigned list; the recorded news block of the Commission's
  home page, March 2024).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from scrapers._dates import ZoneName, parse_date, parse_iso, zone_named
from scrapers._pages import fetch_page, soup_of
from scrapers._records import RecordBatch, canonical_programme, own_identifier, require, stated_deadline
from scrapers._source import HttpSource, fetch_detail, items_of, link_of
from tracker import programmes
from tracker.config import WebUrl
from tracker.models import CallRecord, CallStatus
from tracker.plaintext import normalize_space, one_line
from tracker.ports import Duration, Progress, SourcePlugin, SourceSettings
from tracker.status import status_for

_WHEN = r"(\d{1,2}\s+[^\W\d_]+\s+\d{4}(?:,?\s*\d{1,2}:\d{2})?(?:\s*\((?:CET|CEST|Brussels time)\))?)"
_DEADLINE = re.compile(r"Deadline dates?\s*:?\s*" + _WHEN)
_DEADLINE_RAW = re.compile(r"Deadline dates?\s*:?\s*(\S+(?:\s+\S+){0,2})")
_OPENING = re.compile(r"Opening date\s*:?\s*" + _WHEN)
_MODEL = re.compile(r"Deadline model\s*:?\s*(Single-stage|Two-stage|Multiple cut-off|[\w-]+)", re.IGNORECASE)
_BADGE = re.compile(r"•\s*(Open|Closed|Forthcoming|Upcoming)\b", re.IGNORECASE)
#: a meta item that may be a written date ("31 August 2026"): it names a year
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")


class EclSettings(SourceSettings):
    """Settings of one ``kind = "ecl_pages"`` instance."""

    interval: Duration = Field(timedelta(days=1), description="how often to scrape")
    list_url: WebUrl = Field(description="the agency's calls (or news) list page")
    publisher: str = Field(description="the agency, shown as sub-programme, e.g. EISMEA")
    programme: str | None = Field(None, description="canonical programme when the site has one")
    details: bool = Field(True, description="read each card's page for deadlines and status")
    max_pages: int = Field(10, ge=1, le=100, description="list pages to walk at most")
    timezone: ZoneName = Field("Europe/Brussels", description="zone of deadlines without one")

    _check_programme = field_validator("programme")(canonical_programme)


@dataclass(frozen=True)
class Card:
    """One ECL content item of a list."""

    title: str
    link: str | None
    date: str | None  # its publication date as written: ISO from <time>, or text
    description: str
    label: str


def page_url(list_url: str, number: int) -> str:
    """``list_url`` with ``page=number`` (ECL lists count from 0; page 0 has no parameter)."""
    parts = urlsplit(list_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "page"]
    if number:
        query.append(("page", str(number)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def parse_cards(markup: str, *, url: str, first: bool) -> list[Card]:
    """The cards of one list page; LayoutChanged when a first page has none."""
    nodes = items_of(soup_of(markup), ".ecl-content-item", required=first,
                       missing=f"no .ecl-content-item cards on {url}")
    return [_card(node, url) for node in nodes]


def _card(node: Any, url: str) -> Card:
    anchor = node.select_one(".ecl-content-block__title a[href]") or node.select_one("a[href]")
    description = node.select_one(".ecl-content-block__description")
    label = node.select_one(".ecl-content-block__primary-meta-item")
    return Card(
        title=one_line(anchor.get_text(" ")) if anchor is not None else "",
        link=link_of(anchor, url),
        date=_card_date(node),
        description=one_line(description.get_text(" ")) if description is not None else "",
        label=one_line(label.get_text(" ")) if label is not None else "",
    )


def _card_date(node: Any) -> str | None:
    """A card's publication date as written: ``time[datetime]``, else the ECL date block
    ("11" "Mar" "2024", the month's full name in its ``title``), else a meta item naming a
    year ("31 August 2026")."""
    for time_node in node.select("time[datetime]"):
        when = time_node.get("datetime")
        if isinstance(when, str) and when.strip():
            return when.strip()
    block = node.select_one(".ecl-date-block")
    if block is not None:
        parts = [block.select_one(f".ecl-date-block__{part}") for part in ("day", "month", "year")]
        if all(part is not None for part in parts):
            day, month, year = parts
            month_name = month.get("title") if isinstance(month.get("title"), str) else None
            return " ".join([day.get_text(" ").strip(), month_name or month.get_text(" ").strip(),
                             year.get_text(" ").strip()])
    for meta in node.select(".ecl-content-block__primary-meta-item"):
        text = one_line(meta.get_text(" "))
        if _YEAR.search(text):
            return text
    return None


def published_on(card: Card, zone: ZoneInfo) -> datetime | None:
    """When the card was published (UTC), or None when it shows no readable date."""
    if not card.date:
        return None
    return (parse_iso(card.date, zone=zone, end_of_day=False)
            or parse_date(card.date, zone=zone, language="en", end_of_day=False))


def native_id_of(card: Card) -> str:
    """The last path segment of the card's link (the notes' dedup key), else its title."""
    if card.link:
        segment = urlsplit(card.link).path.rstrip("/").rsplit("/", 1)[-1]
        if segment:
            return segment
    return require(card.title, "title or link", "?")


def record_from_card(card: Card, detail: str | None, *, source: str, settings: EclSettings,
                     now: datetime) -> CallRecord:
    """A card, and its detail page's text when read, as a call."""
    native_id = native_id_of(card)
    zone = zone_named(settings.timezone)
    flat = ""
    if detail is not None:
        soup = soup_of(detail)
        main = soup.select_one("main") or soup.body
        flat = " ".join(normalize_space(main.get_text(" ")).split()) if main is not None else ""
    found = _DEADLINE.search(flat) or _DEADLINE_RAW.search(flat)
    deadlines = stated_deadline(found, zone=zone, native_id=native_id)
    opening_match = _OPENING.search(flat)
    opening = parse_date(opening_match.group(1), zone=zone, end_of_day=False) if opening_match else None
    badge = _BADGE.search(flat)
    model = _MODEL.search(flat)
    identifier = own_identifier(f"{card.title} {flat}")
    programme = settings.programme
    if programme is None and identifier:
        known = programmes.lookup(identifier.split("-")[0])
        programme = known.name if known else None
    news = found is None and opening is None and badge is None  # no deadline named at all
    updates: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    if news:  # nothing says a call is open: news, kept out of open calls (module docstring)
        status = CallStatus.CLOSED
        tags = ("news",)
        published = published_on(card, zone)
        if published is not None:
            day = published.astimezone(zone).date().isoformat()
            updates = (f"{day}: {card.label or 'News'} published",)
    else:
        status = status_for(opening, deadlines, now, badge.group(1) if badge else None)
    return CallRecord(
        source=source,
        native_id=native_id,
        title=require(card.title, "title", native_id),
        status=status,
        programme=programme,
        sub_programme=settings.publisher,
        topic_identifier=identifier,
        summary=card.description,
        url=card.link,
        opening_date=opening,
        deadlines=deadlines,
        deadline_model=model.group(1).lower() if model else None,
        action_type=card.label or None,
        tags=tags,
        language="en",
        updates=updates,
    )


class EclSource(HttpSource[EclSettings]):
    """One agency site."""

    @property
    def expected_fields(self) -> tuple[str, ...]:
        """What drift detection expects of every item: the cards alone give no deadline."""
        return ("title", "url", "deadline") if self.settings.details else ("title", "url")

    async def _cards(self, progress: Progress | None) -> list[Card]:
        cards: list[Card] = []
        seen: set[str] = set()
        for number in range(self.settings.max_pages):
            url = page_url(self.settings.list_url, number)
            page = parse_cards(await fetch_page(self.http, url), url=url, first=number == 0)
            new = [c for c in page if native_id_of(c) not in seen]
            if not new:
                break
            seen.update(native_id_of(c) for c in new)
            cards.extend(new)
            if progress:
                progress(number + 1, None)
        return cards

    async def read(self, batch: RecordBatch, now: datetime, progress: Progress | None) -> None:
        for card in await self._cards(progress):
            detail: str | None = None
            if self.settings.details and card.link:
                detail = await fetch_detail(self.http, card.link, batch)
                if detail is None:  # the call is lost to this run
                    batch.invalid += 1
                    continue
            batch.add(card.link or card.title, functools.partial(
                record_from_card, card, detail, source=self.name, settings=self.settings, now=now))


PLUGIN = SourcePlugin(kind="ecl_pages", settings=EclSettings, create=EclSource, description=(
    "Commission agency sites in ECL markup (EISMEA, HaDEA, EIC): one instance per site"))
