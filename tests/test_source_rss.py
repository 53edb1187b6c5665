"""User-configured feeds: junk before the XML, paging, deadlines in the feed's language."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scrapers.rss import FeedItem, RssSettings, RssSource, parse_feed, record_from_item, strip_junk
from tests.sources_support import FIXTURES, NOW, scrape
from tracker.config import load_config
from tracker.demo.fakes._server import Reply
from tracker.demo.fakes.sites import FixtureSite
from tracker.errors import LayoutChanged, SourceRejected
from tracker.models import CallStatus, RunOutcome
from tracker.ports import HttpClient
from tracker.store.calls import Store

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


# -- deadlines held in elements: the Spanish procurement platform's CODICE Atom ----------------

PLACSP = DIR / "placsp_mayores_2026-06-20_slice.atom"
PLACSP_PATH = "/sindicacion/sindicacion_643/licitacionesPerfilesContratanteCompleto3.atom"
TENDER = "https://contrataciondelestado.es/sindicacion/licitacionesPerfilContratante/19907790"
EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "sources.example.toml"


def placsp_settings(url: str = "https://contrataciondelestado.es" + PLACSP_PATH,
                    **overrides: object) -> RssSettings:
    values: dict[str, object] = {
        "url": url, "country": "ES", "language": "es", "timezone": "Europe/Madrid",
        "deadline_element": "cac:TenderSubmissionDeadlinePeriod/cbc:EndDate",
        "deadline_time_element": "cbc:EndTime",
        "opening_element": "cac-place-ext:AdditionalPublicationDocumentReference/cbc:IssueDate",
    }
    return RssSettings.model_validate({**values, **overrides})


def test_a_tender_whose_end_date_has_passed_is_stored_closed_with_its_deadline(store: Store) -> None:
    """The shipped example's PLACSP source, replayed on 127.0.0.1, then stored."""
    with FixtureSite({PLACSP_PATH: PLACSP}) as site:
        environ = {"CALLWATCH_SOURCES__ES_PLACSP__URL": site.url + PLACSP_PATH}
        settings = load_config(EXAMPLE, environ=environ).sources["es_placsp"]
        assert isinstance(settings, RssSettings)
        result = scrape(lambda http: RssSource("es_placsp", settings, http))  # NOW: 1 Sep 2026
    assert result.outcome is RunOutcome.OK and result.invalid == 0
    store.record_run("es_placsp", result, started_at=NOW, now=NOW)
    tender = store.get_call(f"es_placsp:{TENDER}").record
    # EndDate 2026-07-23 and EndTime 13:00:00 in Madrid (CEST); not the contract's EndDate
    # 2029-12-31 nor the document period's, which the entry holds too
    assert tender.deadlines == (datetime(2026, 7, 23, 11, 0, tzinfo=UTC),)
    assert tender.status is CallStatus.CLOSED
    assert tender.opening_date == datetime(2026, 6, 19, 22, 0, tzinfo=UTC)  # 20 June, Madrid
    assert tender.title.startswith("Servicio de consultoría especializada")
    assert tender.countries == ("ES",)
    listed = store.list_calls(statuses=[CallStatus.OPEN, CallStatus.FORTHCOMING])
    assert f"es_placsp:{TENDER}" not in {c.id for c in listed}


@pytest.mark.parametrize(("now", "status"), [
    (datetime(2026, 6, 1, tzinfo=UTC), CallStatus.FORTHCOMING),  # before the notice
    (datetime(2026, 7, 23, 10, 59, tzinfo=UTC), CallStatus.OPEN),  # a minute before 13:00
    (datetime(2026, 7, 23, 11, 0, 1, tzinfo=UTC), CallStatus.CLOSED),
])
def test_the_elements_give_the_status_as_time_passes(now: datetime, status: CallStatus) -> None:
    settings = placsp_settings()
    item = parse_feed(PLACSP.read_bytes(), url=settings.url,
                      elements=settings.element_paths()).items[0]
    assert (item.deadline_texts, item.opening_text) == (("2026-07-23 13:00:00",), "2026-06-20")
    assert record_from_item(item, source="es_placsp", settings=settings, now=now).status is status


