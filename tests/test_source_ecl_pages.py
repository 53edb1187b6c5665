"""Agency sites in ECL markup: one parser, cards, paging, call pages, layout and challenge checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scrapers.ecl_pages import EclSettings, EclSource, page_url, parse_cards, record_from_card
from tests.sources_support import FIXTURES, NOW, scrape
from tests.test_cli import run
from tracker.config import load_config
from tracker.demo.fakes import RECORDINGS
from tracker.demo.fakes._server import Reply
from tracker.demo.fakes.agency import EclSite
from tracker.demo.fakes.sites import FixtureSite
from tracker.errors import InvalidRecord, LayoutChanged
from tracker.models import CallStatus, RunOutcome
from tracker.ports import HttpClient

RECORDED = RECORDINGS / "ecl_pages"  # the pages the demo serves too; the only copy
DIR = FIXTURES / "ecl_pages"  # test-only: a redesigned list
LIST = "https://eismea.ec.europa.eu/funding-opportunities/calls-proposals_en"


def source(site: EclSite, **overrides: object) -> Callable[[HttpClient], EclSource]:
    settings = EclSettings.model_validate({"list_url": site.list_url, "publisher": "EISMEA", **overrides})
    return lambda http: EclSource("eismea", settings, http)


def read(name: str) -> str:
    return (RECORDED / name).read_text(encoding="utf-8")


def test_cards_parse_with_the_ecl_selectors() -> None:
    cards = parse_cards(read("eismea_calls_page0.html"), url=LIST, first=True)
    assert len(cards) == 3
    first = cards[0]
    assert first.title.startswith("Joint Cluster Initiatives (Euroclusters)")
    assert first.link == ("https://eismea.ec.europa.eu/funding-opportunities/calls-proposals/"
                          "joint-cluster-initiatives-euroclusters-europes-recovery-smp-cosme-2024-cluster_en")
    assert (first.date, first.label) == ("2024-09-26", "Call for proposals")
    assert page_url(LIST, 2) == LIST + "?page=2" and page_url(LIST + "?page=5", 0) == LIST


def test_call_pages_give_deadline_status_and_identifier() -> None:
    cards = {c.title[:20]: c for c in parse_cards(read("eismea_calls_page0.html"), url=LIST, first=True)}
    settings = EclSettings(list_url=LIST, publisher="EISMEA")
    euroclusters = record_from_card(
        cards["Joint Cluster Initia"],
        read("detail_joint-cluster-initiatives-euroclusters-europes-recovery-smp-cosme-2024-cluster_en.html"),
        source="eismea", settings=settings, now=NOW)
    assert euroclusters.deadlines == (datetime(2025, 2, 5, 16, 0, tzinfo=UTC),)  # 17:00 CET
    assert euroclusters.status is CallStatus.CLOSED
    assert euroclusters.topic_identifier == "SMP-COSME-2024-CLUSTER-01"  # the topic wins over the call
    assert (euroclusters.programme, euroclusters.sub_programme) == ("Single Market Programme", "EISMEA")
    assert euroclusters.deadline_model == "single-stage"
    i3 = record_from_card(cards["Interregional Innova"],
                          read("detail_interregional-innovation-investments-i3-2026_en.html"),
                          source="eismea", settings=settings, now=NOW)
    assert i3.deadlines == (datetime(2026, 10, 7, 15, 0, tzinfo=UTC),) and i3.status is CallStatus.OPEN
    news = record_from_card(cards["Interregional Innova"], None, source="eic", settings=settings, now=NOW)
    assert news.deadlines == () and news.summary == "Strand 1 and 2a of the I3 instrument."


def test_scrape_walks_pages_until_nothing_new_and_counts_a_bad_deadline() -> None:
    with EclSite(RECORDED) as site:
        result = scrape(source(site))
        list_requests = [r for r in site.requests if r.path.endswith("calls-proposals_en")]
    assert [r.query.get("page") for r in list_requests] == [None, ["1"], ["2"]]
    assert result.outcome is RunOutcome.OK
    assert len(result.records) == 3 and result.invalid == 1  # "to be confirmed"
    forthcoming = next(r for r in result.records if r.native_id == "smp-cosme-2026-ssa-sme-support_en")
    assert forthcoming.status is CallStatus.FORTHCOMING


def test_unreadable_deadline_is_invalid() -> None:
    card = parse_cards(read("eismea_calls_page1.html"), url=LIST, first=False)[0]
    with pytest.raises(InvalidRecord, match="to be confirmed"):
        record_from_card(card, read("detail_eu-cluster-excellence-2026_en.html"), source="eismea",
                         settings=EclSettings(list_url=LIST, publisher="EISMEA"), now=NOW)


def test_a_news_list_without_details_reads_cards_only() -> None:
    with EclSite(RECORDED) as site:
        result = scrape(source(site, details=False))
        assert not any("/calls-proposals/" in r.path for r in site.requests)
    assert len(result.records) == 4 and all(r.deadlines == () for r in result.records)


def test_a_redesigned_list_and_a_challenge_fail_the_run() -> None:
    with pytest.raises(LayoutChanged):
        parse_cards((DIR / "eismea_calls_redesigned.html").read_text(encoding="utf-8"), url=LIST, first=True)
    challenge = (FIXTURES / "challenge" / "cloudflare_just_a_moment.html").read_bytes()
    with EclSite(RECORDED) as site:
        site.set_route(site.list_path, DIR / "eismea_calls_redesigned.html")
        changed = scrape(source(site))
        site.set_route(site.list_path, Reply(403, challenge, {"Content-Type": "text/html"}))
        blocked = scrape(source(site))
    assert changed.outcome is RunOutcome.FAILED and "error type: LayoutChanged" in changed.notes
    assert blocked.outcome is RunOutcome.FAILED and blocked.error and "challenge" in blocked.error


def test_default_config_has_one_instance_per_agency() -> None:
    sources = load_config(environ={}).sources
    for name, publisher in (("eismea", "EISMEA"), ("hadea", "HaDEA"), ("eic", "EIC")):
        assert sources[name].kind == "ecl_pages"
        assert sources[name].publisher == publisher  # type: ignore[attr-defined]


def test_a_deadline_date_of_tomorrow_is_unknown_not_a_date() -> None:
    card = parse_cards(read("eismea_calls_page1.html"), url=LIST, first=False)[0]
    detail = read("detail_eu-cluster-excellence-2026_en.html").replace(
        "definition\">to be confirmed</dd>", "definition\">tomorrow</dd>")
    call = record_from_card(card, detail, source="eismea",
                            settings=EclSettings(list_url=LIST, publisher="EISMEA"), now=NOW)
    assert call.deadlines == () and call.title == card.title


# -- news lists: the recorded news block of the Commission's home page (ECL, March 2024) ------

NEWS = DIR / "commission_home_highlighted_news_2024-03.html"
HOME = "https://commission.europa.eu/index_en"
NEWS_CONFIG = """
[sources.eic]
enabled = true
list_url = "{base}/news_en"
details = false
"""


def test_the_recorded_news_cards_parse_with_their_publication_dates() -> None:
    cards = parse_cards(NEWS.read_text(encoding="utf-8"), url=HOME, first=True)
    assert [(c.date, c.label) for c in cards] == [
        ("2024-03-11T12:00:00Z", "News article"), ("2024-03-08T12:00:00Z", "News article"),
        ("2024-03-05T12:00:00Z", "News article"), ("2024-02-29T12:00:00Z", "News article")]
    assert cards[0].title == "Remembering victims of terrorism, in the EU and abroad"
    assert cards[3].link == ("https://commission.europa.eu/news/"
                             "stronger-together-fight-against-rare-diseases-2024-02-29_en")


def test_a_card_without_deadline_opening_or_status_is_news_not_an_open_call() -> None:
    card = parse_cards(NEWS.read_text(encoding="utf-8"), url=HOME, first=True)[1]
    settings = EclSettings(list_url=HOME, publisher="European Commission", details=False)
    news = record_from_card(card, None, source="ec_news", settings=settings, now=NOW)
    assert news.status is CallStatus.CLOSED and news.tags == ("news",)
    assert news.updates == ("2024-03-08: News article published",)
    assert news.deadlines == () and news.opening_date is None
    # a call page naming a deadline it cannot date ("tomorrow") is still a call
    page = "<main><h1>EU cluster call</h1><dl><dt>Deadline date</dt><dd>tomorrow</dd></dl></main>"
    call = record_from_card(card, page, source="ec_news", settings=settings, now=NOW)
    assert call.status is CallStatus.OPEN and call.tags == () and call.updates == ()


@pytest.mark.parametrize(("meta", "day"), [
    # the ECL date block of event cards: the month's full name in the abbreviation's title
    ('<time class="ecl-date-block" datetime=""><span class="ecl-date-block__day">5</span>'
     '<abbr class="ecl-date-block__month" title="February">Feb</abbr>'
     '<span class="ecl-date-block__year">2025</span></time>', "2025-02-05"),
    # a date written in the meta line, with no <time>
    ('<ul class="ecl-content-block__primary-meta-container"><li class="ecl-content-block__'
     'primary-meta-item">Press release</li><li class="ecl-content-block__primary-meta-item">'
     '31 August 2025</li></ul>', "2025-08-31"),
])
def test_other_ecl_dates_are_read_too(meta: str, day: str) -> None:
    """Written in the shapes other_sources.md §2D describes (no recording of these)."""
    markup = (f'<article class="ecl-content-item">{meta}<div class="ecl-content-block__title">'
              '<a href="/news/x_en">An item</a></div></article>')
    card = parse_cards(markup, url=HOME, first=True)[0]
    settings = EclSettings(list_url=HOME, publisher="EC", details=False)
    news = record_from_card(card, None, source="ec_news", settings=settings, now=NOW)
    assert news.updates and news.updates[0].startswith(f"{day}: ")


def test_news_from_a_list_page_stays_out_of_the_default_calls_list(
    tmp_path: Path, database_url: str
) -> None:
    """`callwatch scrape eic` on the recorded news block, replayed on 127.0.0.1."""
    routes = {"/news_en": NEWS, "/news_en?page=1": NEWS}  # page 1 repeats: the walk stops
    with FixtureSite(routes) as site:
        config = tmp_path / "callwatch.toml"
        config.write_text(NEWS_CONFIG.format(base=site.url), encoding="utf-8")
        common = ("--config", str(config), "--db", database_url)
        if database_url.startswith("postgresql"):
            assert run(*common, "db", "upgrade", cwd=tmp_path).returncode == 0
        scraped = run(*common, "scrape", "eic", cwd=tmp_path)
    assert scraped.returncode == 0, scraped.stderr + scraped.stdout
    listed = json.loads(run(*common, "calls", "list", "--format", "json", cwd=tmp_path).stdout)
    assert listed == []  # before: four "open calls" without deadline, from 2024
    closed = json.loads(run(*common, "calls", "list", "--status", "closed", "--format", "json",
                            cwd=tmp_path).stdout)
    assert len(closed) == 4 and all(c["tags"] == ["news"] for c in closed)
    shown = json.loads(run(*common, "calls", "show", "eic:statement_24_1366", "--format", "json",
                           cwd=tmp_path).stdout)
    assert shown["status"] == "closed" and shown["sub_programme"] == "EIC"
    assert shown["updates"] == ["2024-03-11: News article published"]
