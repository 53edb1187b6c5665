"""ECCP call inventory: list paging, detail pages from the real text, challenge and layout checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from scrapers.eccp import EccpSettings, EccpSource, parse_list, record_from_detail
from tests.sources_support import FIXTURES, NOW, scrape
from tracker.dedupe import group_duplicates
from tracker.demo.fakes import RECORDINGS
from tracker.demo.fakes._server import Reply
from tracker.demo.fakes.eccp import EccpSite
from tracker.errors import InvalidRecord, LayoutChanged
from tracker.models import CallRecord, CallStatus, RunOutcome
from tracker.ports import HttpClient

RECORDED = RECORDINGS / "eccp"  # the pages the demo serves too; the only copy
DIR = FIXTURES / "eccp"  # test-only: the real text extracts, a changed layout
BASE = "https://www.clustercollaboration.eu"
CHALLENGE = FIXTURES / "challenge" / "cloudflare_just_a_moment.html"


def source(site: EccpSite) -> Callable[[HttpClient], EccpSource]:
    settings = EccpSettings(list_url=site.list_url)
    return lambda http: EccpSource("eccp", settings, http)


def detail(slug: str) -> CallRecord:
    markup = (RECORDED / f"detail_{slug}.html").read_text(encoding="utf-8")
    return record_from_detail(markup, url=f"{BASE}/content/{slug}", source="eccp", now=NOW)


def test_list_page_gives_detail_links_and_the_next_page() -> None:
    page = parse_list((RECORDED / "list_page0.html").read_text(encoding="utf-8"),
                      url=f"{BASE}/search-results?type=eccp_calls&page=0", first=True)
    assert page.items == [
        f"{BASE}/content/rivcircular-project-open-call-interregional-circular-economy-innovation",
        f"{BASE}/content/futureproof-textiles-eurocluster-1st-open-call-round-supporting-smes-textile",
        f"{BASE}/content/powerup-netzero-open-call-innovation-projects",
    ]  # the /expertise links are dropped
    assert page.next_url == f"{BASE}/search-results?type=eccp_calls&page=1"
    empty = parse_list((RECORDED / "list_page2_empty.html").read_text(encoding="utf-8"),
                       url=BASE, first=False)
    assert empty.items == [] and empty.next_url is None


def test_details_read_as_the_real_pages_say() -> None:
    sample = json.loads((DIR / "eccp_call_detail_text_extracts.json").read_text(encoding="utf-8"))
    for item in sample["items"]:
        record = detail(item["url"].rsplit("/", 1)[1])
        assert record.title == item["title"]
        assert record.deadlines[0].date().isoformat() == item["deadline_date"]
        assert all(link in record.summary for link in item["external_project_links"])
        assert "twitter.com" not in record.summary  # footer links are not the call's
    riv = detail("rivcircular-project-open-call-interregional-circular-economy-innovation")
    # the Details block's "17 September 2026, 14:00 (CEST)" wins over the bare DEADLINE line
    assert riv.deadlines == (datetime(2026, 9, 17, 12, 0, tzinfo=UTC),)
    assert riv.opening_date == datetime(2026, 4, 19, 22, 0, tzinfo=UTC)
    assert (riv.status, riv.deadline_model) == (CallStatus.OPEN, "single-stage")
    futureproof = detail("futureproof-textiles-eurocluster-1st-open-call-round-supporting-smes-textile")
    assert futureproof.deadlines == (datetime(2026, 9, 18, 21, 59, 59, tzinfo=UTC),)  # end of day CEST
    assert futureproof.topic_identifier is None


def test_a_mirrored_portal_topic_carries_its_identifier_and_dedupes_with_the_portal() -> None:
    mirror = detail("joint-cluster-initiatives-euroclusters-europes-resilience")
    assert mirror.topic_identifier == "SMP-COSME-2026-CLUSTER-01"
    assert mirror.programme == "Single Market Programme"
    assert mirror.status is CallStatus.FORTHCOMING
    assert mirror.deadlines == (datetime(2027, 2, 4, 16, 0, tzinfo=UTC),)  # 17:00 CET
    portal = CallRecord(source="ft_portal", native_id="SMP-COSME-2026-CLUSTER-01", title="Euroclusters",
                        status=CallStatus.FORTHCOMING, topic_identifier="SMP-COSME-2026-CLUSTER-01")
    assert [g.sources for g in group_duplicates([portal, mirror])] == [("ft_portal", "eccp")]


def test_an_unreadable_deadline_is_an_invalid_item() -> None:
    with pytest.raises(InvalidRecord, match="to be announced"):
        detail("powerup-netzero-3rd-open-call")


def test_scrape_walks_every_page_then_every_detail() -> None:
    with EccpSite(RECORDED) as site:
        result = scrape(source(site))
        paths = [r.path + ("?" + "&".join(f"{k}={v[0]}" for k, v in sorted(r.query.items()))
                           if r.query else "") for r in site.requests]
    assert paths[:3] == ["/search-results?page=0&type=eccp_calls", "/search-results?page=1&type=eccp_calls",
                         "/search-results?page=2&type=eccp_calls"]
    assert len(paths) == 3 + 6
    assert result.outcome is RunOutcome.OK
    assert len(result.records) == 5 and result.invalid == 1
    assert all(r.url and r.url.startswith(site.url + "/content/") for r in result.records)


def test_a_challenge_page_fails_the_run_instead_of_zero_calls() -> None:
    with EccpSite(RECORDED) as site:
        site.set_route("/search-results?type=eccp_calls&page=0",
                       Reply(403, CHALLENGE.read_bytes(), {"Content-Type": "text/html"}))
        blocked = scrape(source(site))
        site.set_route("/search-results?type=eccp_calls&page=0",
                       Reply(200, CHALLENGE.read_bytes(), {"Content-Type": "text/html"}))
        challenged = scrape(source(site))
    for result in (blocked, challenged):
        assert result.outcome is RunOutcome.FAILED and result.records == []
        assert result.error and "challenge" in result.error
    assert challenged.error and "just a moment" in challenged.error.casefold()


def test_a_challenge_on_a_detail_page_stops_the_run_keeping_what_was_read() -> None:
    with EccpSite(RECORDED) as site:
        site.set_route("/content/powerup-netzero-open-call-innovation-projects",
                       Reply(200, CHALLENGE.read_bytes(), {"Content-Type": "text/html"}))
        result = scrape(source(site))
    assert result.outcome is RunOutcome.PARTIAL
    assert len(result.records) == 2 and result.error and "challenge" in result.error


def test_a_missing_detail_page_makes_the_run_partial() -> None:
    with EccpSite(RECORDED) as site:
        site.set_route("/content/powerup-netzero-open-call-innovation-projects", Reply.text("gone", 404))
        result = scrape(source(site))
    assert result.outcome is RunOutcome.PARTIAL and len(result.records) == 4


def test_a_changed_list_layout_is_flagged() -> None:
    with pytest.raises(LayoutChanged, match=r"no \.search-result-item cards"):
        parse_list((DIR / "list_changed_layout.html").read_text(encoding="utf-8"), url=BASE, first=True)
    with EccpSite(RECORDED) as site:
        site.set_route("/search-results?type=eccp_calls&page=0", DIR / "list_changed_layout.html")
        result = scrape(source(site))
    assert result.outcome is RunOutcome.FAILED and "error type: LayoutChanged" in result.notes


def test_a_deadline_of_tomorrow_is_unknown_not_a_date() -> None:
    """"DEADLINE: tomorrow" would name another day at every scrape: the call is kept, its
    deadline unknown."""
    slug = "powerup-netzero-3rd-open-call"
    markup = (RECORDED / f"detail_{slug}.html").read_text(encoding="utf-8")
    call = record_from_detail(markup.replace("<time>to be announced</time>", "<time>tomorrow</time>"),
                              url=f"{BASE}/content/{slug}", source="eccp", now=NOW)
    assert call.native_id == slug and call.deadlines == ()
