"""interreg.eu (Algolia): the real recorded answer, paging, a rotated key, a changed shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from scrapers.interreg import (
    KEY_MISSING,
    KEY_REJECTED,
    InterregSettings,
    InterregSource,
    parse_response,
    record_from_hit,
)
from tests.sources_support import FIXTURES, NOW, scrape
from tracker.demo.fakes import RECORDINGS
from tracker.demo.fakes.sites import InterregSearch
from tracker.errors import LayoutChanged
from tracker.models import CallStatus, RunOutcome
from tracker.ports import HttpClient

RECORDED = RECORDINGS / "interreg"  # the pages the demo serves too; the only copy
DIR = FIXTURES / "interreg"  # test-only: the real abridged answer, changed and invalid shapes
KEY = "replay-search-key"


def load(name: str) -> object:
    return json.loads((DIR / name).read_text(encoding="utf-8"))


def source_for(server: InterregSearch, **overrides: object) -> Callable[[HttpClient], InterregSource]:
    settings = InterregSettings.model_validate(
        {"search_url": server.search_url, "api_key": KEY, **overrides})
    return lambda http: InterregSource("interreg", settings, http)


def test_real_hit_maps_every_field() -> None:
    page = parse_response(load("algolia_calls_response_abridged.json"))
    assert (page.nb_hits, len(page.hits), page.nb_pages) == (3, 1, 1)
    record = record_from_hit(page.hits[0], source="interreg", now=NOW, settings=InterregSettings())
    assert record.id == "interreg:callForProjectsPage_3129"
    assert record.title == "3rd Interreg Sudoe call: on the road to capitalisation"
    assert record.status is CallStatus.OPEN
    assert record.programme == "Interreg"
    assert record.sub_programme == "Interreg South West Europe (SUDOE)"
    assert record.url == "https://interreg-sudoe.eu/3a-convocatoria/"
    # a bare date stored as T00:00:00Z: the end of 30 September in Brussels (CEST)
    assert record.deadlines == (datetime(2026, 9, 30, 21, 59, 59, tzinfo=UTC),)
    assert record.opening_date == datetime(2026, 5, 3, 22, 0, tzinfo=UTC)
    assert record.tags == ("Better Governance",)
    assert "SME" not in record.audience and "EGTC" in record.audience
    assert record.countries == ("AD", "ES", "FR", "PT")
    # the sample's "...TRUNCATED" placeholder is not a region
    assert record.regions == ("ES111", "ES421", "ES521", "ES61", "ES611")


def test_fewer_hits_than_nbhits_is_a_partial_run() -> None:
    with InterregSearch([DIR / "algolia_calls_response_abridged.json"], api_key=KEY) as server:
        result = scrape(source_for(server))
        body = server.requests[0].json()
        query = server.requests[0].query
    assert result.outcome is RunOutcome.PARTIAL
    assert [r.native_id for r in result.records] == ["callForProjectsPage_3129"]
    assert any("3 calls but returned 1" in note for note in result.notes)
    assert query["x-algolia-api-key"] == [KEY] and query["x-algolia-application-id"] == ["2E032DRCNS"]
    request = body["requests"][0]
    assert request["indexName"] == "prod_en-us_content"
    assert "callStatus:Forthcoming" in request["filters"]


def test_paging_walks_every_page() -> None:
    answers = [RECORDED / "paged_page0.json", RECORDED / "paged_page1.json"]
    with InterregSearch(answers, api_key=KEY) as server:
        result = scrape(source_for(server, hits_per_page=2))
        pages = [r.json()["requests"][0]["page"] for r in server.requests]
    assert pages == [0, 1]
    assert result.outcome is RunOutcome.OK
    by_id = {r.native_id: r for r in result.records}
    assert len(by_id) == 3
    alpine = by_id["callForProjectsPage_3301"]
    assert alpine.status is CallStatus.FORTHCOMING
    assert alpine.deadlines == (datetime(2027, 3, 12, 12, 0, tzinfo=UTC),)  # a real time is kept
    greece = by_id["callForProjectsPage_3342"]
    assert greece.countries == ("BG", "GR")  # NUTS "EL" is ISO "GR"
    assert greece.url == "https://interreg.eu/calls-for-projects/interreg-greece-bulgaria-2nd-call/"


@pytest.mark.parametrize("status", [403, 404])
def test_rejected_key_fails_the_run_with_the_fix(status: int) -> None:
    with InterregSearch([RECORDED / "paged_page0.json"], status=status) as server:
        result = scrape(source_for(server))
    assert result.outcome is RunOutcome.FAILED
    assert result.error == KEY_REJECTED
    assert result.error == "interreg.eu rejected the search key; set sources.interreg.api_key"


def test_a_rotated_key_is_refused_like_the_real_index() -> None:
    with InterregSearch([RECORDED / "paged_page0.json"], api_key="the-new-key") as server:
        result = scrape(source_for(server))
    assert result.error == KEY_REJECTED


def test_no_key_configured_fails_without_a_request() -> None:
    with InterregSearch([RECORDED / "paged_page0.json"]) as server:
        result = scrape(source_for(server, api_key=""))
        assert server.requests == []
    assert result.outcome is RunOutcome.FAILED and result.error == KEY_MISSING


def test_changed_shape_is_flagged_not_accepted() -> None:
    with pytest.raises(LayoutChanged):
        parse_response(load("changed_shape.json"))
    with InterregSearch([DIR / "changed_shape.json"], api_key=KEY) as server:
        result = scrape(source_for(server))
    assert result.outcome is RunOutcome.FAILED
    assert result.error and "results[0].hits" in result.error
    assert "error type: LayoutChanged" in result.notes


def test_unparseable_deadline_and_missing_title_are_counted_invalid() -> None:
    with InterregSearch([DIR / "invalid_items.json"], api_key=KEY) as server:
        result = scrape(source_for(server))
    assert [r.native_id for r in result.records] == ["callForProjectsPage_3129"]
    assert result.invalid == 2
    assert result.outcome is RunOutcome.OK


@pytest.mark.parametrize("nb_hits", [float("inf"), float("nan"), "1e400", "many"])
def test_a_hit_count_that_is_no_count_is_a_changed_layout(nb_hits: object) -> None:
    """``nbHits: 1e400`` (read as inf) used to raise OverflowError out of the scraper."""
    with pytest.raises(LayoutChanged, match="nbHits is not a count"):
        parse_response({"results": [{"hits": [], "nbHits": nb_hits}]})


def test_a_page_count_that_is_no_count_means_one_page() -> None:
    page = parse_response({"results": [{"hits": [], "nbHits": 0, "nbPages": float("inf")}]})
    assert (page.nb_hits, page.nb_pages) == (0, 1)