def test_without_the_element_settings_the_feed_text_has_no_deadline() -> None:
    """What callwatch did before: the summary names no deadline, so the tender stayed open."""
    item = parse_feed(PLACSP.read_bytes(), url="https://x.example/feed.atom").items[0]
    assert item.deadline_texts == () and "Estado: PUB" in item.text
    call = record_from_item(item, source="es_placsp", settings=RssSettings(url="https://x.example/f"),
                            now=NOW)
    assert call.deadlines == () and call.status is CallStatus.OPEN


def test_a_bare_element_name_reads_every_such_element() -> None:
    """Why the example names a path: the entry's three cbc:EndDate all become cut-offs."""
    settings = placsp_settings(deadline_element="cbc:EndDate", deadline_time_element=None)
    item = parse_feed(PLACSP.read_bytes(), url=settings.url, elements=settings.element_paths()).items[0]
    assert item.deadline_texts == ("2029-12-31", "2026-07-23", "2026-07-23")


ATTRIBUTE_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:ev="http://purl.org/rss/1.0/modules/event/">
  <channel><title>Appels</title><link>https://region.example/</link><description>x</description>
    <item><title>Appel FEDER 1</title><link>https://region.example/1</link><guid>a1</guid>
      <ev:period ev:start="2026-09-15" end="16/10/2026" endTime="12:00"/></item>
    <item><title>Appel FEDER 2</title><link>https://region.example/2</link><guid>a2</guid>
      <description>Date limite : 3 mars 2027</description></item>
  </channel>
</rss>"""


def test_an_attribute_holds_the_deadline_and_its_time_and_the_text_is_the_fallback() -> None:
    settings = RssSettings(url="https://region.example/rss", language="fr", timezone="Europe/Paris",
                           deadline_element="ev:period/@end", deadline_time_element="@endTime",
                           opening_element="ev:period/@ev:start")
    first, second = parse_feed(ATTRIBUTE_FEED, url=settings.url, elements=settings.element_paths()).items
    assert (first.deadline_texts, first.opening_text) == (("16/10/2026 12:00",), "2026-09-15")
    call = record_from_item(first, source="fr", settings=settings, now=NOW)
    assert call.deadlines == (datetime(2026, 10, 16, 10, 0, tzinfo=UTC),)  # 12:00 Paris (CEST)
    assert call.status is CallStatus.FORTHCOMING  # opens 15 September
    fallback = record_from_item(second, source="fr", settings=settings, now=NOW)
    assert fallback.deadlines == (datetime(2027, 3, 3, 22, 59, 59, tzinfo=UTC),)


def test_element_settings_are_checked_when_loaded() -> None:
    with pytest.raises(ValueError, match="element path like"):
        RssSettings(url="https://x.example/rss", deadline_element="//cbc:EndDate[1]")
    with pytest.raises(ValueError, match="set deadline_element too"):
        RssSettings(url="https://x.example/rss", deadline_time_element="cbc:EndTime")
    assert RssSettings(url="https://x.example/rss", deadline_element=" ").element_paths() is None


def test_an_undeclared_prefix_or_an_entity_declaration_fails_the_run() -> None:
    settings = placsp_settings(deadline_element="efbc:EndDate", deadline_time_element=None)
    with pytest.raises(LayoutChanged, match="deadline_element: the prefix 'efbc' is not declared"):
        parse_feed(PLACSP.read_bytes(), url=settings.url, elements=settings.element_paths())
    laughs = PLACSP.read_bytes().replace(
        b"?>\n", b'?>\n<!DOCTYPE feed [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>\n', 1)
    with FixtureSite({PLACSP_PATH: Reply(200, laughs, {"Content-Type": "application/atom+xml"})}) as site:
        result = scrape(lambda http: RssSource("es_placsp", placsp_settings(site.url + PLACSP_PATH), http))
    assert result.outcome is RunOutcome.FAILED
    assert result.error and "does not expand" in result.error


def test_a_bare_name_is_in_the_feeds_default_namespace() -> None:
    """In an Atom feed `updated` is Atom's element, as the feed writes it."""
    settings = RssSettings(url="https://x.example/f", opening_element="updated")
    item = parse_feed(PLACSP.read_bytes(), url=settings.url, elements=settings.element_paths()).items[0]
    assert item.opening_text == "2026-06-20T20:26:46.184+02:00"
