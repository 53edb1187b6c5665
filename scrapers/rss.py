"""Any RSS or Atom feed of calls, configured by the user: kind ``rss``, as many instances as needed.

Manifest
- URL: whatever ``url`` says, e.g. a national cohesion programme's call feed
  (https://www.dotaceeu.cz/cs/ostatni/web/rss?rss=Vyzvy) or a Drupal taxonomy feed.
- Returns: one record per feed item: title, link, summary (the description as plain text),
  a deadline and the programme, country and region the config gives the instance. The
  deadline is read from the element or attribute ``deadline_element`` names, with the time
  of day from ``deadline_time_element`` beside it (feeds that carry it as data, such as the
  Spanish procurement platform's CODICE Atom: ``cac:TenderSubmissionDeadlinePeriod/
  cbc:EndDate`` and ``cbc:EndTime``), else from the item's text after a deadline label
  (``deadline_pattern``); the opening date likewise from ``opening_element``.
- Changes: whenever the publisher posts; default interval 6h.
- Quirks: some Drupal themes print HTML debug comments before ``<?xml``; everything before
  the feed's first tag is dropped before parsing. Atom/RSS paging (``<link rel="next">``,
  RFC 5005) is followed up to ``max_pages``. A page that is no feed at all (a bot
  challenge, an error page) fails the run with that reason. Most feeds give publication
  dates, not deadlines, so drift detection does not expect deadlines from this kind.
  feedparser flattens namespaced elements into one key per name (``cbc_enddate``), the last
  one met winning, and a CODICE entry has three ``cbc:EndDate`` (contract period, document
  availability, tender deadline); so the named elements are looked up by path in the raw
  XML (the standard library's expat parser, which fetches nothing; a feed that declares a
  DTD with its own entities is refused rather than expanded).
- Fixtures: tests/fixtures/rss/ (a recorded slice of the PLACSP feed among them).
"""

from __future__ import annotations

import functools
import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator, model_validator

from scrapers._dates import LanguageCode, ZoneName, names_relative_day, parse_date, zone_named
from scrapers._pages import BotChallenge, challenge_reason, fetch_response
from scrapers._records import PlacedSettings, RecordBatch, configured_record, require
from scrapers._source import HttpSource, ListPage, Pager, must_compile
from tracker.config import WebUrl
from tracker.errors import LayoutChanged
from tracker.models import CallRecord
from tracker.plaintext import html_to_text, one_line
from tracker.ports import Progress, SourcePlugin

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

#: A DTD that declares entities: expanding them is how "billion laughs" and external-entity
#: attacks work, and no feed needs them.
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)

#: An element path inside a feed entry: names (with their feed prefix) joined by "/",
#: optionally ending in "/@attribute"; or "@attribute" alone (of the entry, or for a time,
#: of the deadline's element).
_XML_NAME = r"(?:[A-Za-z_][\w.-]*:)?[A-Za-z_][\w.-]*"
_ELEMENT_PATH = re.compile(rf"(?:{_XML_NAME}(?:/{_XML_NAME})*(?:/@{_XML_NAME})?|@{_XML_NAME})")

#: The tags of a feed's entries: Atom 1.0 and 0.3, RSS 2.0, RSS 1.0 and 0.9.
_ENTRY_TAGS = frozenset({
    "{http://www.w3.org/2005/Atom}entry", "{http://purl.org/atom/ns#}entry", "item",
    "{http://purl.org/rss/1.0/}item", "{http://my.netscape.com/rdf/simple/0.9/}item",
})


