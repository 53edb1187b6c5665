"""What the source classes share: holding their name, settings and client, and detail pages.

A plugin's ``create`` is called with the instance's name, its settings and the shared HTTP
client, and must give a ``Source``. ``HttpSource`` takes exactly those three, so a source
class built on it is its own factory: ``PLUGIN = SourcePlugin(..., create=TheSource)``.

Sources that read a list and then each call's own page (ECCP, the ECL agency sites, EIT)
fetch the pages through ``fetch_detail``, so that one failed page costs that call only,
is said in the run's notes and keeps the run from counting as complete (a call missing
from an incomplete run is not taken for closed), while a bot challenge still fails the
whole run: every further request would meet it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from scrapers._pages import BotChallenge, fetch_page
from scrapers._records import RecordBatch
from tracker.errors import CallwatchError
from tracker.ports import HttpClient, SourceSettings

S = TypeVar("S", bound=SourceSettings)


class HttpSource(Generic[S]):
    """One configured instance of a source that reads the web through the shared client."""

    def __init__(self, name: str, settings: S, http: HttpClient) -> None:
        self.name = name
        self.settings = settings
        self.http = http


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


def must_compile(value: str, compile: Callable[[str], object],
                 errors: type[Exception], what: str) -> None:
    """ValueError saying ``value`` is not ``what`` when ``compile`` refuses it: a setting
    (a CSS selector, a pattern) is checked when the configuration is read, not on a scrape."""
    try:
        compile(value)
    except errors as exc:
        raise ValueError(f"not {what}: {exc}") from exc
