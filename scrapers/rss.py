"""Any RSS or Atom feed of calls, configured by the user: kind ``rss``, as many instances as needed.

Manifest
- URL: whatever ``url`` says, e.g. a national cohesion programme's call feed
  (https://www.dotaceeu.cz/cs/ostatni/web/rss?rss=Vyzvy) or a Drupal taxonomy feed.
- Returns: one record per feed item: title, link, summary (the description as plain text),
  a deadline when the item's text names one after a deadline label (``deadline_pattern``),
  and the programme, country and region the config gives the instance.
- Changes: whenever the publisher posts; default interval 6h.
- Quirks: some Drupal themes print HTML debug comments before ``<?xml``; everything before
  the feed's first tag is dropped before parsing. Atom/RSS paging (``<link rel="next">``,
  RFC 5005) is followed up to ``max_pages``. A page that is no feed at all (a bot
  challenge, an error page) fails the run with that reason. Feeds give publication dates,
  not deadlines, so drift detection does not expect deadlines from this kind.
- Fixtures: tests/fixtures/rss/.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import feedparser
from pydantic import Field, field_validator

from scrapers._dates import LanguageCode, ZoneName, names_relative_day, parse_date, zone_named
from scrapers._pages import BotChallenge, challenge_reason, fetch_response
from scrapers._records import IDENTIFIER, RecordBatch, require, status_for
from tracker import programmes
from tracker.config import WebUrl
from tracker.errors import CallwatchError, LayoutChanged
from tracker.models import CallRecord, ScrapeResult
from tracker.ports import HttpClient, Progress, SourcePlugin, SourceSettings
from tracker.text import html_to_text, one_line

#: Labels after which items commonly give their deadline, in the EU's larger languages.
DEADLINE_LABELS = (
    r"deadline|closing date|closes|submission until|"
    r"date limite|date de clôture|clôture|"
    r"uzávěrka|ukončení příjmu žádostí|"
    r"plazo|fecha límite|"
    r"frist|einreichfrist|antragsfrist|"
    r"scadenza|termin składania|termin|"
    r"prazo|data limite"
)
DEFAULT_DEADLINE_PATTERN = rf"(?:{DEADLINE_LABELS})\s*[:\-–]?\s*(.{{6,60}})"

_FEED_START = re.compile(rb"<\?xml|<rss[\s>]|<feed[\s>]|<rdf:RDF[\s>]", re.IGNORECASE)


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise ValueError(f"expected an ISO 3166 alpha-2 country code like CZ, got {value!r}")
    return code


def _programme(value: str | None) -> str | None:
    return None if value is None else programmes.canonical(value)


def _pattern(value: str | None) -> str | None:
    if value:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
    return value


class RssSettings(SourceSettings):
    """Settings of one ``kind = "rss"`` instance."""

    url: WebUrl = Field(description="the feed's URL")
    programme: str | None = Field(None, description="canonical programme, e.g. Cohesion Policy")
    sub_programme: str | None = Field(None, description="the operational programme's name")
    country: str | None = Field(None, description="ISO country code the calls are for, e.g. CZ")
    region: str | None = Field(None, description="NUTS code of the region, e.g. CZ01")
    language: LanguageCode = Field(None, description="language of the feed's dates, e.g. cs")
    timezone: ZoneName = Field("Europe/Brussels", description="zone of dates without one")
    deadline_pattern: str | None = Field(
        DEFAULT_DEADLINE_PATTERN,
        description="regex on an item's text whose first group is its deadline; empty: none",
    )
    max_pages: int = Field(3, ge=1, le=50, description="feed pages to follow (rel=next)")

    _check_country = field_validator("country")(_country)
    _check_programme = field_validator("programme")(_programme)
    _check_pattern = field_validator("deadline_pattern")(_pattern)

    @field_validator("region")
    @classmethod
    def _nuts(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Z]{2}[0-9A-Z]{0,3}", value.strip().upper()):
            raise ValueError(f"expected a NUTS code like CZ01 or FRJ, got {value!r}")
        return None if value is None else value.strip().upper()


@dataclass(frozen=True)
class FeedItem:
    """One entry of a feed, as the feed gives it."""

    id: str
    title: str
    link: str | None
    text: str  # the description or content, as plain text


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedItem]
    next_url: str | None


def strip_junk(body: bytes) -> bytes:
    """The feed without anything printed before its first tag (Drupal debug comments)."""
    match = _FEED_START.search(body)
    return body[match.start():] if match else body


def parse_feed(body: bytes, *, url: str) -> FeedPage:
    """A feed's items and its next page; LayoutChanged when ``body`` is no RSS or Atom."""
    text_head = body[:20000].decode("utf-8", "replace")
    reason = challenge_reason(text_head)
    if reason is not None:
        raise BotChallenge(f"{reason} at {url}")
    parsed: Any = feedparser.parse(strip_junk(body), response_headers={"content-location": url})
    if not parsed.get("version"):
        problem = parsed.get("bozo_exception") or "no <rss>, <feed> or <rdf:RDF> element"
        raise LayoutChanged(f"{url} is not an RSS or Atom feed ({problem})")
    items = []
    for entry in parsed.entries:
        link = entry.get("link") or None
        content = entry.get("content") or []
        raw = entry.get("summary") or (content[0].get("value") if content else "") or ""
        title = one_line(entry.get("title") or "")
        key = entry.get("id") or link or hashlib.sha256(title.encode()).hexdigest()[:16]
        items.append(FeedItem(id=str(key), title=title, link=link, text=html_to_text(raw)))
    next_url = None
    for link in parsed.feed.get("links", []):
        if link.get("rel") == "next" and link.get("href"):
            next_url = str(link["href"])
    return FeedPage(items, next_url)


