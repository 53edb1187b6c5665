"""Conditional GETs (tracker/conditional.py): a source whose pages all answer 304 is logged as an
ok run with its calls left as they were; anything else is fetched in full; validators are kept
only after an ok run is stored; ``http.conditional_requests = false`` asks nothing.

Real HTTP on 127.0.0.1: ``ConditionalSite`` serves the recorded feeds of tests/fixtures/rss/
as a server with validators does (an ETag of the body, a Last-Modified, 304 when asked with
a matching one).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scrapers._http import PoliteClient
from tests.sources_support import FIXTURES, NOW
from tracker.config import HttpSettings, Settings, load_config
from tracker.demo.fakes import RECORDINGS
from tracker.demo.fakes._server import Reply, Request
from tracker.demo.fakes.eccp import EccpSite
from tracker.demo.fakes.sites import FixtureSite
from tracker.models import RunOutcome, ScrapeResult
from tracker.pipeline import ScrapeOutcome, scrape_sources
from tracker.source_status import status_of
from tracker.store.calls import Store
from tracker.store.db import changes_table, http_validators_table
from tracker.store.revalidation import NOT_MODIFIED

RSS = FIXTURES / "rss"
FEED_PATH = "/cs/ostatni/web/rss"
#: recorded: a Drupal feed of calls with theme debug comments before the XML (3 calls, 1 invalid)
FEED = RSS / "dotaceeu_vyzvy_drupal_debug.xml"
ATOM_ROUTES: dict[str, Path | Reply] = {"/appels.atom": RSS / "occitanie_page1.atom",
                                        "/appels.atom?page=2": RSS / "occitanie_page2.atom"}
LAST_MODIFIED = "Tue, 01 Sep 2026 08:00:00 GMT"
CONDITIONAL = ("if-none-match", "if-modified-since")


class ConditionalSite(FixtureSite):
    """``FixtureSite`` answering as a server with validators does: each 200 carries an ETag
    (of its body) and a Last-Modified; a request whose If-None-Match names the current ETag
    (or, without If-None-Match, whose If-Modified-Since is the Last-Modified) gets a 304
    without a body."""

    def __init__(self, *site: Any, etag: bool = True) -> None:
        super().__init__(*site)  # the routes, or what a FixtureSite subclass takes
        self.etag = etag

    def handle(self, request: Request) -> Reply:
        reply = super().handle(request)
        if reply.status != 200:
            return reply
        validators = {"Last-Modified": LAST_MODIFIED}
        if self.etag:
            validators["ETag"] = '"' + hashlib.sha256(reply.body).hexdigest()[:16] + '"'
        asked = request.headers.get("if-none-match")
        if asked is not None:
            fresh = asked == validators.get("ETag")
        else:
            fresh = request.headers.get("if-modified-since") == LAST_MODIFIED
        if fresh:
            return Reply(304, b"", validators)
        return Reply(200, reply.body, {**reply.headers, **validators})


class ConditionalEccp(ConditionalSite, EccpSite):
    """The ECCP inventory replay (list pages, then each call's page), with validators."""


def conditional_headers(request: Request) -> dict[str, str]:
    return {name: request.headers[name] for name in CONDITIONAL if name in request.headers}


def settings_for(tmp_path: Path, sources: str, http: str = "") -> Settings:
    config = tmp_path / "callwatch.toml"
    config.write_text(f"[http]\ndelay = 0\nretries = 0\n{http}\n{sources}", encoding="utf-8")
    return load_config(config, environ={})


def feed_source(url: str, name: str = "feed", extra: str = "") -> str:
    """The recorded Czech feed's settings (the Occitanie feed's, for ``name="occitanie"``)."""
    place = ('country = "FR"\nlanguage = "fr"\ntimezone = "Europe/Paris"' if name == "occitanie"
             else 'country = "CZ"\nlanguage = "cs"\ntimezone = "Europe/Prague"')
    return f"""
[sources.{name}]
kind = "rss"
url = "{url}"
programme = "ERDF"
{place}
{extra}
"""


def scrape(settings: Settings, store: Store, name: str, when: datetime) -> ScrapeOutcome:
    [outcome] = asyncio.run(scrape_sources(settings, store, [name], clock=lambda: when))
    return outcome


def history_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(changes_table)).scalar_one())


