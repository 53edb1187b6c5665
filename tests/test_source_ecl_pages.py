"""Agency sites in ECL markup: one parser, cards, paging, call pages, layout and challenge checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from scrapers.ecl_pages import EclSettings, EclSource, page_url, parse_cards, record_from_card
from tests.sources_support import FIXTURES, NOW, scrape
from tracker.config import load_config
from tracker.errors import InvalidRecord, LayoutChanged
from tracker.fakes import RECORDINGS
from tracker.fakes._server import Reply
from tracker.fakes.agency import EclSite
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
