"""EU Funding & Tenders Portal (SEDIA search API): Horizon Europe, Digital Europe, SMP and more.

Manifest
- URL: POST https://api.tech.ec.europa.eu/search-api/prod/rest/search (``search_url``),
  fallback GET .../referenceData/grantsTenders.json (``bulk_url``).
- Returns: open and forthcoming grant topics (type 1), cascade calls (type 8), external
  actions (type 2, when configured), for the configured programmes.
- Changes: continuously; the portal re-indexes daily. Default interval 6h.
- Quirks: see shared/sources/ft_portal.md and the parser's docstrings.
- Fixtures: tests/fixtures/ft_portal/.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from tracker import programmes
from tracker.models import ScrapeResult
from tracker.ports import HttpClient, Progress, SourcePlugin, SourceSettings


class FtPortalSettings(SourceSettings):
    """Settings of ``[sources.ft_portal]``."""

    search_url: str = "https://api.tech.ec.europa.eu/search-api/prod/rest/search"
    bulk_url: str = (
        "https://ec.europa.eu/info/funding-tenders/opportunities/data/referenceData/grantsTenders.json"
    )
    api_key: str = Field("SEDIA", description="the portal front end's public key")
    programmes: tuple[str, ...] = (
        "Horizon Europe", "Digital Europe", "Single Market Programme", "EU4Health", "LIFE",
        "CEF", "Erasmus+", "Creative Europe", "Innovation Fund", "I3", "EMFAF",
    )
    types: tuple[str, ...] = ("1", "8")
    page_size: int = Field(100, ge=1, le=100, description="the API caps pages at 100")

    @field_validator("programmes")
    @classmethod
    def _known_programmes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            programme = programmes.lookup(name)
            if programme is None:
                raise ValueError(programmes.unknown_programme_message(name))
            if not programme.portal_codes:
                raise ValueError(f"{programme.name} is not published on the portal")
        return value

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - {"1", "2", "8"})
        if unknown:
            raise ValueError(f"unknown portal types {unknown}; use 1 (topics), 2, 8 (cascade)")
        return value


class FtPortalSource:
    """One configured instance of the portal source."""

    def __init__(self, name: str, settings: FtPortalSettings, http: HttpClient) -> None:
        self.name = name
        self.settings = settings
        self.http = http

    async def scrape(self, now: datetime, progress: Progress | None = None) -> ScrapeResult:
        raise NotImplementedError("ft_portal scraping lands with issue 3")


def _create(name: str, settings: Any, http: HttpClient) -> FtPortalSource:
    return FtPortalSource(name, settings, http)


PLUGIN = SourcePlugin(
    kind="ft_portal",
    description="EU Funding & Tenders Portal search API (types 1 and 8, bulk-file fallback)",
    settings=FtPortalSettings,
    create=_create,
)
