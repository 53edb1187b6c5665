"""The parsers on real recorded pages found in other public projects' test fixtures.

Each page's origin (repository, path, commit, capture date) and what was trimmed is in
tests/fixtures/README.md. Each test runs the real parser on the page as recorded and checks
what it extracts: titles, links, dates.
"""

from __future__ import annotations

from datetime import UTC, datetime

from scrapers.ecl_pages import Card, EclSettings, page_url, parse_cards, record_from_card
from scrapers.html_list import HtmlListSettings, HtmlListSource, parse_list, record_from_item
from tests.sources_support import FIXTURES, scrape
from tracker.demo.fakes.sites import FixtureSite
from tracker.models import CallStatus, RunOutcome

#: a day both pages' content is current on: after the capture, before the Czech call closes
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

DOTACEEU = FIXTURES / "html_list" / "dotaceeu_vyzvy_listing_2026-09-23__dotacni-majak.html"
DOTACEEU_URL = "https://www.dotaceeu.cz/cs/jak-ziskat-dotaci/vyzvy"
MZP_109 = ("https://www.dotaceeu.cz/cs/jak-ziskat-dotaci/vyzvy/obdobi-2021-2027/"
           "05-operacni-program-zivotni-prostredi-2021-2027/"
           "mzp_109-vyzva,-sc-1-3,-opatreni-1-3-3,-prubezna")


def dotaceeu_settings(url: str = DOTACEEU_URL) -> HtmlListSettings:
    """How a user would configure the Czech national portal's call list as an html_list."""
    return HtmlListSettings.model_validate({
        "url": url, "item": "section", "title": "a", "link": "a[href]", "deadline": "p",
        "language": "cs", "timezone": "Europe/Prague", "programme": "Cohesion Policy",
        "sub_programme": "OP Životní prostředí 2021-2027", "country": "CZ"})


def test_dotaceeu_call_list_gives_title_link_and_the_window_end_as_deadline() -> None:
    """dotaceeu.cz writes a call's window, "Termín pro podání žádosti: 16. 7. 2026 -
    17. 12. 2026": the deadline is its end and the opening its start. (The start used to
    be taken as the deadline, so this open call was stored as closed since July.)"""
    page = parse_list(DOTACEEU.read_text(encoding="utf-8"), url=DOTACEEU_URL,
                      settings=dotaceeu_settings())
    assert [(i.title, i.link) for i in page.items] == [
        ("MŽP_109. výzva, SC 1.3, opatření 1.3.3, průběžná", MZP_109)]
    assert page.items[0].deadline_text == "Termín pro podání žádosti: 16. 7. 2026 - 17. 12. 2026"
    assert page.next_url is None
    record = record_from_item(page.items[0], source="dotaceeu", settings=dotaceeu_settings(),
                              now=NOW)
    assert record.deadlines == (datetime(2026, 12, 17, 22, 59, 59, tzinfo=UTC),)  # end of day, Prague
    assert record.opening_date == datetime(2026, 7, 15, 22, 0, tzinfo=UTC)  # 16 July, start of day
    assert record.status is CallStatus.OPEN
    assert (record.url, record.countries, record.language) == (MZP_109, ("CZ",), "cs")


def test_dotaceeu_call_list_scrapes_over_http() -> None:
    with FixtureSite({"/cs/jak-ziskat-dotaci/vyzvy": DOTACEEU}) as site:
        result = scrape(lambda http: HtmlListSource(
            "dotaceeu", dotaceeu_settings(site.url + "/cs/jak-ziskat-dotaci/vyzvy"), http), now=NOW)
    assert result.outcome is RunOutcome.OK and result.invalid == 0
    [record] = result.records
    assert record.title == "MŽP_109. výzva, SC 1.3, opatření 1.3.3, průběžná"
    assert record.deadlines == (datetime(2026, 12, 17, 22, 59, 59, tzinfo=UTC),)


EPAH = FIXTURES / "ecl_pages" / "epah_newsroom_news_page0__fundhunt.html"
EPAH_URL = "https://energy-poverty.ec.europa.eu/newsroom/news"


def epah_cards() -> list[Card]:
    return parse_cards(EPAH.read_text(encoding="utf-8"), url=EPAH_URL, first=True)


def test_a_real_ecl_news_list_gives_every_card() -> None:
    """A Commission site in the same ECL theme (oe_theme) as EISMEA, HaDEA and EIC: the
    cards' selectors hold on the real markup."""
    cards = epah_cards()
    assert len(cards) == 10
    first = cards[0]
    assert first.title == "July 2026 NEWSLETTER | Community initiatives, new EPAH reports, and more"
    assert first.link == (EPAH_URL + "/july-2026-newsletter-community-initiatives-new-epah-reports"
                          "-and-more")
    assert (first.date, first.label) == ("2026-07-22T12:00:00Z", "Newsletter")
    assert first.description == "July 2026 | EPAH NEWSLETTER"
    assert [c.date[:10] for c in cards if c.date][-2:] == ["2025-12-17", "2025-12-15"]
    assert cards[5].title == "APRIL 2026 NEWSLETTER | Key Spring Events & New EPAH Reports"
    assert {c.label for c in cards} == {"Newsletter", "News article"}
    assert page_url(EPAH_URL, 1) == EPAH_URL + "?page=1"  # the page's own pager: href="?page=1"


def test_a_real_news_card_is_not_an_open_call() -> None:
    settings = EclSettings(list_url=EPAH_URL, publisher="EPAH", details=False)
    record = record_from_card(epah_cards()[-1], None, source="epah", settings=settings, now=NOW)
    assert record.title == "EU Agenda for Cities: a new framework for European cities"
    assert record.deadlines == ()
    assert record.status is not CallStatus.OPEN  # a news item from December 2025
