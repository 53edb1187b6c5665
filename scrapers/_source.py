"""What the source classes share: holding their name, settings and client, one run's
records and its failure, and detail pages.

A plugin's ``create`` is called with the instance's name, its settings and the shared HTTP
client, and must give a ``Source``. ``HttpSource`` takes exactly those three, so a source
class built on it is its own factory: ``PLUGIN = SourcePlugin(..., create=TheSource)``.

A source built on it writes ``read``: fetch, parse and ``batch.add`` each item.
``HttpSource.scrape`` runs it with a fresh ``RecordBatch`` and turns a failure of the whole
run (a ``CallwatchError``) into a result that keeps what was read before it and says why
(``RecordBatch.failed``): every source fails the same way, written once.

Sources that read a list and then each call's own page (ECCP, the ECL agency sites, EIT)
fetch the pages through ``fetch_detail``, so that one failed page costs that call only,
is said in the run's notes and keeps the run from counting as complete (a call missing
from an incomplete run is not taken for closed), while a bot challenge still fails the
whole run: every further request would meet it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from scrapers._pages import BotChallenge, absolute, fetch_page, same_site
from scrapers._records import RecordBatch
from tracker.errors import CallwatchError, LayoutChanged
from tracker.models import ScrapeResult
from tracker.ports import HttpClient, Progress, SourceSettings

if TYPE_CHECKING:  # bs4 is loaded by the parsers, not when the configuration loads the sources
    from bs4 import BeautifulSoup, Tag

S = TypeVar("S", bound=SourceSettings)
T = TypeVar("T")


class HttpSource(Generic[S]):
    """One configured instance of a source that reads the web through the shared client."""

    def __init__(self, name: str, settings: S, http: HttpClient) -> None:
        self.name = name
        self.settings = settings
        self.http = http

    async def scrape(self, now: datetime, progress: Progress | None = None) -> ScrapeResult:
        """The records ``read`` added; on a ``CallwatchError`` (a rejected key, a challenge
        page, a changed layout) those read before it, with the error, never complete."""
        batch = RecordBatch(self.name)
        try:
            await self.read(batch, now, progress)
        except CallwatchError as exc:
            return batch.failed(exc)
        return batch.result()

    async def read(self, batch: RecordBatch, now: datetime, progress: Progress | None) -> None:
        """Fetch and parse this source's calls into ``batch``; raise a ``CallwatchError`` when
        the whole run fails (what was added before it is kept)."""
        raise NotImplementedError(f"{type(self).__name__} reads nothing: it must define read()")


class Pager:
    """The URLs of a paged list or feed: the first, then the next page each page links to
    (``follow``), until a page links to none, to a page already read (a loop), or
    ``max_pages`` were read. ``follow`` also reports the pages read so far to ``progress``."""

    def __init__(self, first: str | None, max_pages: int, progress: Progress | None) -> None:
        self.next = first
        self.max_pages = max_pages
        self.progress = progress
        #: pages handed out so far (the one being read included)
        self.count = 0

    @property
    def first(self) -> bool:
        """Whether the page being read is the first (a first page must not be empty)."""
        return self.count == 1

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        while self.next and self.next not in seen and self.count < self.max_pages:
            url = self.next
            seen.add(url)
            self.count += 1
            yield url

    def follow(self, next_url: str | None) -> None:
        """The page just read is done and links to ``next_url`` (None: the last page)."""
        self.next = next_url
        if self.progress:
            self.progress(self.count, None)


@dataclass(frozen=True)
class ListPage(Generic[T]):
    """One page of a list: what it lists (calls, or links to their pages), and the next
    page's URL."""

    items: list[T]
    next_url: str | None


class ListParser(Protocol[T]):
    """A source's parser of one list page; LayoutChanged when a ``first`` page lists nothing."""

    def __call__(self, markup: str, *, url: str, first: bool) -> ListPage[T]: ...


class ListSettings(Protocol):
    """The settings of a source that walks a list's pages."""

    @property
    def list_url(self) -> str: ...
    @property
    def max_pages(self) -> int: ...


async def all_listed(http: HttpClient, parse: ListParser[T], settings: ListSettings,
                       progress: Progress | None) -> list[T]:
    """What every page of a list lists, in order, from its first page through the next
    links (see ``Pager``), until a page lists nothing."""
    items: list[T] = []
    pager = Pager(settings.list_url, settings.max_pages, progress)
    for url in pager:
        page = parse(await fetch_page(http, url), url=url, first=pager.first)
        if not page.items:
            break
        items.extend(page.items)
        pager.follow(page.next_url)
    return items


async def fetch_detail(http: HttpClient, url: str, batch: RecordBatch) -> str | None:
    """The page at ``url``; None when it could not be read, which ``batch`` then notes and
    counts as a run that is not complete. A bot challenge is raised (it fails the run)."""
    try:
        return await fetch_page(http, url)
    except BotChallenge:
        raise
    except CallwatchError as exc:
        batch.complete = False
        batch.notes.append(f"detail page failed: {exc}")
        return None


def items_of(soup: BeautifulSoup, selector: str, *, required: bool, missing: str) -> list[Tag]:
    """The items of a list page; ``LayoutChanged(missing)`` when there are none but must be
    (a first page: a later one may be empty where the list ends)."""
    nodes = list(soup.select(selector))
    if required and not nodes:
        raise LayoutChanged(missing)
    return nodes


def link_of(anchor: Tag | None, base: str) -> str | None:
    """The absolute URL ``anchor``'s href gives (see ``absolute``); None without one."""
    href = anchor.get("href") if anchor is not None else None
    return absolute(base, href if isinstance(href, str) else None)


def outbound_links(main: Tag, url: str) -> list[str]:
    """The web links of a detail page that leave its site (the call's own page, its
    documents), in page order, each once."""
    links: list[str] = []
    for anchor in main.select("a[href]"):
        link = link_of(anchor, url)
        if link and link.startswith("http") and not same_site(link, url) and link not in links:
            links.append(link)
    return links


def must_compile(value: str, compile: Callable[[str], object],
                 errors: type[Exception], what: str) -> None:
    """ValueError saying ``value`` is not ``what`` when ``compile`` refuses it: a setting
    (a CSS selector, a pattern) is checked when the configuration is read, not on a scrape."""
    try:
        compile(value)
    except errors as exc:
        raise ValueError(f"not {what}: {exc}") from exc