def stored(engine: Engine, source: str) -> list[tuple[str, str | None, str | None]]:
    with engine.connect() as connection:
        return [(row.url, row.etag, row.last_modified) for row in connection.execute(
            sa.select(http_validators_table).where(http_validators_table.c.source == source)
            .order_by(http_validators_table.c.position))]


def test_a_second_scrape_of_an_unchanged_feed_is_one_304_that_leaves_the_calls_untouched(
        tmp_path: Path, store: Store) -> None:
    with ConditionalSite({FEED_PATH: FEED}) as site:
        settings = settings_for(tmp_path, feed_source(site.url + FEED_PATH))
        first = scrape(settings, store, "feed", NOW)
        assert first.report.outcome is RunOutcome.OK and first.report.new == 3
        calls = {c.id: c for c in store.list_calls(source="feed")}
        rows = history_rows(store.engine)
        later = [NOW + timedelta(hours=6 * n) for n in (1, 2, 3)]
        # three unchanged runs: two would be enough to mark a call that a complete run
        # missed as no longer listed
        again = [scrape(settings, store, "feed", when) for when in later]
        requests = list(site.requests)

    assert [r.method for r in requests] == ["GET"] * 4  # one request a run, nothing fetched twice
    assert conditional_headers(requests[0]) == {}
    [(url, etag, modified)] = stored(store.engine, "feed")
    assert url == site.url + FEED_PATH and etag is not None and modified == LAST_MODIFIED
    for request in requests[1:]:  # what the store kept is what each later run asked with
        assert conditional_headers(request) == {"if-none-match": etag,
                                                "if-modified-since": LAST_MODIFIED}
    for outcome in again:
        report = outcome.report
        assert report.outcome is RunOutcome.OK and report.changes == []
        assert (report.items_seen, report.invalid, report.new, report.changed) == (3, 1, 0, 0)
    assert history_rows(store.engine) == rows  # no change event: nothing new, changed or closed
    assert {c.id: c for c in store.list_calls(source="feed")} == calls  # every column as it was
    assert all(c.still_listed for c in calls.values())
    status = status_of(store, "feed")
    assert status.level == "green" and status.last_success == later[-1]
    assert store.runs("feed", limit=1)[0].notes == NOT_MODIFIED


def test_an_unchanged_run_repeats_the_counts_of_the_ok_run_it_confirms(
        tmp_path: Path, store: Store) -> None:
    """A failed run stored after the ok one, its validators not yet cleared (the process
    stopped between the two transactions), is not the run the 304s confirm."""
    with ConditionalSite({FEED_PATH: FEED}) as site:
        settings = settings_for(tmp_path, feed_source(site.url + FEED_PATH))
        scrape(settings, store, "feed", NOW)
        store.record_run("feed", ScrapeResult(complete=False, error="stopped"),
                         started_at=NOW + timedelta(hours=1), now=NOW + timedelta(hours=1))
        again = scrape(settings, store, "feed", NOW + timedelta(hours=6))
    assert store.runs("feed", limit=1)[0].notes == NOT_MODIFIED
    assert (again.report.items_seen, again.report.invalid) == (3, 1)


def test_only_a_last_modified_is_asked_with_if_modified_since_alone(
        tmp_path: Path, store: Store) -> None:
    with ConditionalSite({FEED_PATH: FEED}, etag=False) as site:
        settings = settings_for(tmp_path, feed_source(site.url + FEED_PATH))
        scrape(settings, store, "feed", NOW)
        second = scrape(settings, store, "feed", NOW + timedelta(hours=6))
    assert stored(store.engine, "feed") == [(site.url + FEED_PATH, None, LAST_MODIFIED)]
    assert conditional_headers(site.requests[1]) == {"if-modified-since": LAST_MODIFIED}
    assert second.report.outcome is RunOutcome.OK and second.report.items_seen == 3


