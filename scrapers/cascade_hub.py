"""Cascade Funding Hub (cascadefunding.eu, by Sploro): open FSTP calls, from JSON in the page.

Manifest
- URL: https://cascadefunding.eu/open-calls/ (``url``); one page holds every open call.
- Returns: one record per item of the inline ``const dataProposals = [...]`` array (and of
  ``dataEvaluators``/``dataMentors`` when ``arrays`` asks): title, permalink, summary
  (description, long description and the project's own links), deadline (``closes_object``
  "YYYY-MM-DD HH:MM:SS", else ``closes`` dd/mm/yyyy), maximum funding per project, type of
  beneficiary (audience), domains and technologies (tags); programme "Cascade funding".
- Changes: "15-25 open sub-calls in any month"; default interval 1d.
- Quirks: a third-party aggregator with unknown terms: the project's own links are kept
  in the summary as the authoritative source. No paging: the page embeds everything; a
  page without the array is a changed layout (perhaps rendered by JS now), a challenge
  page fails the run. Portal cascade links in the links (``competitive-calls-cs/<id>``)
  let dedupe merge these with the portal's type-8 records. Recipe: other_sources.md §2F.
- Fixtures: tracker/demo/fakes/recordings/cascade_hub/ (the page, also served by the demo);
  tests/fixtures/cascade_hub/ (a changed layout). Both written in the real shape: no
  recording of the site was found (tests/fixtures/README.md).
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from scrapers._dates import ZoneName, parse_date, parse_with_format, zone_named
from scrapers._pages import fetch_page
from scrapers._records import RecordBatch, amount_eur, require
from scrapers._source import HttpSource
from tracker.config import WebUrl
from tracker.errors import InvalidRecord, LayoutChanged
from tracker.models import CallRecord
from tracker.plaintext import html_to_text
from tracker.ports import Duration, Progress, SourcePlugin, SourceSettings
from tracker.status import status_for

ARRAYS = ("dataProposals", "dataEvaluators", "dataMentors")


class CascadeHubSettings(SourceSettings):
    """Settings of ``[sources.cascade_hub]``."""

    interval: Duration = Field(timedelta(days=1), description="how often to scrape")
    url: WebUrl = Field("https://cascadefunding.eu/open-calls/", description="the open-calls page")
    arrays: tuple[str, ...] = Field(("dataProposals",),
                                    description="embedded arrays to read: dataProposals, "
                                                "dataEvaluators (expert calls), dataMentors")
    timezone: ZoneName = Field("Europe/Brussels", description="zone of the closing dates")


def embedded_array(markup: str, name: str) -> list[dict[str, Any]] | None:
    """The JSON array assigned to ``const <name> =`` in the page, or None when absent."""
    match = re.search(rf"\b(?:const|let|var)\s+{re.escape(name)}\s*=\s*", markup)
    if match is None:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(markup, match.end())
    except json.JSONDecodeError as exc:
        raise LayoutChanged(f"{name} in the page is not JSON any more ({exc.msg})") from exc
    if not isinstance(value, list):
        raise LayoutChanged(f"{name} in the page is not an array")
    return [item for item in value if isinstance(item, dict)]


def parse_page(markup: str, arrays: tuple[str, ...] = ("dataProposals",)) -> list[dict[str, Any]]:
    """Every item of the wanted arrays; LayoutChanged when the page has no dataProposals."""
    items: list[dict[str, Any]] = []
    for name in arrays:
        found = embedded_array(markup, name)
        if found is None:
            if name == "dataProposals":
                raise LayoutChanged("no `const dataProposals = [...]` in the open-calls page")
            continue
        items.extend(found)
    return items


def _values(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    out = []
    for entry in value:
        text = entry.get("value") if isinstance(entry, dict) else entry
        if isinstance(text, str | int) and str(text).strip():
            out.append(html_to_text(str(text)))
    return out


def record_from_item(item: dict[str, Any], *, source: str, now: datetime,
                     timezone: str = "Europe/Brussels") -> CallRecord:
    """One embedded item as a call; a closing date that does not parse makes it invalid."""
    permalink = item.get("permalink") if isinstance(item.get("permalink"), str) else None
    native_id = str(item.get("id") or (permalink or "").rstrip("/").rsplit("/", 1)[-1] or "")
    native_id = require(native_id, "id", "?")
    zone = zone_named(timezone)
    closes_object = str(item.get("closes_object") or "")
    deadline = None
    if closes_object and not closes_object.endswith("00:00:00"):
        deadline = parse_with_format(closes_object, "%Y-%m-%d %H:%M:%S", zone=zone)
    if deadline is None:
        # the hub is in English: without a language, dateparser tries each of its ~200
        # locales on a text like "rolling" (2 s, most of `callwatch demo`)
        deadline = parse_date(str(item.get("closes") or closes_object[:10]), zone=zone,
                              language="en")
    if deadline is None:
        raise InvalidRecord(f"unparseable closing date {item.get('closes')!r}", native_id=native_id)
    funding = item.get("funding_per_project")
    raw = funding.get("raw") if isinstance(funding, dict) else None
    budget_max = amount_eur(raw) if isinstance(raw, int | float) else None  # inf, nan: unknown
    links = item.get("links")
    links = links if isinstance(links, dict) else {}
    link_lines = [f"{k}: {v}" for k, v in links.items() if isinstance(v, str) and v.startswith("http")]
    parts = [html_to_text(str(item.get("description") or "")),
             html_to_text(str(item.get("long_description") or ""))]
    summary = "\n\n".join(p for p in parts if p)
    if link_lines:
        summary += "\n\nLinks: " + " ".join(link_lines)
    call_type = str(item.get("call_type") or "Proposals")
    return CallRecord(
        source=source,
        native_id=native_id,
        title=require(html_to_text(str(item.get("title") or "")), "title", native_id),
        status=status_for(None, (deadline,), now),
        programme="Cascade funding",
        summary=summary,
        url=permalink,
        deadlines=(deadline,),
        budget_max_eur=budget_max,
        action_type=f"open call for {call_type.casefold()}",
        tags=(*_values(item.get("domains")), *_values(item.get("technologies"))),
        audience=tuple(_values(item.get("type_of_beneficiary"))),
        language="en",
    )


class CascadeHubSource(HttpSource[CascadeHubSettings]):
    """The Cascade Funding Hub's open-calls page."""

    async def read(self, batch: RecordBatch, now: datetime, progress: Progress | None) -> None:
        items = parse_page(await fetch_page(self.http, self.settings.url), self.settings.arrays)
        for item in items:
            batch.add(str(item.get("id") or item.get("permalink") or "?"), functools.partial(
                record_from_item, item, source=self.name, now=now, timezone=self.settings.timezone))
        if progress:
            progress(1, 1)


PLUGIN = SourcePlugin(kind="cascade_hub", settings=CascadeHubSettings, create=CascadeHubSource, description=(
    "Cascade Funding Hub (cascadefunding.eu): open FSTP calls embedded in the page"))
