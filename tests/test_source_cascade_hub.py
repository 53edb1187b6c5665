"""Cascade Funding Hub: the JSON embedded in the page, details, layout and challenge checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from scrapers.cascade_hub import CascadeHubSettings, CascadeHubSource, parse_page, record_from_item
from tests.sources_support import FIXTURES, NOW, scrape
from tracker.dedupe import group_duplicates
from tracker.demo.fakes import RECORDINGS
from tracker.demo.fakes._server import Reply
from tracker.demo.fakes.sites import FixtureSite
from tracker.errors import InvalidRecord, LayoutChanged
from tracker.models import CallRecord, CallStatus, RunOutcome
from tracker.ports import HttpClient

RECORDED = RECORDINGS / "cascade_hub"  # the page the demo serves too; the only copy
DIR = FIXTURES / "cascade_hub"  # test-only: the page after a change of layout


def source(site: FixtureSite, **overrides: object) -> Callable[[HttpClient], CascadeHubSource]:
    settings = CascadeHubSettings.model_validate({"url": site.url + "/open-calls/", **overrides})
    return lambda http: CascadeHubSource("cascade_hub", settings, http)


def items() -> list[dict[str, object]]:
    return parse_page((RECORDED / "open_calls.html").read_text(encoding="utf-8"))


def test_embedded_proposals_become_calls_with_their_details() -> None:
    grappa = record_from_item(items()[0], source="cascade_hub", now=NOW)
    assert grappa.native_id == "4512"
    assert grappa.title == "GRAPPA Innovation Open Call – Cut-off 2"  # entity decoded
    assert grappa.url == "https://cascadefunding.eu/open-call/grappa-innovation-open-call-cut-off-2/"
    assert grappa.deadlines == (datetime(2026, 10, 20, 15, 0, tzinfo=UTC),)  # 17:00 Brussels
    assert (grappa.budget_max_eur, grappa.programme, grappa.status) == (60000, "Cascade funding",
                                                                        CallStatus.OPEN)
    assert grappa.audience == ("SMEs",)
    assert grappa.tags == ("Agrifood", "Bioeconomy", "Biotechnology")
    assert "Minimum TRL 6" in grappa.summary and "website: https://i4be.eu/grappa/" in grappa.summary
    umx = record_from_item(items()[1], source="cascade_hub", now=NOW)
    assert umx.deadlines == (datetime(2026, 12, 3, 22, 59, 59, tzinfo=UTC),)  # midnight = that day


def test_a_portal_cascade_link_dedupes_with_the_portal_record() -> None:
    umx = record_from_item(items()[1], source="cascade_hub", now=NOW)
    portal = CallRecord(source="ft_portal", native_id="11143COMPETITIVE_CALLen", title="UMX",
                        status=CallStatus.OPEN,
                        url="https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/"
                            "opportunities/competitive-calls-cs/46214053")
    assert [g.sources for g in group_duplicates([portal, umx])] == [("ft_portal", "cascade_hub")]


def test_rolling_close_is_invalid() -> None:
    with pytest.raises(InvalidRecord, match="rolling"):
        record_from_item(items()[2], source="cascade_hub", now=NOW)


def test_scrape_reads_the_page_and_optionally_the_evaluator_calls() -> None:
    with FixtureSite({"/open-calls/": RECORDED / "open_calls.html"}) as site:
        proposals = scrape(source(site))
        everything = scrape(source(site, arrays=["dataProposals", "dataEvaluators", "dataMentors"]))
    assert proposals.outcome is RunOutcome.OK
    assert len(proposals.records) == 2 and proposals.invalid == 1
    assert len(everything.records) == 3
    assert any(r.action_type == "open call for evaluators" for r in everything.records)


def test_a_page_without_the_array_or_a_challenge_fails_the_run() -> None:
    with pytest.raises(LayoutChanged, match="dataProposals"):
        parse_page((DIR / "open_calls_js_rendered.html").read_text(encoding="utf-8"))
    challenge = (FIXTURES / "challenge" / "cloudflare_just_a_moment.html").read_bytes()
    with FixtureSite({"/open-calls/": DIR / "open_calls_js_rendered.html"}) as site:
        changed = scrape(source(site))
        site.set_route("/open-calls/", Reply(403, challenge, {"Content-Type": "text/html"}))
        blocked = scrape(source(site))
    assert changed.outcome is RunOutcome.FAILED and "error type: LayoutChanged" in changed.notes
    assert blocked.outcome is RunOutcome.FAILED and blocked.error and "challenge" in blocked.error


@pytest.mark.parametrize("raw", [float("inf"), float("nan")])
def test_a_funding_figure_that_is_not_finite_is_unknown_and_the_call_kept(raw: float) -> None:
    """``"raw": 1e400`` in the embedded JSON reads as inf; ``int(inf)`` used to raise
    OverflowError, which ended the whole run."""
    item = {**items()[0], "funding_per_project": {"raw": raw, "format": "€ ∞"}}
    grappa = record_from_item(item, source="cascade_hub", now=NOW)
    assert grappa.native_id == "4512" and grappa.budget_max_eur is None
