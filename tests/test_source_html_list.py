"""User-configured HTML lists: selectors, paging, dates in the page's language, layout checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scrapers.html_list import (
    HtmlListSettings,
    HtmlListSource,
    ListItem,
    parse_list,
    record_from_item,
)
from tests.sources_support import FIXTURES, NOW, scrape
from tracker.demo.fakes._server import Reply
from tracker.demo.fakes.sites import FixtureSite
from tracker.errors import LayoutChanged
from tracker.models import CallStatus, ChangeKind, RunOutcome
from tracker.store.calls import Store
from tracker.store.drift import assess_run

DIR = FIXTURES / "html_list"
ROUTES = {"/calls": DIR / "efre_calls_page1.html", "/calls?page=2": DIR / "efre_calls_page2.html"}


def settings_for(url: str, **overrides: object) -> HtmlListSettings:
    values: dict[str, object] = {
        "url": url, "item": ".calls.container .call-item", "title": ".call-item__title",
        "link": "a.more", "deadline": ".call-item__deadline", "summary": ".call-item__teaser",
        "next_page": ".pagination .next a", "language": "de", "timezone": "Europe/Vienna",
        "programme": "Cohesion Policy", "sub_programme": "IBW/EFRE & JTF 2021-2027", "country": "AT",
    }
    values.update(overrides)
    return HtmlListSettings.model_validate(values)


def test_list_page_parses_with_the_configured_selectors() -> None:
    url = "https://www.efre.gv.at/calls"
    page = parse_list((DIR / "efre_calls_page1.html").read_text(encoding="utf-8"), url=url,
                      settings=settings_for(url))
    assert [i.title for i in page.items] == [
        "Investitionen in Forschungsinfrastruktur (EFRE Oberösterreich)",
        "Clusterkooperationen und Innovationsnetzwerke"]
    assert page.items[0].link == \
        "https://www.efre.gv.at/calls/detail?tx_chilifoerderkompass_callsdetail%5Bcall%5D=41"
    assert page.items[0].deadline_text == "Einreichfrist: 16.01.2027"
    assert page.next_url == "https://www.efre.gv.at/calls?page=2"
    record = record_from_item(page.items[1], source="efre_at", settings=settings_for(url), now=NOW)
    assert record.deadlines == (datetime(2026, 11, 30, 11, 0, tzinfo=UTC),)  # 12:00 Vienna
    assert record.summary == "Kooperationsprojekte von Clustern und Netzwerken mit KMU."
    assert (record.programme, record.countries, record.status) == ("Cohesion Policy", ("AT",),
                                                                   CallStatus.OPEN)


def test_scrape_walks_the_pages_and_counts_an_undated_item_invalid() -> None:
    with FixtureSite(ROUTES) as site:
        result = scrape(lambda http: HtmlListSource("efre_at", settings_for(site.url + "/calls"), http))
        assert [r.path for r in site.requests] == ["/calls", "/calls"]
    assert result.outcome is RunOutcome.OK
    assert len(result.records) == 3 and result.invalid == 1  # "Einreichfrist: laufend"
    jtf = next(r for r in result.records if r.title.startswith("Just Transition"))
    assert jtf.deadlines == (datetime(2027, 1, 16, 22, 59, 59, tzinfo=UTC),)  # "16. Januar 2027"
    assert not assess_run(result, last_good_items=4).suspicious


def test_a_fixed_date_format_is_used_when_given() -> None:
    url = "https://www.efre.gv.at/calls"
    page = parse_list((DIR / "efre_calls_page1.html").read_text(encoding="utf-8"), url=url,
                      settings=settings_for(url, deadline=".call-item__deadline"))
    settings = settings_for(url, date_format="Einreichfrist: %d.%m.%Y")
    record = record_from_item(page.items[0], source="efre_at", settings=settings, now=NOW)
    assert record.deadlines == (datetime(2027, 1, 16, 22, 59, 59, tzinfo=UTC),)
    with pytest.raises(ValueError, match="unparseable deadline"):
        record_from_item(page.items[1], source="efre_at", settings=settings, now=NOW)


def test_a_redesigned_page_is_a_changed_layout_not_an_empty_list() -> None:
    url = "https://www.efre.gv.at/calls"
    markup = (DIR / "efre_calls_redesigned.html").read_text(encoding="utf-8")
    with pytest.raises(LayoutChanged, match="item selector"):
        parse_list(markup, url=url, settings=settings_for(url))
    assert parse_list(markup, url=url, settings=settings_for(url, allow_empty=True)).items == []
    with FixtureSite({"/calls": DIR / "efre_calls_redesigned.html"}) as site:
        result = scrape(lambda http: HtmlListSource("efre_at", settings_for(site.url + "/calls"), http))
    assert result.outcome is RunOutcome.FAILED and "error type: LayoutChanged" in result.notes


def test_items_whose_titles_moved_make_the_run_suspicious() -> None:
    with FixtureSite({"/calls": DIR / "efre_calls_titles_moved.html"}) as site:
        result = scrape(lambda http: HtmlListSource("efre_at", settings_for(site.url + "/calls"), http))
    assert result.records == [] and result.invalid == 3
    verdict = assess_run(result, last_good_items=4)
    assert verdict.suspicious and "3 of 3 items lack a title" in verdict.reasons


def test_a_challenge_page_fails_the_run() -> None:
    challenge = (FIXTURES / "challenge" / "cloudflare_just_a_moment.html").read_bytes()
    with FixtureSite({"/calls": Reply(200, challenge, {"Content-Type": "text/html"})}) as site:
        result = scrape(lambda http: HtmlListSource("efre_at", settings_for(site.url + "/calls"), http))
    assert result.outcome is RunOutcome.FAILED
    assert result.error and "bot challenge" in result.error


def test_selectors_are_checked_when_loaded() -> None:
    with pytest.raises(ValueError, match="not a CSS selector"):
        settings_for("https://x.example", item="div[")


@pytest.mark.parametrize("deadline", ["Einreichfrist: morgen", "morgen", "tomorrow", "Deadline: tomorrow"])
def test_a_deadline_of_tomorrow_stays_unknown_and_moves_nothing(store: Store, deadline: str) -> None:
    """A list whose item reads "morgen" (tomorrow), scraped on two days: the call is stored
    with no deadline both times, so the second day records no "deadline moved". (A bare
    "morgen" used to become tomorrow's date, read from the wall clock, and "Einreichfrist:
    morgen" made the item invalid.)"""
    page1 = (DIR / "efre_calls_deadline_tomorrow.html").read_text(encoding="utf-8")
    routes = {"/calls": Reply(200, page1.replace("Einreichfrist: morgen", deadline).encode(),
                              {"Content-Type": "text/html; charset=utf-8"}),
              "/calls?page=2": DIR / "efre_calls_page2.html"}
    reports = []
    with FixtureSite(routes) as site:
        settings = settings_for(site.url + "/calls")
        for day in (0, 1):  # the clock moves on a day between the two scrapes
            now = NOW + timedelta(days=day)
            result = scrape(lambda http: HtmlListSource("efre_at", settings, http), now=now)
            assert result.outcome is RunOutcome.OK
            assert len(result.records) == 3 and result.invalid == 1  # "laufend" is still invalid
            reports.append(store.record_run("efre_at", result, started_at=now, now=now))
    [call] = [c for c in store.list_calls(statuses=None) if c.record.title.startswith("Investitionen")]
    assert call.record.deadlines == () and call.record.status is CallStatus.OPEN
    assert [r.outcome for r in reports] == [RunOutcome.OK, RunOutcome.OK]
    assert reports[0].new == 3
    assert reports[1].changes == []
    assert not [c for r in reports for c in r.changes if c.kind is ChangeKind.DEADLINE_CHANGED]


@pytest.mark.parametrize(("text", "language", "opening", "deadline"), [
    ("Termín pro podání žádosti: 16. 7. 2026 - 17. 12. 2026", "cs",
     datetime(2026, 7, 15, 22, 0, tzinfo=UTC), datetime(2026, 12, 17, 22, 59, 59, tzinfo=UTC)),
    ("Příjem žádostí: 1. 2. 2027 až 30. 4. 2027", "cs",
     datetime(2027, 1, 31, 23, 0, tzinfo=UTC), datetime(2027, 4, 30, 21, 59, 59, tzinfo=UTC)),
    ("Nabór od 1.03.2027 do 30.04.2027", "pl",
     datetime(2027, 2, 28, 23, 0, tzinfo=UTC), datetime(2027, 4, 30, 21, 59, 59, tzinfo=UTC)),
    ("du 3 mars 2027 au 30 avril 2027", "fr",
     datetime(2027, 3, 2, 23, 0, tzinfo=UTC), datetime(2027, 4, 30, 21, 59, 59, tzinfo=UTC)),
])
def test_a_window_gives_the_opening_and_its_end_is_the_deadline(
        text: str, language: str, opening: datetime, deadline: datetime) -> None:
    """A list that writes the call's window: its end is the deadline, not its start (the
    form is the real dotaceeu.cz list's; tests/test_recorded_pages.py runs the page)."""
    item = ListItem(title="Výzva", link="https://x.example/v", deadline_text=text, summary="")
    settings = settings_for("https://x.example/calls", language=language, timezone="Europe/Prague")
    record = record_from_item(item, source="s", settings=settings, now=NOW)
    assert (record.opening_date, record.deadlines) == (opening, (deadline,))


@pytest.mark.parametrize("text", ["Einreichfrist: 2027-01-16", "30.11.2026, 12:00 Uhr",
                                  "Einreichfrist: 16.01.2027 bis 12:00"])
def test_one_date_is_still_one_deadline(text: str) -> None:
    item = ListItem(title="Call", link="https://x.example/c", deadline_text=text, summary="")
    record = record_from_item(item, source="s", settings=settings_for("https://x.example/calls"),
                              now=NOW)
    assert record.opening_date is None and len(record.deadlines) == 1
