"""Fetching web pages for the HTML sources, and telling a bot-challenge page from content.

A Cloudflare or WAF check ("Just a moment...", "Verify you are human") is not an empty list:
it fails the run with that reason, so `callwatch sources` shows why, instead of recording
zero calls. The shared client (scrapers/_http.py) raises SourceRejected on a 403 before the
body is seen, so a 403 is reported as "blocked (HTTP 403, often a bot challenge)".
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from tracker.errors import SourceRejected

if TYPE_CHECKING:  # BeautifulSoup and httpx load where a page is parsed and fetched
    import httpx
    from bs4 import BeautifulSoup

    from tracker.ports import HttpClient

#: Phrases that only bot-challenge and block pages carry (checked case-insensitively).
CHALLENGE_MARKERS = (
    "<title>just a moment...</title>",
    "attention required! | cloudflare",
    "verify you are human",
    "checking your browser before accessing",
    "cf-browser-verification",
    "/cdn-cgi/challenge-platform/",
    "enable javascript and cookies to continue",
    "ddos protection by",
    "request unsuccessful. incapsula incident",
    "<title>access denied</title>",
)


class BotChallenge(SourceRejected):
    """The site answered with a bot-challenge or block page: every further request will too."""


def challenge_reason(body: str) -> str | None:
    """Why ``body`` is a bot-challenge or block page, or None when it looks like content."""
    head = body[:20000].casefold()
    for marker in CHALLENGE_MARKERS:
        if marker in head:
            return f"bot challenge page ({marker.strip('<>/').replace('title>', '')!r})"
    return None


async def fetch_page(http: HttpClient, url: str, method: str = "GET", **kwargs: Any) -> str:
    """The text of ``url``; SourceRejected when the answer is a block or challenge page."""
    return (await fetch_response(http, url, method, **kwargs)).text


async def fetch_response(http: HttpClient, url: str, method: str = "GET", **kwargs: Any
                         ) -> httpx.Response:
    """The response from ``url`` (bytes as sent: feeds declare their own encoding)."""
    try:
        response = await http.request(method, url, **kwargs)
    except SourceRejected as exc:
        if exc.status == 403:
            raise BotChallenge(f"blocked at {url} (HTTP 403, often a bot challenge)",
                               status=403) from exc
        raise
    reason = challenge_reason(response.content[:20000].decode("utf-8", "replace"))
    if reason is not None:
        raise BotChallenge(f"{reason} at {url}", status=response.status_code)
    return response


def soup_of(markup: str) -> BeautifulSoup:
    """A parsed page (the standard-library parser: no native dependency)."""
    from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning  # only to parse a page

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        return BeautifulSoup(markup, "html.parser")


def absolute(base: str, href: str | None) -> str | None:
    """``href`` made absolute against ``base``; None for empty, javascript: and mailto: links."""
    if not href or not href.strip():
        return None
    href = href.strip()
    if href.startswith(("javascript:", "mailto:", "tel:", "#")):
        return None
    return urljoin(base, href)


def same_site(url: str, other: str) -> bool:
    """Whether two URLs are on one host (``www.`` ignored)."""
    def host(value: str) -> str:
        return urlsplit(value).netloc.casefold().removeprefix("www.")
    return host(url) == host(other)
