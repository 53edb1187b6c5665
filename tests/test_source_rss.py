"""User-configured feeds: junk before the XML, paging, deadlines in the feed's language."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from scrapers.rss import FeedItem, RssSettings, RssSource, parse_feed, record_from_item, strip_junk
from tests.sources_support import FIXTURES, NOW, scrape
from tracker.errors import LayoutChanged, SourceRejected
from tracker.fakes._server import Reply
from tracker.fakes.sites import FixtureSite
from tracker.models import CallStatus, RunOutcome
from tracker.ports import HttpClient

DIR = FIXTURES / "rss"
CZ_FEED = DIR / "dotaceeu_vyzvy_drupal_debug.xml"
CHALLENGE = FIXTURES / "challenge" / "cloudflare_just_a_moment.html"
ATOM_ROUTES = {"/appels.atom": DIR / "occitanie_page1.atom",
               "/appels.atom?page=2": DIR / "occitanie_page2.atom"}


def cz_settings(url: str = "https://www.dotaceeu.cz/cs/ostatni/web/rss?rss=Vyzvy") -> RssSettings:
    return RssSettings(url=url, programme="ERDF", sub_programme="OP TAK", country="cz",
                       region="CZ", language="cs", timezone="Europe/Prague")


def source(settings: RssSettings) -> Callable[[HttpClient], RssSource]:
    return lambda http: RssSource("cz_op_tak", settings, http)


def test_junk_before_the_declaration_is_dropped_and_items_parse() -> None:
    body = CZ_FEED.read_bytes()
    assert body.startswith(b"<!-- THEME DEBUG")
    assert strip_junk(body).startswith(b"<?xml")
    page = parse_feed(body, url="https://www.dotaceeu.cz/cs/ostatni/web/rss?rss=Vyzvy")
    assert [i.id for i in page.items] == ["vyzva-01_26_019", "vyzva-02_26_004", "vyzva-05_26_101",
                                          "vyzva-01_25_002"]
    assert page.next_url is None
    first = page.items[0]
    assert first.title == "Výzva č. 01_26_019 Inovace – výzva IX (OP TAK)"
    assert "Ukončení příjmu žádostí: 15. ledna 2027" in first.text


def test_items_become_calls_with_the_configured_programme_and_place() -> None:
    page = parse_feed(CZ_FEED.read_bytes(), url="https://www.dotaceeu.cz/rss")
    settings = cz_settings()
    record = record_from_item(page.items[0], source="cz_op_tak", settings=settings, now=NOW)
    assert record.programme == "Cohesion Policy"  # "ERDF" is an alias
    assert record.sub_programme == "OP TAK"
    assert (record.countries, record.regions, record.language) == (("CZ",), ("CZ",), "cs")
    # a bare date is the end of that day in Prague
    assert record.deadlines == (datetime(2027, 1, 15, 22, 59, 59, tzinfo=UTC),)
    assert record.status is CallStatus.OPEN
    assert record.url and record.url.endswith("01_26_019-inovace-vyzva-ix")
    second = record_from_item(page.items[1], source="cz_op_tak", settings=settings, now=NOW)
    assert second.deadlines == (datetime(2026, 11, 30, 13, 0, tzinfo=UTC),)  # 14:00 CET
    closed = record_from_item(page.items[3], source="cz_op_tak", settings=settings, now=NOW)
    assert closed.status is CallStatus.CLOSED


def test_scrape_counts_an_unparseable_deadline_as_invalid() -> None:
    with FixtureSite({"/cs/ostatni/web/rss?rss=Vyzvy": CZ_FEED}) as site:
        result = scrape(source(cz_settings(site.url + "/cs/ostatni/web/rss?rss=Vyzvy")))
    assert result.outcome is RunOutcome.OK
    assert len(result.records) == 3 and result.invalid == 1  # "bude upřesněno"
    assert "cz_op_tak:vyzva-05_26_101" not in {r.id for r in result.records}


def test_atom_paging_follows_rel_next_and_resolves_relative_links() -> None:
    routes = ATOM_ROUTES
    with FixtureSite(routes) as site:
        settings = RssSettings(url=site.url + "/appels.atom", programme="Cohesion Policy",
                               country="FR", region="FRJ", language="fr", timezone="Europe/Paris")
        result = scrape(lambda http: RssSource("occitanie", settings, http))
        paths = [r.path for r in site.requests]
    assert paths == ["/appels.atom", "/appels.atom"]
    by_title = {r.title: r for r in result.records}
    assert len(by_title) == 2 and result.complete
    innovation = by_title["FEDER – Appel à projets « Innovation dans les PME » 2026"]
    assert innovation.deadlines == (datetime(2027, 1, 16, 11, 0, tzinfo=UTC),)  # 12h00 Paris
    assert innovation.url == site.url + "/Appel-a-projets-Innovation-PME-2026"
    tiers = by_title["FEDER – Appel à projets « Tiers-lieux et clusters »"]
    assert tiers.deadlines == (datetime(2027, 3, 3, 22, 59, 59, tzinfo=UTC),)


def test_max_pages_bounds_the_walk() -> None:
    routes = ATOM_ROUTES
    with FixtureSite(routes) as site:
        settings = RssSettings(url=site.url + "/appels.atom", max_pages=1)
        result = scrape(lambda http: RssSource("occitanie", settings, http))
    assert len(result.records) == 1


def test_an_html_page_instead_of_the_feed_is_a_changed_layout() -> None:
    with pytest.raises(LayoutChanged, match="not an RSS or Atom feed"):
        parse_feed((DIR / "feed_moved_html_page.html").read_bytes(), url="https://x.example/rss")
    with FixtureSite({"/rss": DIR / "feed_moved_html_page.html"}) as site:
        result = scrape(source(cz_settings(site.url + "/rss")))
    assert result.outcome is RunOutcome.FAILED
    assert "error type: LayoutChanged" in result.notes


@pytest.mark.parametrize("status", [200, 403])
def test_a_challenge_page_fails_the_run_with_that_reason(status: int) -> None:
    with pytest.raises(SourceRejected, match="bot challenge"):
        parse_feed(CHALLENGE.read_bytes(), url="https://x.example/rss")
    reply = Reply(status, CHALLENGE.read_bytes(), {"Content-Type": "text/html"})
    with FixtureSite({"/rss": reply}) as site:
        result = scrape(source(cz_settings(site.url + "/rss")))
    assert result.outcome is RunOutcome.FAILED
    assert result.error and "challenge" in result.error


def test_settings_are_checked_when_loaded() -> None:
    with pytest.raises(ValueError, match="unknown programme"):
        RssSettings(url="https://x.example/rss", programme="Cohesion Polcy")
    with pytest.raises(ValueError, match="ISO 3166"):
        RssSettings(url="https://x.example/rss", country="Czechia")
    with pytest.raises(ValueError, match="unknown date language"):
        RssSettings(url="https://x.example/rss", language="xx")
    with pytest.raises(ValueError, match="regular expression"):
        RssSettings(url="https://x.example/rss", deadline_pattern="(unclosed")


@pytest.mark.parametrize(("text", "language"), [("Date limite : demain à 12h00", "fr"),
                                                ("Ukončení příjmu žádostí: zítra", "cs"),
                                                ("Deadline: tomorrow", None)])
def test_a_deadline_of_tomorrow_leaves_the_deadline_unknown(text: str, language: str | None) -> None:
    settings = RssSettings(url="https://feed.example/rss", language=language)
    item = FeedItem(id="call-7", title="Appel à projets FEDER", link="https://feed.example/7",
                    text=f"Appel ouvert. {text}.")
    call = record_from_item(item, source="occitanie", settings=settings, now=NOW)
    assert call.native_id == "call-7" and call.deadlines == ()
