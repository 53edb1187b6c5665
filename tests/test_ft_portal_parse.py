"""Parsing the portal's search results: every quirk in shared/sources/ft_portal.md, no I/O."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from scrapers.ft_portal import (
    FtPortalSettings,
    build_query,
    build_request,
    bulk_to_result,
    deadline_utc,
    keywords_of,
    normalize_all,
    normalize_result,
    parse_bulk,
    parse_page,
    parse_portal_time,
    sub_programme_of,
    topic_budget,
)
from tracker.demo.fakes.portal import RECORDINGS
from tracker.errors import InvalidRecord, LayoutChanged
from tracker.models import CallStatus

FIXTURES = Path(__file__).parent / "fixtures" / "ft_portal"
PORTAL = "https://portal.example/opportunities"
NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


def load(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["results"]


def recorded() -> list[dict[str, Any]]:
    return json.loads((RECORDINGS / "search_recorded_2026-11.json").read_text("utf-8"))["results"]


def by_identifier(rows: list[dict[str, Any]], identifier: str) -> dict[str, Any]:
    return next(r for r in rows if (r.get("metadata") or r).get("identifier") == [identifier])


def normalize(row: dict[str, Any], now: datetime = NOW):
    return normalize_result(row, source="ft_portal", portal_url=PORTAL, now=now)


SAMPLE_2026 = RECORDINGS / "search_response_excerpt_2026__AarhusAI_portal_search_page.json"
SAMPLE_2025 = FIXTURES / "search_response_pageSize10_2025-05-05__Paul-Mazaingue_ec-funding-alert-api.json"
CASCADE = RECORDINGS / "sedia_search_type8_cascade_response.json"
EXTERNAL = FIXTURES / "search_external_actions_and_links_2026.json"
ITEM_2023 = FIXTURES / "search_result_item_2023-04__unattributed.json"
REAL_QUERIES = sorted(FIXTURES.glob("search_request_query_*.json"))
REAL_SORT = FIXTURES / "search_request_sort_multikey__Paul-Mazaingue_config_sort.json"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2027-04-08T00:00:00.000+0000", date(2027, 4, 8)),  # date-only, new rows
        ("2023-05-11T02:00:00.000+0200", date(2023, 5, 11)),  # midnight UTC in an offset
        ("2023-12-07T01:00:00.000+0100", date(2023, 12, 7)),  # midnight UTC in CET
        ("2024-09-27+02:00 Europe/Brussels", date(2024, 9, 27)),
        ("2026-11-26", date(2026, 11, 26)),
        ("09 March 2023", date(2023, 3, 9)),
        ("2024-02-07T17:00:00.000+0000", datetime(2024, 2, 7, 17, 0, tzinfo=UTC)),
        ("2025-09-02T03:59:00.000+0000", datetime(2025, 9, 2, 3, 59, tzinfo=UTC)),
        (1713304800000, date(2024, 4, 17)),  # epoch ms at Brussels midnight (CEST)
        (None, None),
    ],
)
def test_portal_time_shapes(raw: Any, expected: Any) -> None:
    assert parse_portal_time(raw) == expected


def test_date_only_deadline_means_1700_brussels() -> None:
    assert deadline_utc("2027-01-20T00:00:00.000+0000") == datetime(2027, 1, 20, 16, 0, tzinfo=UTC)
    assert deadline_utc("2027-06-23T00:00:00.000+0000") == datetime(2027, 6, 23, 15, 0, tzinfo=UTC)
    assert deadline_utc("2025-09-02T03:59:00.000+0000") == datetime(2025, 9, 2, 3, 59, tzinfo=UTC)


def test_unparseable_date_raises() -> None:
    with pytest.raises(ValueError, match="unrecognised portal date"):
        parse_portal_time("31/02/2027 noon")


def test_metadata_lists_and_multiple_deadlines_two_stage() -> None:
    row = by_identifier(load(SAMPLE_2026), "HORIZON-MISS-2027-05-SOIL-01-two-stage")
    call = normalize(row)
    assert call.id == "ft_portal:HORIZON-MISS-2027-05-SOIL-01-two-stage"
    assert call.status is CallStatus.FORTHCOMING
    assert call.deadline_model == "two-stage"
    assert call.deadlines == (datetime(2027, 4, 8, 15, 0, tzinfo=UTC),
                              datetime(2027, 9, 14, 15, 0, tzinfo=UTC))
    assert call.programme == "Horizon Europe"
    assert call.call_identifier == "HORIZON-MISS-2027-05-two-stage"
    assert call.action_type == "RIA"
    assert call.url == f"{PORTAL}/topic-details/HORIZON-MISS-2027-05-SOIL-01-two-stage"
    assert "Agriculture" in call.keywords
    assert call.topic_identifier not in call.keywords  # the identifier is not a keyword
    assert call.budget_eur is None  # this sample's budgetOverview was truncated by its author


def test_keywords_in_both_shapes() -> None:
    plain = by_identifier(load(SAMPLE_2026), "HORIZON-CL6-2026-04-GOVERNANCE-01")
    encoded = by_identifier(load(SAMPLE_2026), "HORIZON-CL2-2024-TRANSFORMATIONS-01-08")
    assert keywords_of(plain["metadata"])[2] == "Data protection and privacy"
    words = keywords_of(encoded["metadata"])
    assert "Gender research" in words and not any(w.startswith("[") for w in words)


def test_new_budget_overview_picks_the_topic_not_the_call() -> None:
    call = normalize(by_identifier(load(SAMPLE_2026), "HORIZON-CL6-2026-04-GOVERNANCE-01"))
    assert (call.budget_eur, call.budget_min_eur, call.budget_max_eur, call.expected_grants) == (
        60_000_000, 60_000_000, 60_000_000, 1)


def test_old_budget_overview_numeric_amounts_and_shared_keys() -> None:
    rows = load(SAMPLE_2025)
    call = normalize(by_identifier(rows, "HORIZON-WIDERA-2023-ERA-01-03"))
    assert (call.budget_eur, call.budget_min_eur, call.expected_grants) == (3_000_000, 1_000_000, 3)
    # four topics under one key (one budget line of EUR 900,000 for all four): TRAI-03 must
    # not take it as its own, nor TRAI-04's, nor the sum; it gives no per-grant figures
    euaf = normalize(by_identifier(rows, "EUAF-2023-TRAI-03"))
    assert euaf.budget_eur is None
    assert (euaf.call_budget_eur, euaf.call_budget_topics) == (900_000, 4)
    assert euaf.programme == "Union Anti-Fraud Programme"


def test_topic_budget_prefix_needs_the_trailing_space() -> None:
    overview = {"budgetTopicActionMap": {"1": [
        {"action": "HORIZON-X-01-02 - HORIZON-RIA", "budgetYearMap": {"2026": "5"}},
        {"action": "HORIZON-X-01 - HORIZON-RIA", "budgetYearMap": {"2026": "7", "2027": "3"}},
    ]}}
    assert topic_budget(overview, "HORIZON-X-01")["budget_eur"] == 10
    assert topic_budget("not a dict", "HORIZON-X-01")["budget_eur"] is None


def test_latest_infos_and_call_updates_become_plain_text_updates() -> None:
    call = normalize(by_identifier(load(SAMPLE_2025), "EUAF-2023-TRAI-03"))
    assert len(call.updates) == 2
    assert call.updates[0].startswith("Apr 27, 2023 4:18:31 PM: The Call document was updated")
    assert all("<" not in u for u in call.updates)


def test_closed_flag_and_the_language_of_the_text() -> None:
    call = normalize(by_identifier(load(SAMPLE_2025), "HORIZON-CL3-2021-INFRA-01-02"))
    assert call.status is CallStatus.CLOSED
    assert call.language == "en"  # a "bg" copy whose text is the English original
    assert call.action_type == "IA"


def test_open_flag_rechecked_against_the_deadlines() -> None:
    row = by_identifier(recorded(), "DIGITAL-2026-SKILLS-09-SMEAI")
    assert row["metadata"]["status"] == ["31094502"]  # flagged open…
    assert normalize(row, now=datetime(2026, 11, 25, tzinfo=UTC)).status is CallStatus.CLOSED
    assert normalize(row, now=datetime(2026, 9, 1, tzinfo=UTC)).status is CallStatus.OPEN


def test_legacy_and_stub_rows_give_way_to_the_richest_current_row() -> None:
    rows = recorded()
    assert sum(1 for r in rows if (r.get("metadata") or {}).get("identifier") ==
               ["HORIZON-CL5-2027-D3-01-05"]) == 2  # current + legacy copy
    assert sum(1 for r in rows if (r.get("metadata") or {}).get("identifier") ==
               ["DIGITAL-2026-AI-08-TESTEF"]) == 2  # full row + stub
    for order in (rows, list(reversed(rows))):  # the winner does not depend on page order
        records, _ = normalize_all(order, source="ft_portal", portal_url=PORTAL, now=NOW)
        by_id = {r.native_id: r for r in records}
        h2 = by_id["HORIZON-CL5-2027-D3-01-05"]
        assert h2.title.startswith("Next-generation PEM")  # not the legacy copy's title
        assert h2.deadlines == (datetime(2027, 1, 20, 16, 0, tzinfo=UTC),)
        ai = by_id["DIGITAL-2026-AI-08-TESTEF"]
        assert ai.deadlines and ai.budget_eur == 20_000_000  # not the stub


def test_a_lone_legacy_row_is_kept_and_closed() -> None:
    legacy = by_identifier(load(SAMPLE_2026), "HORIZON-CL2-2024-TRANSFORMATIONS-01-08")
    call = normalize(legacy)
    assert call.status is CallStatus.CLOSED  # flagged forthcoming with a 2024 deadline
    assert call.url == f"{PORTAL}/topic-details/HORIZON-CL2-2024-TRANSFORMATIONS-01-08"


def test_cascade_rows_are_keyed_by_their_own_call() -> None:
    rows = load(CASCADE)
    records, invalid = normalize_all(rows, source="ft_portal", portal_url=PORTAL, now=NOW)
    assert invalid == 0
    assert sorted(r.native_id for r in records) == [
        "cascade-11143", "cascade-11145", "cascade-11264", "cascade-11265"]
    metu = next(r for r in records if r.native_id == "cascade-11143")
    assert metu.title == "METU Internships Offer"
    assert metu.topic_identifier == "DIGITAL-2023-SKILLS-05-SPECIALEDU"
    assert metu.budget_eur == 30_500
    assert metu.deadline_model == "multiple cut-off" and len(metu.deadlines) == 7
    assert metu.url.endswith("/competitive-calls-cs/46214053")
    assert metu.action_type == "FSTP"
    assert metu.summary.startswith("Within the framework of the SUSA project")


def test_type8_rows_without_metadata() -> None:
    row = next(r for r in recorded() if r["reference"] == "4107COMPETITIVE_CALLen")
    assert "metadata" not in row
    call = normalize(row)
    assert call.native_id == "cascade-4107"
    assert call.programme == "Single Market Programme"
    assert call.budget_eur == 900_000
    assert call.topic_identifier == "SMP-COSME-2021-CLUSTER-01"
    assert call.deadlines == (datetime(2027, 2, 15, 16, 59, tzinfo=UTC),)


def test_html_is_clean_text_and_non_ascii_is_kept() -> None:
    call = normalize(by_identifier(recorded(), "HORIZON-CL5-2027-D2-01-02"))
    assert call.title == "Électrolyse à haute température et stockage : démonstrateurs « Power-to-X »"
    assert "alert" not in call.summary and "<" not in call.summary
    assert "Ceramic electrolyser stacks (SOEC) > 1 MW." in call.summary


def test_a_malformed_record_is_skipped_counted_and_logged_with_its_identifier(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="scrapers.ft_portal"):
        records, invalid = normalize_all(recorded(), source="ft_portal", portal_url=PORTAL,
                                         now=NOW)
    assert invalid == 1
    [warning] = [r.getMessage() for r in caplog.records if "invalid record" in r.getMessage()]
    assert "call=HORIZON-CL4-2027-DIGITAL-EMERGING-01-30" in warning
    ids = {r.native_id for r in records}
    assert "HORIZON-CL4-2027-DIGITAL-EMERGING-01-30" not in ids
    assert "HORIZON-CL5-2027-D3-01-05" in ids


def test_a_record_without_title_or_identifier_is_invalid() -> None:
    row = copy.deepcopy(by_identifier(recorded(), "EU4H-2026-PJ-03"))
    row["metadata"]["title"] = []
    row["summary"] = None
    with pytest.raises(InvalidRecord, match="no title"):
        normalize(row)
    records, invalid = normalize_all([{"reference": "x", "metadata": {"type": ["1"]}}],
                                     source="ft_portal", portal_url=PORTAL, now=NOW)
    assert (records, invalid) == ([], 1)


def test_sub_programme() -> None:
    assert sub_programme_of("HORIZON-CL5-2024-D2-01-03") == "HORIZON-CL5"
    assert sub_programme_of("SMP-COSME-2026-CLUSTER-01") == "SMP-COSME"
    assert sub_programme_of("DIGITAL-2023-SKILLS-05") == "DIGITAL"
    assert sub_programme_of("weird") is None


def test_request_shape_follows_the_real_api() -> None:
    settings = FtPortalSettings(programmes=("Horizon Europe", "SMP"), types=("1", "8"))
    request = build_request(settings, page=3)
    assert request["params"] == {"apiKey": "SEDIA", "text": "***", "pageSize": 100,
                                 "pageNumber": 3}
    for name in ("query", "languages", "sort"):
        _filename, body, content_type = request["files"][name]
        assert content_type == "application/json"
        json.loads(body)
    assert json.loads(request["files"]["sort"][1]) == {"field": "identifier", "order": "ASC"}
    must = build_query(settings)["bool"]["must"]
    assert {"terms": {"status": ["31094501", "31094502"]}} in must
    assert {"terms": {"frameworkProgramme": ["43108390", "43252476"]}} in must
    assert {"terms": {"type": ["1", "8"]}} in must


def test_page_checks() -> None:
    with pytest.raises(LayoutChanged, match="page 2"):
        parse_page({"results": [], "pageNumber": 3}, expected_page=2)
    with pytest.raises(LayoutChanged):
        parse_page({"error": "x"}, expected_page=1)
    results, total = parse_page({"results": [{"a": 1}], "pageNumber": 1, "totalResults": 7}, 1)
    assert (len(results), total) == (1, 7)


def test_bulk_items_use_the_same_normalizer() -> None:
    item = json.loads((RECORDINGS / "grantsTenders.json").read_text("utf-8"))[
        "fundingData"]["GrantTenderObj"][0]
    call = normalize(bulk_to_result(item), now=datetime(2026, 11, 25, tzinfo=UTC))
    assert call.native_id == item["identifier"]
    assert call.programme == "Horizon Europe"
    assert call.deadlines == (datetime(2027, 1, 20, 16, 0, tzinfo=UTC),)
    assert call.budget_eur is None  # the bulk file has no budgets
    assert call.documents is None  # nor publicationDocuments: a degraded run keeps the stored


def test_links_and_publication_documents_are_decoded_twice_into_documents() -> None:
    row = by_identifier(load(EXTERNAL), "HORIZON-CL4-2027-RESILIENCE-01-12")
    assert isinstance(row["metadata"]["links"][0], str)  # JSON inside the string
    call = normalize(row)
    assert [(d.title, d.url) for d in call.documents or ()] == [
        ("Work programme 2026-2027: Digital, Industry and Space",
         "https://ec.europa.eu/info/funding-tenders/opportunities/docs/2021-2027/horizon/wp-call/"
         "2026-2027/wp-7-digital-industry-and-space_horizon-2026-2027_en.pdf"),
        ("HORIZON-IA HORIZON Innovation Actions",  # links: {url, criterionDescription}
         "https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/how-to-participate/"
         "submission/HORIZON-CL4-2027-RESILIENCE-01-12/HORIZON-IA"),
    ]  # the javascript: link is dropped
    assert call.budget_eur == 13_000_000 and call.action_type == "IA"


def test_real_rows_say_no_documents_or_nothing_about_them() -> None:
    for row in load(SAMPLE_2025):  # links is ["[]"] on every real 2025 row
        assert row["metadata"]["links"] == ["[]"]
        assert normalize(row).documents == ()
    for row in load(SAMPLE_2026):  # these rows carry neither links nor publicationDocuments
        assert normalize(row).documents is None


def test_type_2_external_action_rows() -> None:
    # read when the file was written (the 186930 call opened 2026-10-20): the dates decide
    # the status, and on NOW (April 2026) every row is still forthcoming
    written = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    records, invalid = normalize_all(load(EXTERNAL), source="ft_portal", portal_url=PORTAL,
                                     now=written)
    assert invalid == 0
    by_id = {r.native_id: r for r in records}
    prospect = by_id["prospect-186930"]  # keyed by its PROSPECT call id, as its page is
    assert prospect.programme == "EU External Action"
    assert prospect.status is CallStatus.OPEN
    assert prospect.call_identifier == "186930"
    assert prospect.topic_identifier == "EuropeAid/186930/DD/ACT/MK"
    assert prospect.url == f"{PORTAL}/prospect-details/186930PROSPECTSEN"
    assert prospect.budget_eur == 1_500_000
    assert prospect.deadlines == (datetime(2027, 1, 14, 16, 0, tzinfo=UTC),)
    assert prospect.summary.startswith("Grants for local civil-society organisations")
    assert [d.title for d in prospect.documents or ()] == ["Guidelines", "Annexes A to H"]
    ndici = by_id["prospect-187202"]
    assert ndici.programme == "NDICI - Global Europe"
    assert ndici.status is CallStatus.FORTHCOMING
    assert ndici.deadlines == (datetime(2027, 3, 4, 15, 0, tzinfo=UTC),)  # its own time kept
    assert ndici.documents == ()


def test_type_2_is_asked_for_with_the_external_action_codes() -> None:
    settings = FtPortalSettings(types=[1, 2, 8])  # type: ignore[arg-type]  # TOML numbers
    assert settings.types == ("1", "2", "8")
    must = build_query(settings)["bool"]["must"]
    assert must[0] == {"terms": {"status": ["31094501", "31094502"]}}
    topics, external = must[1]["bool"]["should"]
    assert topics["bool"]["must"][0] == {"terms": {"type": ["1", "8"]}}
    assert external["bool"]["must"][0] == {"terms": {"type": ["2"]}}
    topic_codes = topics["bool"]["must"][1]["terms"]["frameworkProgramme"]
    external_codes = external["bool"]["must"][1]["terms"]["frameworkProgramme"]
    assert "43108390" in topic_codes and not {"111111", "45876777"} & set(topic_codes)
    assert {"111111", "47376280", "45876777"} <= set(external_codes)
    only_external = build_query(FtPortalSettings(types=("2",), programmes=("NDICI",)))
    assert only_external["bool"]["must"][0] == {"terms": {"type": ["2"]}}
    assert only_external["bool"]["must"][2]["terms"]["frameworkProgramme"] == [
        "45876777", "111111", "47376280"]
    with pytest.raises(ValueError, match="unknown portal types"):
        FtPortalSettings(types=[3])  # type: ignore[arg-type]


def test_a_real_2023_row_forthcoming_then_open_then_closed_by_its_dates() -> None:
    """A real single result (2023): keywords as JSON inside a string, a deadline with its own
    time (19:00 +02:00, not the 17:00 Brussels default), and a status flag that says
    forthcoming long after the opening date (2023-12-07) and the cut-off: the dates decide."""
    row = json.loads(ITEM_2023.read_text(encoding="utf-8"))
    assert row["metadata"]["status"] == ["31094501"]  # forthcoming, as recorded
    assert normalize(row, now=datetime(2023, 11, 1, tzinfo=UTC)).status is CallStatus.FORTHCOMING
    before = normalize(row, now=datetime(2024, 1, 25, tzinfo=UTC))
    assert before.id == "ft_portal:HORIZON-CL5-2024-D2-01-03"
    assert before.status is CallStatus.OPEN and before.programme == "Horizon Europe"
    assert before.deadlines == (datetime(2024, 4, 18, 17, 0, tzinfo=UTC),)
    assert before.keywords[:2] == ("Energy storage", "Social Innovation")
    assert before.action_type == "RIA"
    assert normalize(row, now=datetime(2026, 11, 25, tzinfo=UTC)).status is CallStatus.CLOSED


def _terms(node: Any) -> dict[str, list[str]]:
    """Every ``terms`` filter in a search query, by field."""
    found: dict[str, list[str]] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "terms":
                for field, values in value.items():
                    found.setdefault(field, []).extend(values)
            else:
                for field, values in _terms(value).items():
                    found.setdefault(field, []).extend(values)
    elif isinstance(node, list):
        for item in node:
            for field, values in _terms(item).items():
                found.setdefault(field, []).extend(values)
    return found


def test_our_query_speaks_the_vocabulary_of_real_requests() -> None:
    """Field names and status codes as real clients send them (recorded requests), and the
    sort entries in their shape: a typo here returns an empty page, not an error."""
    real: dict[str, list[str]] = {}
    for path in REAL_QUERIES:
        for field, values in _terms(json.loads(path.read_text(encoding="utf-8"))).items():
            real.setdefault(field, []).extend(values)
    ours = _terms(build_query(FtPortalSettings(types=("1", "2", "8"))))
    assert set(ours) == {"type", "status", "frameworkProgramme"}
    assert {"type", "status"} <= set(real)
    assert set(ours["status"]) <= set(real["status"]) and set(ours["type"]) <= set(real["type"])
    real_sort = json.loads(REAL_SORT.read_text(encoding="utf-8"))
    ours_sort = json.loads(build_request(FtPortalSettings(), page=1)["files"]["sort"][1])
    assert ours_sort in real_sort  # {"field": "identifier", "order": "ASC"}


# -- hostile numbers: one poisoned record never costs the others ---------------------------

POISONED = FIXTURES / "search_poisoned_numbers_2026-11.json"


def test_non_finite_budget_figures_are_unknown_and_the_call_is_kept() -> None:
    """budgetYearMap {"2027": 1e400} and expectedGrants Infinity (both read as inf): the call
    is still a call people need to hear about, only its total and grant count are unknown."""
    call = normalize(by_identifier(load(POISONED), "EU4H-2026-PJ-03"))
    assert (call.budget_eur, call.budget_min_eur, call.budget_max_eur, call.expected_grants) == (
        None, 3_000_000, 3_000_000, None)
    assert call.deadlines == (datetime(2027, 1, 14, 16, 0, tzinfo=UTC),)


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), "1e400", "Infinity", -5])
def test_topic_budget_with_one_unusable_figure(bad: Any) -> None:
    """A total with an unusable year is unknown (a partial sum would be a wrong total)."""
    overview = {"budgetTopicActionMap": {"1": [{
        "action": "HORIZON-X-01 - HORIZON-RIA", "budgetYearMap": {"2026": "7", "2027": bad},
        "minContribution": bad, "maxContribution": 9, "expectedGrants": bad}]}}
    assert topic_budget(overview, "HORIZON-X-01") == {
        "budget_eur": None, "budget_min_eur": None, "budget_max_eur": 9, "expected_grants": None,
        "call_budget_eur": None, "call_budget_topics": None}


@pytest.mark.parametrize("kind", ["8", "2"])
def test_a_non_finite_plain_budget_is_unknown(kind: str) -> None:
    rows = load(CASCADE) if kind == "8" else load(EXTERNAL)
    row = copy.deepcopy(next(r for r in rows if (r.get("metadata") or r).get("type") == [kind]))
    fields = row.get("metadata") or row
    fields["budget"] = ["1e400"]
    call = normalize(row, now=datetime(2026, 11, 25, tzinfo=UTC))
    assert call.budget_eur is None


@pytest.mark.parametrize("epoch", [float("inf"), float("nan"), 1e22, "99999999999999999999999"])
def test_a_deadline_that_is_no_time_makes_only_its_record_invalid(epoch: Any) -> None:
    """A cut-off of inf (1e400 in the JSON) cannot be read: that record is invalid, as with
    any unreadable deadline, and every other record of the page is kept."""
    with pytest.raises(ValueError, match="unrecognised portal date"):
        parse_portal_time(epoch)
    rows = copy.deepcopy(recorded())
    by_identifier(rows, "EU4H-2026-PJ-03")["metadata"]["deadlineDate"] = [epoch]
    records, invalid = normalize_all(rows, source="ft_portal", portal_url=PORTAL, now=NOW)
    clean, clean_invalid = normalize_all(recorded(), source="ft_portal", portal_url=PORTAL, now=NOW)
    assert invalid == clean_invalid + 1
    assert {r.native_id for r in records} == {r.native_id for r in clean} - {"EU4H-2026-PJ-03"}


def test_an_unexpected_error_in_one_row_costs_only_that_row(caplog: pytest.LogCaptureFixture) -> None:
    """``actions`` whose ``types`` is a number trips the normalizer (TypeError): a bug met on
    one row, logged with its traceback, that makes only this row invalid."""
    rows = copy.deepcopy(recorded())
    by_identifier(rows, "EU4H-2026-PJ-03")["metadata"]["actions"] = [json.dumps([{"types": 5}])]
    with caplog.at_level(logging.WARNING):
        records, invalid = normalize_all(rows, source="ft_portal", portal_url=PORTAL, now=NOW)
    clean, clean_invalid = normalize_all(recorded(), source="ft_portal", portal_url=PORTAL, now=NOW)
    assert invalid == clean_invalid + 1
    assert {r.native_id for r in records} == {r.native_id for r in clean} - {"EU4H-2026-PJ-03"}
    [bug] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "call=EU4H-2026-PJ-03" in bug.getMessage() and bug.exc_info is not None
    assert any("call=EU4H-2026-PJ-03 error=unexpected TypeError" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.parametrize(
    ("page", "error"),
    [({"pageNumber": float("inf")}, "answered page inf"),
     ({"pageNumber": float("nan")}, "answered page nan"),
     ({"pageNumber": "two"}, "answered page 'two'")],
)
def test_a_page_number_that_is_no_number_is_a_changed_layout(page: dict[str, Any], error: str) -> None:
    with pytest.raises(LayoutChanged, match=error):
        parse_page({"results": [], **page}, expected_page=1)


@pytest.mark.parametrize("total", [float("inf"), float("nan"), 1e400, "lots"])
def test_a_total_that_is_no_count_is_unknown(total: Any) -> None:
    assert parse_page({"results": [{"a": 1}], "pageNumber": 1, "totalResults": total}, 1) == (
        [{"a": 1}], None)


def test_an_odd_bulk_object_is_skipped_and_the_rest_read(tmp_path: Path) -> None:
    bulk = json.loads((RECORDINGS / "grantsTenders.json").read_text("utf-8"))
    items = bulk["fundingData"]["GrantTenderObj"]
    odd = copy.deepcopy(items[0])
    odd["identifier"] = "HORIZON-ODD-2026-01"
    odd["keywords"] = 5  # a number where a list belongs
    items.insert(1, odd)
    items[2]["deadlineDatesLong"] = [float("inf")]  # written as 1e400, read back as inf
    path = tmp_path / "grantsTenders.json"
    path.write_text(json.dumps(bulk).replace("Infinity", "1e400"), encoding="utf-8")
    rows = list(parse_bulk(path, FtPortalSettings()))
    identifiers = [r["metadata"]["identifier"][0] for r in rows]
    assert "HORIZON-ODD-2026-01" not in identifiers
    assert identifiers[0] == items[0]["identifier"]
    records, invalid = normalize_all(rows, source="ft_portal", portal_url=PORTAL,
                                     now=datetime(2026, 11, 25, tzinfo=UTC))
    assert invalid == 1 and len(records) == len(rows) - 1