def _element_path(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    path = value.strip()
    if not _ELEMENT_PATH.fullmatch(path):
        raise ValueError(
            f"expected an element path like cac:TenderSubmissionDeadlinePeriod/cbc:EndDate, "
            f"optionally ending in /@attribute, or @attribute alone; got {value!r}")
    return path


def _pattern(value: str | None) -> str | None:
    if value:
        must_compile(value, re.compile, re.error, "a regular expression")
    return value


class RssSettings(PlacedSettings):
    """Settings of one ``kind = "rss"`` instance."""

    url: WebUrl = Field(description="the feed's URL")
    language: LanguageCode = Field(None, description="language of the feed's dates, e.g. cs")
    timezone: ZoneName = Field("Europe/Brussels", description="zone of dates without one")
    deadline_pattern: str | None = Field(
        DEFAULT_DEADLINE_PATTERN,
        description="regex on an item's text whose first group is its deadline; empty: none",
    )
    deadline_element: str | None = Field(
        None,
        description="path, in each entry, of the element or /@attribute holding its deadline "
        "(prefixes as the feed declares them), e.g. cac:TenderSubmissionDeadlinePeriod/"
        "cbc:EndDate; wins over deadline_pattern when the entry has it",
    )
    deadline_time_element: str | None = Field(
        None,
        description="the deadline's time of day: an element beside the deadline element "
        "(e.g. cbc:EndTime), or @attribute of the deadline's element",
    )
    opening_element: str | None = Field(
        None, description="path, in each entry, of the element or /@attribute holding its "
        "opening date")
    max_pages: int = Field(3, ge=1, le=50, description="feed pages to follow (rel=next)")

    _check_pattern = field_validator("deadline_pattern")(_pattern)
    _check_paths = field_validator(
        "deadline_element", "deadline_time_element", "opening_element")(_element_path)

    @model_validator(mode="after")
    def _time_needs_a_date(self) -> RssSettings:
        if self.deadline_time_element and not self.deadline_element:
            raise ValueError("deadline_time_element is read beside deadline_element: "
                             "set deadline_element too")
        return self

    def element_paths(self) -> ElementPaths | None:
        """The elements to read from each entry's XML, None when the feed's text will do."""
        if not (self.deadline_element or self.opening_element):
            return None
        return ElementPaths(self.deadline_element, self.deadline_time_element,
                            self.opening_element)

    @field_validator("region")
    @classmethod
    def _nuts(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Z]{2}[0-9A-Z]{0,3}", value.strip().upper()):
            raise ValueError(f"expected a NUTS code like CZ01 or FRJ, got {value!r}")
        return None if value is None else value.strip().upper()


@dataclass(frozen=True)
class ElementPaths:
    """Which elements of an entry hold its deadline, the deadline's time, its opening date."""

    deadline: str | None = None
    deadline_time: str | None = None
    opening: str | None = None


@dataclass(frozen=True)
class FeedItem:
    """One entry of a feed, as the feed gives it."""

    id: str
    title: str
    link: str | None
    text: str  # the description or content, as plain text
    #: each deadline the entry's ``deadline_element`` holds, with its time when given, as written
    deadline_texts: tuple[str, ...] = ()
    #: the entry's ``opening_element``, as written
    opening_text: str | None = None


def strip_junk(body: bytes) -> bytes:
    """The feed without anything printed before its first tag (Drupal debug comments)."""
    match = _FEED_START.search(body)
    return body[match.start():] if match else body


def _xml_entries(body: bytes, *, url: str) -> tuple[list[ET.Element], dict[str, str]]:
    """The feed's entry elements in document order, and the prefixes it declares.

    expat fetches no external entity; entity declarations are refused before parsing, so
    nothing is expanded either.
    """
    if _ENTITY_DECLARATION.search(body):
        raise LayoutChanged(f"{url} declares XML entities in a DTD; callwatch does not expand "
                            "them (no feed needs them)")
    namespaces: dict[str, str] = {}
    root: ET.Element | None = None
    reader: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start-ns", "start"))
    try:
        reader.feed(body)
        reader.close()
    except ET.ParseError as exc:
        raise LayoutChanged(f"{url} is not well-formed XML ({exc})") from exc
    for event in reader.read_events():
        value = event[-1]
        if isinstance(value, tuple):  # start-ns: (prefix, uri)
            namespaces.setdefault(value[0], value[1])
        elif isinstance(value, ET.Element) and root is None:
            root = value
    entries = [] if root is None else [e for e in root.iter() if e.tag in _ENTRY_TAGS]
    return entries, namespaces


def _qualified(name: str, namespaces: dict[str, str], *, setting: str, url: str,
               element: bool = True) -> str:
    """``prefix:name`` as ElementTree's ``{uri}name``, names written as the feed writes them:
    a bare element name is in the feed's default namespace (Atom's, in an Atom feed; none in
    RSS 2.0), a bare attribute name in none."""
    prefix, _, local = name.rpartition(":")
    if not prefix:
        return f"{{{namespaces['']}}}{name}" if element and namespaces.get("") else name
    if prefix not in namespaces:
        raise LayoutChanged(f"{setting}: the prefix {prefix!r} is not declared in {url}")
    return f"{{{namespaces[prefix]}}}{local}"


def _found(context: ET.Element, path: str, namespaces: dict[str, str], *, descendants: bool,
           setting: str, url: str) -> list[tuple[ET.Element, str]]:
    """Each element ``path`` finds from ``context`` (anywhere below it, or its children's
    path), with the text or attribute the path ends in; empty values are skipped."""
    steps, _, attribute = path.partition("@")
    steps = steps.rstrip("/")
    holders = [context]
    if steps:
        qualified = "/".join(_qualified(step, namespaces, setting=setting, url=url)
                             for step in steps.split("/"))
        holders = context.findall((".//" if descendants else "./") + qualified)
    key = _qualified(attribute, namespaces, setting=setting, url=url,
                     element=False) if attribute else None
    found = []
    for holder in holders:
        value = holder.get(key) if key else "".join(holder.itertext())
        if value and value.strip():
            found.append((holder, " ".join(value.split())))
    return found


def _element_values(entry: ET.Element, paths: ElementPaths, namespaces: dict[str, str], *,
                    url: str) -> tuple[tuple[str, ...], str | None]:
    """An entry's deadlines (each with the time beside it) and opening date, as written."""
    deadlines: list[str] = []
    if paths.deadline:
        parents = {child: parent for parent in entry.iter() for child in parent}
        for holder, day in _found(entry, paths.deadline, namespaces, descendants=True,
                                  setting="deadline_element", url=url):
            clock: list[tuple[ET.Element, str]] = []
            if paths.deadline_time:
                # an attribute of the deadline's element, or an element within the element
                # whose attribute the deadline is; else an element beside the deadline's
                in_holder = paths.deadline_time.startswith("@") or "@" in paths.deadline
                beside = holder if in_holder else parents.get(holder, entry)
                clock = _found(beside, paths.deadline_time, namespaces, descendants=False,
                               setting="deadline_time_element", url=url)
            deadlines.append(f"{day} {clock[0][1]}" if clock else day)
    opening = None
    if paths.opening:
        found = _found(entry, paths.opening, namespaces, descendants=True,
                       setting="opening_element", url=url)
        opening = found[0][1] if found else None
    return tuple(deadlines), opening


def parse_feed(body: bytes, *, url: str, elements: ElementPaths | None = None) -> ListPage[FeedItem]:
    """A feed's items and its next page; LayoutChanged when ``body`` is no RSS or Atom.

    With ``elements``, each item also carries the values those elements hold in its entry.
    """
    import feedparser  # here: loading the source's settings stays cheap

    text_head = body[:20000].decode("utf-8", "replace")
    reason = challenge_reason(text_head)
    if reason is not None:
        raise BotChallenge(f"{reason} at {url}")
    feed = strip_junk(body)
    parsed: Any = feedparser.parse(feed, response_headers={"content-location": url})
    if not parsed.get("version"):
        problem = parsed.get("bozo_exception") or "no <rss>, <feed> or <rdf:RDF> element"
        raise LayoutChanged(f"{url} is not an RSS or Atom feed ({problem})")
    values: list[tuple[tuple[str, ...], str | None]] = [((), None)] * len(parsed.entries)
    if elements is not None:
        entries, namespaces = _xml_entries(feed, url=url)
        if len(entries) != len(parsed.entries):
            raise LayoutChanged(f"{url}: {len(entries)} entry elements in the XML but "
                                f"{len(parsed.entries)} feed items; cannot read their elements")
        values = [_element_values(e, elements, namespaces, url=url) for e in entries]
    items = []
    for entry, (deadline_texts, opening_text) in zip(parsed.entries, values, strict=True):
        link = entry.get("link") or None
        content = entry.get("content") or []
        raw = entry.get("summary") or (content[0].get("value") if content else "") or ""
        title = one_line(entry.get("title") or "")
        key = entry.get("id") or link or hashlib.sha256(title.encode()).hexdigest()[:16]
        items.append(FeedItem(id=str(key), title=title, link=link, text=html_to_text(raw),
                              deadline_texts=deadline_texts, opening_text=opening_text))
    next_url = None
    for link in parsed.feed.get("links", []):
        if link.get("rel") == "next" and link.get("href"):
            next_url = str(link["href"])
    return ListPage(items, next_url)


def record_from_item(item: FeedItem, *, source: str, settings: RssSettings, now: datetime) -> CallRecord:
    """One feed item as a call; an item whose deadline text does not parse is invalid, one
    whose deadline names a day only relative to today ("demain", "tomorrow") has none.

    The deadlines ``deadline_element`` holds win; the text pattern is read only when the
    entry has none. Status follows from the dates (``status_for``): a tender whose
    deadline has passed is closed.
    """
    zone = zone_named(settings.timezone)
    deadlines: tuple[datetime, ...] = ()
    for raw in item.deadline_texts:
        deadline = parse_date(raw, zone=zone, language=settings.language)
        if deadline is None:
            raise ValueError(f"{item.id}: unparseable deadline {raw!r} in "
                             f"{settings.deadline_element}")
        deadlines += (deadline,)
    opening = None
    if item.opening_text:
        opening = parse_date(item.opening_text, zone=zone, language=settings.language,
                             end_of_day=False)
        if opening is None:
            raise ValueError(f"{item.id}: unparseable opening date {item.opening_text!r} in "
                             f"{settings.opening_element}")
    if settings.deadline_pattern and not deadlines:
        match = re.search(settings.deadline_pattern, f"{item.title}\n{item.text}", re.IGNORECASE)
        if match:
            raw = match.group(1) if match.groups() else match.group(0)
            deadline = parse_date(raw, zone=zone, language=settings.language)
            if deadline is None and not names_relative_day(raw, language=settings.language):
                raise ValueError(f"{item.id}: unparseable deadline {raw.strip()!r}")
            deadlines = (deadline,) if deadline else ()
    native_id = require(item.id, "id", item.id or "?")
    return configured_record(settings, source=source, native_id=native_id,
                             title=require(item.title, "title", item.id), summary=item.text,
                             url=item.link, opening=opening, deadlines=deadlines, now=now)


class RssSource(HttpSource[RssSettings]):
    """One configured feed."""

    #: feeds give no deadlines as such: drift detection judges titles and links only
    expected_fields = ("title", "url")

    async def read(self, batch: RecordBatch, now: datetime, progress: Progress | None) -> None:
        pager = Pager(self.settings.url, self.settings.max_pages, progress)
        for url in pager:
            response = await fetch_response(self.http, url)
            page = parse_feed(response.content, url=url, elements=self.settings.element_paths())
            for item in page.items:  # a failure on a later page keeps this one's calls
                batch.add(item.id, functools.partial(
                    record_from_item, item, source=self.name, settings=self.settings, now=now))
            pager.follow(page.next_url)


PLUGIN = SourcePlugin(kind="rss", settings=RssSettings, create=RssSource, description=(
    "any RSS or Atom feed of calls, with the programme, country and region you set"))