def record_from_item(item: FeedItem, *, source: str, settings: RssSettings, now: datetime) -> CallRecord:
    """One feed item as a call; an item whose deadline text does not parse is invalid, one
    whose deadline names a day only relative to today ("demain", "tomorrow") has none."""
    zone = zone_named(settings.timezone)
    deadlines: tuple[datetime, ...] = ()
    if settings.deadline_pattern:
        match = re.search(settings.deadline_pattern, f"{item.title}\n{item.text}", re.IGNORECASE)
        if match:
            raw = match.group(1) if match.groups() else match.group(0)
            deadline = parse_date(raw, zone=zone, language=settings.language)
            if deadline is None and not names_relative_day(raw, language=settings.language):
                raise ValueError(f"{item.id}: unparseable deadline {raw.strip()!r}")
            deadlines = (deadline,) if deadline else ()
    identifiers = IDENTIFIER.findall(f"{item.title} {item.text}")
    return CallRecord(
        source=source,
        native_id=require(item.id, "id", item.id or "?"),
        title=require(item.title, "title", item.id),
        status=status_for(None, deadlines, now),
        programme=settings.programme,
        sub_programme=settings.sub_programme,
        topic_identifier=identifiers[0] if len(set(identifiers)) == 1 else None,
        summary=item.text,
        url=item.link,
        deadlines=deadlines,
        countries=(settings.country,) if settings.country else (),
        regions=(settings.region,) if settings.region else (),
        language=settings.language,
    )


class RssSource:
    """One configured feed."""

    #: feeds give no deadlines as such: drift detection judges titles and links only
    expected_fields = ("title", "url")

    def __init__(self, name: str, settings: RssSettings, http: HttpClient) -> None:
        self.name = name
        self.settings = settings
        self.http = http

    async def scrape(self, now: datetime, progress: Progress | None = None) -> ScrapeResult:
        batch = RecordBatch(self.name)
        url: str | None = self.settings.url
        seen: set[str] = set()
        pages: list[FeedPage] = []
        try:
            while url and url not in seen and len(pages) < self.settings.max_pages:
                seen.add(url)
                response = await fetch_response(self.http, url)
                pages.append(parse_feed(response.content, url=url))
                url = pages[-1].next_url
                if progress:
                    progress(len(pages), None)
        except CallwatchError as exc:
            self._add(batch, pages, now)
            return batch.failed(exc)
        self._add(batch, pages, now)
        return batch.result()

    def _add(self, batch: RecordBatch, pages: list[FeedPage], now: datetime) -> None:
        for page in pages:
            for item in page.items:
                batch.add(item.id, functools.partial(
                    record_from_item, item, source=self.name, settings=self.settings, now=now))


def _create(name: str, settings: Any, http: HttpClient) -> RssSource:
    return RssSource(name, settings, http)


PLUGIN = SourcePlugin(
    kind="rss",
    description="any RSS or Atom feed of calls, with the programme, country and region you set",
    settings=RssSettings,
    create=_create,
)
