"""Conditional requests: what a source's last good run fetched, and when the next may skip it.

Miniflux's model (``If-None-Match`` / ``If-Modified-Since`` with the validators a feed last
answered with, nothing parsed or stored on a 304) made safe for sources that are more than
one document: a list of several pages, or a list whose calls are read on their own pages.

**The rule.** A source run is skipped as *not modified* only when every GET its last good
run made answers 304 now. Each run records, in order, the URL of every GET it made and the
``ETag`` and ``Last-Modified`` each answer carried (``Validator``). After the run is stored,
and only when it was an ok run whose every request was a plain GET with a validator, that
list replaces the source's stored one; any other run clears it. The next run first asks
each stored URL again, conditionally, one request each, in order:

- all 304: nothing the last run read has changed, so the same parse of the same pages gives
  the same records. The source's calls are left as they are (nothing is new, changed, or
  missing, so nothing is struck or closed) and the run is logged as ok, with the item count
  of the run it repeats;
- the first answer that is not a 304 (a 200, an error of any kind) ends the check, and the
  run fetches everything unconditionally, as if no validators were stored (the 200's body is
  handed to the source, not fetched twice).

Why not "conditional on the first page only, a 304 there means the whole source is
unchanged" (the simpler rule)? It is wrong for two shapes callwatch reads: a list whose new
calls land on a later page (sorted by deadline, a call added at the end leaves page 1 as it
was), and a list of links whose deadlines are on each call's own page (ECCP, EIT, the
agency sites: an extended deadline changes the detail page, never the list). Asking for
every page costs one 304 per page, still without a body, a parse or a write; and a page
set that is partly 304 and partly 200 is never pieced together from old and new halves:
any 200 means a whole new fetch. A request that cannot be asked conditionally (a POST: the
portal's and interreg.eu's search APIs; a streamed bulk file; a GET with parameters of its
own) or an answer without a validator leaves the run with nothing to store, so such a
source is always fetched in full.

The records also depend on the source's settings (selectors, patterns, the programme it
sets) and on the parser's version, not only on the pages: the stored list carries a key of
both (``fetch_key``), and a list stored under another key is not used.

``http.conditional_requests = false`` sends no conditional request at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Validator:
    """What one GET answered with that lets the next ask "changed since?" (RFC 9110 §8.8)."""

    url: str
    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        """The request headers that ask whether ``url`` changed since this answer."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


def validator_of(url: str, headers: Mapping[str, str]) -> Validator | None:
    """The validators an answer to ``url`` carried (``headers`` as a case-insensitive
    mapping, like httpx's), or None when it carried neither."""
    etag = (headers.get("ETag") or "").strip() or None
    last_modified = (headers.get("Last-Modified") or "").strip() or None
    if etag is None and last_modified is None:
        return None
    return Validator(url, etag, last_modified)


def fetch_key(settings_json: str, version: str) -> str:
    """What a stored list of validators is valid for: the source's settings and the version
    of callwatch that parsed the pages (a changed selector or parser changes the records of
    the very same pages)."""
    return hashlib.sha256(f"{version}\n{settings_json}".encode()).hexdigest()
