"""interreg.eu call search: the open and forthcoming calls of every Interreg programme.

Manifest
- URL: POST https://2e032drcns-dsn.algolia.net/1/indexes/*/queries (``search_url``), the
  Algolia index ``prod_en-us_content`` behind https://interreg.eu/calls-for-projects/,
  queried with the site's public search-only key (``api_key``).
- Returns: one record per call page (``contentType:callForProjectsPage``) with status Open
  or Forthcoming: title, status, opening date, deadline, the programme's name
  (sub_programme; programme "Interreg", policy family Cohesion Policy), themes (tags),
  target audience, eligible countries and NUTS regions, the programme's own call url.
- Changes: when a programme edits its call page; once a day is enough (default 1d).
- Quirks: the public key rotates, which shows as HTTP 403 or 404: the run then fails with
  "interreg.eu rejected the search key; set sources.interreg.api_key" (put the new key in
  config or CALLWATCH_SOURCES__INTERREG__API_KEY). ``nbHits`` above the hits received
  means the run is partial. Deadlines are stored as ``T00:00:00Z`` for a bare date, read
  here as the end of that day in ``timezone``. NUTS "EL"/"UK" are ISO "GR"/"GB".
  Recipe and evidence: shared/sources/other_sources.md §2A.
- Fixtures: tests/fixtures/interreg/ (the real abridged response, a changed shape, invalid items);
  paging in tracker/demo/fakes/recordings/interreg/ (also served by the demo).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from scrapers._dates import ZoneName, parse_iso, zone_named
from scrapers._records import RecordBatch, count_of, require
from scrapers._source import HttpSource
from tracker.config import WebUrl
from tracker.errors import LayoutChanged, SourceRejected
from tracker.models import CallRecord, ScrapeResult
from tracker.ports import Duration, Progress, SourcePlugin, SourceSettings
from tracker.status import status_for

KEY_REJECTED = "interreg.eu rejected the search key; set sources.interreg.api_key"
KEY_MISSING = "no interreg.eu search key configured; set sources.interreg.api_key"

_NUTS = re.compile(r"^[A-Z]{2}[0-9A-Z]{0,3}$")
_NUTS_TO_ISO = {"EL": "GR", "UK": "GB"}


class InterregSettings(SourceSettings):
    """Settings of ``[sources.interreg]``."""

    interval: Duration = Field(timedelta(days=1), description="how often to scrape; calls change rarely")
    search_url: WebUrl = Field("https://2e032drcns-dsn.algolia.net/1/indexes/*/queries",
                            description="Algolia multi-query endpoint of interreg.eu")
    app_id: str = Field("2E032DRCNS", description="Algolia application id of interreg.eu")
    index: str = Field("prod_en-us_content", description="Algolia index holding the call pages")
    api_key: str = Field("", description=(
        "interreg.eu's public search-only key, which rotates: read it from the browser's request "
        "to *.algolia.net on https://interreg.eu/calls-for-projects/. A rejected key (403/404) "
        "fails the run saying so"))
    site_url: WebUrl = Field("https://interreg.eu", description="base of relative contentUrl links")
    hits_per_page: int = Field(500, ge=1, le=1000, description="Algolia caps pages at 1000")
    max_pages: int = Field(5, ge=1, le=50, description="pages to walk at most")
    timezone: ZoneName = Field("Europe/Brussels", description="zone of bare-date deadlines")


@dataclass(frozen=True)
class SearchPage:
    """One page of the Algolia answer."""

    hits: list[dict[str, Any]]
    nb_hits: int
    nb_pages: int


def query_body(index: str, hits_per_page: int, page: int) -> dict[str, Any]:
    """The JSON body of one search: open and forthcoming call pages, empty query."""
    return {"requests": [{
        "indexName": index,
        "filters": "contentType:callForProjectsPage AND (callStatus:Open OR callStatus:Forthcoming)",
        "hitsPerPage": hits_per_page,
        "page": page,
        "query": "",
    }]}


def parse_response(payload: Any) -> SearchPage:
    """``results[0].hits`` and its counts; LayoutChanged when the answer has another shape."""
    try:
        result = payload["results"][0]
        hits = result["hits"]
        nb_hits = count_of(result["nbHits"])
    except (KeyError, IndexError, TypeError) as exc:
        raise LayoutChanged(f"interreg.eu answer has no results[0].hits/nbHits ({exc!r})") from exc
    if nb_hits is None:  # text, a fraction, or inf/nan (1e400 reads as inf)
        raise LayoutChanged(f"interreg.eu nbHits is not a count: {result['nbHits']!r}")
    if not isinstance(hits, list):
        raise LayoutChanged("interreg.eu results[0].hits is not a list")
    nb_pages = count_of(result.get("nbPages")) or 1
    return SearchPage([h for h in hits if isinstance(h, dict)], nb_hits, nb_pages)


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(v) for v in value if isinstance(v, str | int) and not str(v).startswith("...")]


def _codes(value: Any) -> list[str]:
    codes = [c.strip().upper() for c in _strings(value)]
    return [_NUTS_TO_ISO.get(c, c) if len(c) == 2 else c for c in codes if _NUTS.match(c)]


def record_from_hit(hit: dict[str, Any], *, source: str, now: datetime, settings: InterregSettings
                    ) -> CallRecord:
    """One call page of the index as a CallRecord (raises on a hit that cannot be one)."""
    native_id = require(str(hit.get("objectID") or hit.get("pageId") or ""), "objectID", "?")
    zone = zone_named(settings.timezone)
    title = require(hit.get("title") or hit.get("nodeName"), "title", native_id)
    opening = parse_iso(hit.get("callOpenDate"), zone=zone, midnight_is_date=True, end_of_day=False)
    deadline_raw = hit.get("callDeadlineDate")
    deadline = parse_iso(deadline_raw, zone=zone, midnight_is_date=True)
    if deadline_raw and deadline is None:
        raise ValueError(f"{native_id}: unparseable callDeadlineDate {deadline_raw!r}")
    deadlines = (deadline,) if deadline else ()
    programmes = _strings(hit.get("associatedProgrammes"))
    url = hit.get("callExternalUrl") or None
    if not url and hit.get("contentUrl"):
        url = settings.site_url.rstrip("/") + "/" + str(hit["contentUrl"]).lstrip("/")
    return CallRecord(
        source=source,
        native_id=native_id,
        title=title,
        status=status_for(opening, deadlines, now, hit.get("callStatus")),
        programme="Interreg",
        sub_programme="; ".join(programmes) or None,
        summary=str(hit.get("description") or ""),
        url=url,
        opening_date=opening,
        deadlines=deadlines,
        tags=tuple(_strings(hit.get("callThemes")) or _strings(hit.get("themes"))),
        countries=tuple(_codes(hit.get("callEligibleCountryNuts"))),
        regions=tuple(_codes(hit.get("callEligibleRegionNuts"))),
        audience=tuple(_strings(hit.get("targetAudience"))),
        language="en",
    )


class InterregSource(HttpSource[InterregSettings]):
    """One configured instance of the interreg.eu call search."""

    async def _page(self, page: int) -> SearchPage:
        s = self.settings
        try:
            response = await self.http.request(
                "POST", s.search_url,
                params={"x-algolia-application-id": s.app_id, "x-algolia-api-key": s.api_key},
                json=query_body(s.index, s.hits_per_page, page),
            )
        except SourceRejected as exc:
            if exc.status in (403, 404):
                raise SourceRejected(KEY_REJECTED, status=exc.status) from exc
            raise
        try:
            payload = response.json()
        except ValueError as exc:
            raise LayoutChanged(f"interreg.eu answered with something other than JSON: {exc}") from exc
        return parse_response(payload)

    async def scrape(self, now: datetime, progress: Progress | None = None) -> ScrapeResult:
        """Without a key, no request: the run fails as a rejected key's would, unlogged."""
        if not self.settings.api_key:
            batch = RecordBatch(self.name)
            batch.notes.append("error type: SourceRejected")
            return batch.result(complete=False, error=KEY_MISSING)
        return await super().scrape(now, progress)

    async def read(self, batch: RecordBatch, now: datetime, progress: Progress | None) -> None:
        received = 0
        page = await self._page(0)
        pages = [page]
        while len(pages) < min(page.nb_pages, self.settings.max_pages) and page.hits:
            if progress:
                progress(len(pages), page.nb_pages)
            pages.append(await self._page(len(pages)))
        nb_hits = pages[0].nb_hits
        for one in pages:
            for hit in one.hits:
                received += 1
                batch.add(str(hit.get("objectID", "?")), functools.partial(
                    record_from_hit, hit, source=self.name, now=now, settings=self.settings))
        if progress:
            progress(len(pages), len(pages))
        if nb_hits > received:
            batch.notes.append(f"interreg.eu reports {nb_hits} calls but returned {received}")
            batch.complete = False


PLUGIN = SourcePlugin(kind="interreg", settings=InterregSettings, create=InterregSource, description=(
    "interreg.eu call search (Algolia): open and forthcoming calls of all Interreg programmes"))
