"""The small interfaces between the core and its edges: sources and the HTTP client they share.

A source plugin is found through the ``callwatch.sources`` entry-point group (built-ins are
registered the same way, in pyproject.toml). It declares its settings model and builds a
``Source`` for each configured instance; the core then only calls ``scrape``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from tracker.dates import format_duration, parse_duration
from tracker.models import ScrapeResult


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


#: A duration in config: "6h", "30s", "1d12h", or a number of seconds.
Duration = Annotated[
    timedelta, BeforeValidator(_duration), PlainSerializer(format_duration, return_type=str)
]


class SourceSettings(BaseModel):
    """Settings every source has; each plugin extends this with its own keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str | None = Field(None, description="which plugin serves this source (default: its name)")
    enabled: bool = Field(True, description="scrape this source on schedule and with `scrape`")
    interval: Duration = Field(timedelta(hours=6), description="how often to scrape, e.g. 6h")


class Progress(Protocol):
    """Where a source reports page progress (a progress bar on a terminal, or nothing)."""

    def __call__(self, done: int, total: int | None) -> None: ...


class HttpClient(Protocol):
    """The shared polite HTTP client (scrapers/_http.py): pacing, retries, size cap."""

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response: ...


class Source(Protocol):
    """One configured source instance."""

    name: str

    async def scrape(self, now: datetime, progress: Progress | None = None) -> ScrapeResult:
        """Fetch and parse every open and forthcoming call; never raise for one bad record."""
        ...


@dataclass(frozen=True)
class SourcePlugin:
    """What a source module exports as ``PLUGIN``."""

    kind: str
    description: str
    settings: type[SourceSettings]
    create: Callable[[str, Any, HttpClient], Source]
