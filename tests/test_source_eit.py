"""EIT Opportunities: rows, paging, detail pages, layout and challenge checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from scrapers.eit import EitSettings, EitSource, parse_detail, parse_list, record_from_row
from tests.sources_support import FIXTURES, NOW, scrape
from tracker.demo.fakes import RECORDINGS
from tracker.demo.fakes._server import Reply
from tracker.demo.fakes.sites import FixtureSite
from tracker.errors import InvalidRecord, LayoutChanged
from tracker.models import CallStatus, RunOutcome
from tracker.ports import HttpClient

RECORDED = RECORDINGS / "eit"  # the pages the demo serves too; the only copy
DIR = FIXTURES / "eit"  # test-only: a detail page, a redesigned list
LIST = "https://www.eit.europa.eu/our-activities/opportunities"
SLUG = "eit-urban-mobility-call-proposals-2027-business-plan"
ROUTES = {
    "/our-activities/opportunities": RECORDED / "opportunities_page0.html",
    "/our-activities/opportunities?page=1": RECORDED / "opportunities_page1.html",
    f"/our-activities/opportunities/{SLUG}": DIR / f"detail_{SLUG}.html",
}


def source(site: FixtureSite, **overrides: object) -> Callable[[HttpClient], EitSource]:
    settings = EitSettings.model_validate({"list_url": site.url + "/our-activities/opportunities",
                                           **overrides})
    return lambda http: EitSource("eit", settings, http)


def test_rows_parse_into_calls_with_their_community() -> None:
    page = parse_list((RECORDED / "opportunities_page0.html").read_text(encoding="utf-8"),
                      url=LIST, first=True)
    assert page.next_url == LIST + "?page=1"
    records = [record_from_row(r, None, source="eit", now=NOW) for r in page.items]
    mobility = records[0]
    assert mobility.native_id == SLUG and mobility.sub_programme == "EIT Urban Mobility"
    assert mobility.deadlines == (datetime(2026, 9, 30, 21, 59, 59, tzinfo=UTC),)
    assert mobility.opening_date == datetime(2026, 7, 14, 22, 0, tzinfo=UTC)
    assert [r.status for r in records] == [CallStatus.OPEN, CallStatus.FORTHCOMING, CallStatus.CLOSED]
    assert {r.programme for r in records} == {"EIT"}


def test_detail_page_gives_text_and_the_kic_call_page() -> None:
    detail = parse_detail((DIR / f"detail_{SLUG}.html").read_text(encoding="utf-8"), url=f"{LIST}/{SLUG}")
    assert detail.links == ["https://www.eiturbanmobility.eu/call-for-proposals/business-plan-2027/"]
    assert "liveable" in detail.text


def test_scrape_walks_pages_and_reads_details_when_asked() -> None:
    with FixtureSite(ROUTES) as site:
        plain = scrape(source(site))
        detailed = scrape(source(site, details=True))
    assert plain.outcome is RunOutcome.OK
    assert len(plain.records) == 4 and plain.invalid == 1  # end date "tbc"
    mobility = next(r for r in detailed.records if r.native_id == SLUG)
    assert "eiturbanmobility.eu/call-for-proposals" in mobility.summary
    assert detailed.outcome is RunOutcome.PARTIAL  # the other detail pages are missing here


def test_unreadable_end_date_is_invalid() -> None:
    page = parse_list((RECORDED / "opportunities_page1.html").read_text(encoding="utf-8"),
                      url=LIST, first=False)
    with pytest.raises(InvalidRecord, match="tbc"):
        record_from_row(page.items[1], None, source="eit", now=NOW)


def test_a_redesigned_page_and_a_challenge_fail_the_run() -> None:
    with pytest.raises(LayoutChanged):
        parse_list((DIR / "opportunities_redesigned.html").read_text(encoding="utf-8"), url=LIST, first=True)
    challenge = (FIXTURES / "challenge" / "cloudflare_just_a_moment.html").read_bytes()
    with FixtureSite(ROUTES) as site:
        site.set_route("/our-activities/opportunities", DIR / "opportunities_redesigned.html")
        changed = scrape(source(site))
        site.set_route("/our-activities/opportunities", Reply(200, challenge, {"Content-Type": "text/html"}))
        challenged = scrape(source(site))
    assert changed.outcome is RunOutcome.FAILED and "error type: LayoutChanged" in changed.notes
    assert challenged.outcome is RunOutcome.FAILED and challenged.error and "challenge" in challenged.error