def test_a_later_page_that_changed_means_a_full_fetch_even_when_the_first_is_304(
        tmp_path: Path, store: Store) -> None:
    """Page 1 of the feed answers 304, page 2 has changed: the source is fetched in full, not
    taken as unchanged (why "first page only" is not the rule: tracker/conditional.py)."""
    changed = tmp_path / "page2.atom"
    changed.write_text((RSS / "occitanie_page2.atom").read_text(encoding="utf-8").replace(
        "« Tiers-lieux et clusters »", "« Tiers-lieux, clusters et fablabs »"), encoding="utf-8")
    with ConditionalSite(ATOM_ROUTES) as site:
        settings = settings_for(tmp_path, feed_source(site.url + "/appels.atom", name="occitanie"))
        scrape(settings, store, "occitanie", NOW)
        assert [url for url, _, _ in stored(store.engine, "occitanie")] == [
            site.url + "/appels.atom", site.url + "/appels.atom?page=2"]
        site.set_route("/appels.atom?page=2", changed)
        del site.requests[:]
        second = scrape(settings, store, "occitanie", NOW + timedelta(hours=6))
        asked = [(r.path, r.query.get("page"), bool(conditional_headers(r))) for r in site.requests]
    # page 1 is 304, page 2 comes back whole (and is not fetched twice); then page 1 again
    # without validators, for its body
    assert asked == [("/appels.atom", None, True), ("/appels.atom", ["2"], True),
                     ("/appels.atom", None, False)]
    assert second.report.outcome is RunOutcome.OK and second.report.changed == 1
    titles = {c.record.title for c in store.list_calls(source="occitanie")}
    assert "FEDER – Appel à projets « Tiers-lieux, clusters et fablabs »" in titles
    assert len(stored(store.engine, "occitanie")) == 2  # the new pages' validators kept


def test_a_call_page_that_changed_under_an_unchanged_list_is_found(
        tmp_path: Path, store: Store) -> None:
    """ECCP lists links; the deadline is on each call's own page. An extended deadline
    changes that page only: every list page answers 304, and the run still sees it."""
    slug = "grappa-open-call-valorisation-agri-food-biomass-side-streams-cut-2"
    extended = tmp_path / f"detail_{slug}.html"
    extended.write_text((RECORDINGS / "eccp" / f"detail_{slug}.html").read_text(
        encoding="utf-8").replace("20 October 2026", "27 October 2026"), encoding="utf-8")
    with ConditionalEccp(RECORDINGS / "eccp") as site:
        settings = settings_for(tmp_path, f'[sources.eccp]\nlist_url = "{site.list_url}"\n')
        first = scrape(settings, store, "eccp", NOW)
        assert first.report.outcome is RunOutcome.OK and first.report.new == 5
        assert len(stored(store.engine, "eccp")) == 9  # 3 list pages, 6 call pages
        site.set_route(f"/content/{slug}", extended)
        second = scrape(settings, store, "eccp", NOW + timedelta(hours=6))
        third = scrape(settings, store, "eccp", NOW + timedelta(hours=12))
    assert second.report.changed == 1
    [grappa] = [c.record for c in store.list_calls(source="eccp") if (c.record.url or "").endswith(slug)]
    [deadline] = grappa.deadlines
    assert deadline.date().isoformat() == "2026-10-27"
    assert [run.notes for run in store.runs("eccp", limit=3)] == [NOT_MODIFIED, None, None]
    assert third.report.items_seen == 5


