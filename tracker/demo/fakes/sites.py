"""Replay servers for the sources beyond the portal: stored pages served on 127.0.0.1.

``FixtureSite`` serves files (HTML pages, feeds, JSON) by path and query string, so an HTML
list with paging and detail pages, or an RSS feed, replays exactly as stored; ``{{BASE}}``
in a served text file becomes ``base`` (the public site's address when set, as in the
demo, else the server's own URL), for absolute links in the pages.
``InterregSearch`` answers interreg.eu's Algolia queries page by page and refuses any key
but its own, as the real index does when the public key rotates.

Tests and ``callwatch demo`` point the real sources at them through the URL settings a user
would change (``list_url``, ``url``, ``search_url``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from tracker.demo.fakes._server import FakeServer, Reply, Request

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".xml": "application/rss+xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/json",
}


def route_key(path_and_query: str) -> str:
    """``/list?page=1&type=x`` with its query sorted, so routes match in any order."""
    parts = urlsplit(path_and_query)
    query = sorted(parse_qsl(parts.query, keep_blank_values=True))
    return parts.path + ("?" + urlencode(query) if query else "")


def _request_key(request: Request) -> str:
    query = sorted((k, v) for k, values in request.query.items() for v in values)
    return request.path + ("?" + urlencode(query) if query else "")


class FixtureSite(FakeServer):
    """Serve ``routes`` (path with optional query → file or Reply); anything else is a 404."""

    def __init__(self, routes: Mapping[str, Path | Reply]) -> None:
        super().__init__()
        self.routes = {route_key(k): v for k, v in routes.items()}
        #: what ``{{BASE}}`` becomes: None for this server's own URL
        self.base: str | None = None

    def set_route(self, path_and_query: str, target: Path | Reply) -> None:
        """Replace what one route serves (a site changing between two runs)."""
        self.routes[route_key(path_and_query)] = target

    def handle(self, request: Request) -> Reply:
        target = self.routes.get(_request_key(request)) or self.routes.get(request.path)
        if target is None:
            return Reply.text("<html><body><h1>Page not found</h1></body></html>", 404,
                              content_type="text/html; charset=utf-8")
        if isinstance(target, Reply):
            return target
        body = target.read_bytes()
        content_type = _TYPES.get(target.suffix.lower(), "application/octet-stream")
        if content_type.startswith(("text/", "application/rss", "application/atom")):
            body = body.replace(b"{{BASE}}", (self.base or self.url).encode())
        return Reply(200, body, {"Content-Type": content_type})


class InterregSearch(FakeServer):
    """interreg.eu's Algolia multi-query endpoint, replaying one stored answer per page.

    ``pages[n]`` answers a request for page n (the last one answers any later page). A key
    other than ``api_key`` gets Algolia's 403; ``status`` forces every answer's status.
    """

    PATH = "/1/indexes/*/queries"

    def __init__(self, pages: list[Path], *, api_key: str = "replay-search-key",
                 status: int | None = None) -> None:
        super().__init__()
        self.pages = pages
        self.api_key = api_key
        self.status = status

    @property
    def search_url(self) -> str:
        return self.url + self.PATH

    def handle(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != self.PATH:
            return Reply.json({"message": "Not found", "status": 404}, 404)
        if self.status is not None:
            return Reply.json({"message": "forced", "status": self.status}, self.status)
        key = (request.query.get("x-algolia-api-key") or [""])[0]
        if key != self.api_key:
            return Reply.json({"message": "Invalid Application-ID or API key", "status": 403}, 403)
        body = request.json()
        page = int(body["requests"][0].get("page") or 0)
        answer = json.loads(self.pages[min(page, len(self.pages) - 1)].read_text(encoding="utf-8"))
        return Reply.json(answer)