def test_a_run_that_fails_keeps_no_validators_and_the_next_fetches_in_full(
        tmp_path: Path, store: Store) -> None:
    with ConditionalSite(ATOM_ROUTES) as site:
        settings = settings_for(tmp_path, feed_source(site.url + "/appels.atom", name="occitanie"))
        # a first run that breaks off on page 2 stores nothing to ask with
        site.set_route("/appels.atom?page=2", Reply.text("busy", 503))
        broken = scrape(settings, store, "occitanie", NOW)
        assert broken.report.outcome is RunOutcome.PARTIAL
        assert stored(store.engine, "occitanie") == []
        # a good run, then one that fails mid-way: what the good run kept is cleared
        site.set_route("/appels.atom?page=2", RSS / "occitanie_page2.atom")
        assert scrape(settings, store, "occitanie", NOW + timedelta(hours=1)).report.outcome \
            is RunOutcome.OK
        assert len(stored(store.engine, "occitanie")) == 2
        site.set_route("/appels.atom", Reply.text("down for maintenance", 503))
        failed = scrape(settings, store, "occitanie", NOW + timedelta(hours=2))
        assert failed.report.outcome is RunOutcome.FAILED
        assert stored(store.engine, "occitanie") == []
        site.set_route("/appels.atom", RSS / "occitanie_page1.atom")
        del site.requests[:]
        third = scrape(settings, store, "occitanie", NOW + timedelta(hours=3))
    assert [conditional_headers(r) for r in site.requests] == [{}, {}]  # fetched in full
    assert third.report.outcome is RunOutcome.OK and third.report.items_seen == 2


def test_with_conditional_requests_off_no_validator_is_sent(tmp_path: Path, store: Store) -> None:
    with ConditionalSite({FEED_PATH: FEED}) as site:
        settings = settings_for(tmp_path, feed_source(site.url + FEED_PATH),
                                http="conditional_requests = false")
        assert settings.http.conditional_requests is False
        for hours in (0, 6, 12):
            scrape(settings, store, "feed", NOW + timedelta(hours=hours))
    assert [conditional_headers(r) for r in site.requests] == [{}, {}, {}]
    assert [run.notes for run in store.runs("feed")] == [None, None, None]  # three full runs


def test_changed_settings_are_not_answered_by_the_pages_of_the_old_ones(
        tmp_path: Path, store: Store) -> None:
    """The same pages parsed with other settings give other records: no validator is sent."""
    with ConditionalSite({FEED_PATH: FEED}) as site:
        scrape(settings_for(tmp_path, feed_source(site.url + FEED_PATH)), store, "feed", NOW)
        other = settings_for(tmp_path, feed_source(site.url + FEED_PATH,
                                                   extra='region = "CZ01"'))
        scrape(other, store, "feed", NOW + timedelta(hours=6))
    assert conditional_headers(site.requests[1]) == {}
    assert {c.record.regions for c in store.list_calls(source="feed")} == {("CZ01",)}


def test_a_post_or_an_answer_without_validators_leaves_nothing_to_ask() -> None:
    """The portal's and interreg.eu's search APIs are POSTs: their runs keep nothing."""
    def handler(request: httpx.Request) -> httpx.Response:
        etag = {"ETag": '"v1"'} if request.url.path != "/bare" else {}
        return httpx.Response(200, headers=etag, content=b"{}")

    async def fetched(*requests: tuple[str, str]) -> object:
        async with PoliteClient(HttpSettings(delay=0),
                                transport=httpx.MockTransport(handler)) as http:
            run = http.for_run()
            for method, url in requests:
                await run.request(method, url)
            return run.fetched()

    page = ("GET", "https://site.example/list")
    assert asyncio.run(fetched(page)) is not None
    assert asyncio.run(fetched(page, ("POST", "https://api.example/search"))) is None
    assert asyncio.run(fetched(page, ("GET", "https://site.example/bare"))) is None
    assert asyncio.run(fetched()) is None


@pytest.mark.parametrize("status", [404, 503])
def test_an_error_while_asking_is_no_verdict_the_run_fetches_in_full(
        tmp_path: Path, store: Store, status: int) -> None:
    with ConditionalSite({FEED_PATH: FEED}) as site:
        settings = settings_for(tmp_path, feed_source(site.url + FEED_PATH))
        scrape(settings, store, "feed", NOW)
        answers = iter([Reply.text("later", status)])

        original = site.handle

        def flaky(request: Request) -> Reply:  # the conditional request alone fails
            return next(answers, None) or original(request)

        site.handle = flaky  # type: ignore[method-assign]
        second = scrape(settings, store, "feed", NOW + timedelta(hours=6))
    assert second.report.outcome is RunOutcome.OK and second.report.items_seen == 3
    assert store.runs("feed", limit=1)[0].notes is None  # a full run, not "not modified"
