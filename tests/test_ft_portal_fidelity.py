"""Data fidelity of the portal source on real recordings (issue 13, points 1, 3 and 5).

1. A Joint Undertaking's budget table gives the call total on every topic: it is the call
   total (``call_budget_eur``), never the topic's budget, and budget filters never see it.
2. The bulk-file fallback gives the same record as the search API wherever the file has the
   data (type of action, deadline model, dates, status…).
3. A record says the language of the text it keeps, not the label of the copy it came from.

Fixtures and their origin: tests/fixtures/ft_portal/README.md.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import scrapers.ft_portal as ft_portal
from scrapers.ft_portal import (
    FtPortalSettings,
    FtPortalSource,
    bulk_to_result,
    normalize_all,
    normalize_result,
    reads_as_english,
    topic_budget,
)
from tests.rules_oracle import match_naive
from tests.sources_support import scrape
from tests.test_cli import run
from tests.test_ft_portal_parse import SAMPLE_2025, SAMPLE_2026, by_identifier
from tracker.delivery.render import AlertItem, describe_change, render_alert
from tracker.demo.fakes.portal import PortalReplayServer, load_results
from tracker.models import CallRecord, ChangeKind, ScrapeResult
from tracker.rules.matcher import match_calls
from tracker.rules.profiles import Profile
from tracker.store.calls import Store

FIXTURES = Path(__file__).parent / "fixtures" / "ft_portal"
PORTAL = "https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

#: recorded: the HORIZON-JU-CBE-2026-IAFlag-02 result of a real 2.151 search page
CBE_PAGE = FIXTURES / "search_page_2026_JU_CBE__AarhusAI_portal_search_page.json"
#: recorded: a slice of a real grantsTenders.json (two grant topics and a tender)
BULK_SLICE = FIXTURES / "grantsTenders_slice_2026__halli75_grantfin.json"
#: written in the real shape: the search API's row for the ESC topic of the bulk slice
ESC_SEARCH = FIXTURES / "search_ESC-HUMAID-2021-QUAL-LABEL-FP_written.json"
#: written in the real shape: the bulk object for the real CL6 search row below
CL6_BULK = FIXTURES / "grantsTenders_HORIZON-CL6-2026-04-GOVERNANCE-01_written.json"

CBE_TOTAL = 170_760_699
#: The fixture's author cut the CBE row's budgetOverview after the IAFlag-03 action's
#: opening date (README). What the cut removed, written in the shape of the CSA-01 action
#: before it: the rest of that action, then the closing brackets. No action is added.
CBE_TABLE_END = '","deadlineModel":"single-stage","deadlineDates":["2026-09-22"]}]}}'


def bulk_items(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text("utf-8"))["fundingData"]["GrantTenderObj"]


def normalize(row: dict[str, Any], now: datetime = NOW) -> CallRecord:
    return normalize_result(row, source="ft_portal", portal_url=PORTAL, now=now)


def cbe_row(identifier: str, type_of_action: str) -> dict[str, Any]:
    """The recorded CBE row with its budget table completed (CBE_TABLE_END) and, for a
    sibling topic, its own identifier and type of action: the budget table is the call's,
    the same on every topic of HORIZON-JU-CBE-2026 (written in the real shape)."""
    row = copy.deepcopy(load_results([CBE_PAGE])[0])
    fields = row["metadata"]
    fields["budgetOverview"] = [fields["budgetOverview"][0] + CBE_TABLE_END]
    if identifier != "HORIZON-JU-CBE-2026-IAFlag-02":
        fields["identifier"] = [identifier]
        fields["keywords"][0] = identifier
        fields["actions"] = [fields["actions"][0].replace(
            "HORIZON-JU-IA HORIZON JU Innovation Actions", type_of_action)]
    return row


CSA_01 = ("HORIZON-JU-CBE-2026-CSA-01", "HORIZON-JU-CSA HORIZON JU Coordination and Support Actions")
IAFLAG_03 = ("HORIZON-JU-CBE-2026-IAFlag-03", "HORIZON-JU-IA HORIZON JU Innovation Actions")


# -- point 1: a Joint Undertaking's call total is not the topic's budget --------------------

def test_the_recorded_cbe_table_gives_the_call_total_on_every_topic() -> None:
    """The real row as recorded: each action of the one budget line carries 170,760,699."""
    recorded = load_results([CBE_PAGE])[0]["metadata"]["budgetOverview"][0]
    table = json.loads(recorded + CBE_TABLE_END)
    [line] = table["budgetTopicActionMap"].values()
    assert [a["budgetYearMap"] for a in line] == [{"2026": str(CBE_TOTAL)}] * 2
    assert [(a["expectedGrants"], a["maxContribution"]) for a in line] == [(1, 1_200_000),
                                                                          (1, 20_000_000)]


@pytest.mark.parametrize(("topic", "own_budget"), [(CSA_01, 1_200_000), (IAFLAG_03, 20_000_000)])
def test_a_ju_topic_budget_is_its_own_grants_and_the_call_total_is_kept_apart(
        topic: tuple[str, str], own_budget: int) -> None:
    call = normalize(cbe_row(*topic))
    assert call.topic_identifier == topic[0]
    assert call.budget_eur == own_budget  # one grant of max = min: max × expected grants
    assert call.budget_min_eur == call.budget_max_eur == own_budget
    assert call.expected_grants == 1
    assert (call.call_budget_eur, call.call_budget_topics) == (CBE_TOTAL, 2)


def test_equal_figures_on_separate_lines_stay_each_topics_own() -> None:
    """Real 2022 SNS JU table: STREAM-B-01-03 and STREAM-C-01-01 both have EUR 25 M, each
    on its own line: that is each topic's budget, not a shared one (and C's 3 × 10 M is
    only a ceiling)."""
    row = by_identifier(load_results([SAMPLE_2025]), "HORIZON-JU-SNS-2022-STREAM-A-01-06")
    table = json.loads(row["metadata"]["budgetOverview"][0])
    for topic in ("HORIZON-JU-SNS-2022-STREAM-C-01-01", "HORIZON-JU-SNS-2022-STREAM-B-01-03"):
        figures = topic_budget(table, topic)
        assert (figures["budget_eur"], figures["call_budget_eur"]) == (25_000_000, None)


def test_a_budget_line_shared_by_several_topics_of_an_old_table() -> None:
    """Real 2022 CEF row: four topics under one key carry EUR 2 bn together."""
    call = normalize(by_identifier(load_results([SAMPLE_2025]), "CEF-T-2022-CORECOEN-MARP-WORKS"))
    assert call.budget_eur is None  # no per-grant figures: the topic's own budget is unknown
    assert (call.call_budget_eur, call.call_budget_topics) == (2_000_000_000, 4)


def test_budget_filters_read_the_topics_own_budget_only() -> None:
    call = normalize(cbe_row(*CSA_01))
    big = Profile.model_validate({"name": "big", "budget_eur": {"min": 50_000_000}})
    small = Profile.model_validate({"name": "small", "budget_eur": {"max": 2_000_000}})
    for matcher in (match_calls, match_naive):
        assert matcher([call], [big], NOW, frozenset()) == []
        assert [m.call.id for m in matcher([call], [small], NOW, frozenset())] == [call.id]


def test_messages_show_the_call_total_as_such() -> None:
    call = normalize(cbe_row(*CSA_01))
    message = render_alert(AlertItem(call=call, profile="bio"), now=NOW, timezone="UTC")
    line = ("EUR 1.2 M for this topic, up to EUR 1.2 M per grant, 1 grant expected, "
            "call total EUR 170.8 M (shared by 2 topics)")
    for text in (message.text, message.telegram[0], message.html):
        assert line in text
    [section] = message.document["sections"]
    [item] = section["items"]
    assert (item["budget_eur"], item["budget"]) == (1_200_000, line)


def test_the_corrected_budget_is_one_change_that_names_both_figures(store: Store) -> None:
    """A topic stored with the call total as its budget (as before this fix) is corrected
    once; the change says the topic's new figure, and the call total is not lost."""
    fixed = normalize(cbe_row(*CSA_01))
    stored_before = fixed.model_copy(update={"budget_eur": CBE_TOTAL, "call_budget_eur": None,
                                             "call_budget_topics": None})
    store.record_run("ft_portal", ScrapeResult(records=[stored_before]), started_at=NOW, now=NOW)
    later = NOW + timedelta(hours=6)
    report = store.record_run("ft_portal", ScrapeResult(records=[fixed]), started_at=later, now=later)
    [change] = report.changes
    assert change.kind is ChangeKind.BUDGET_CHANGED
    assert describe_change(change, ZoneInfo("UTC")) == (
        "budget EUR 170.8 M → 1.2 M; call total unknown → EUR 170.8 M")
    assert store.get_call(fixed.id).record.call_budget_eur == CBE_TOTAL


def test_a_degraded_run_keeps_the_stored_call_total(store: Store) -> None:
    """The bulk file has no budgets: a fallback run keeps the call total it cannot read, as
    it keeps the topic's budget, and announces nothing."""
    full = normalize(cbe_row(*CSA_01))
    store.record_run("ft_portal", ScrapeResult(records=[full]), started_at=NOW, now=NOW)
    poorer = full.model_copy(update={name: None for name in (
        "budget_eur", "budget_min_eur", "budget_max_eur", "expected_grants", "call_budget_eur",
        "call_budget_topics")})
    later = NOW + timedelta(hours=6)
    report = store.record_run("ft_portal", ScrapeResult(records=[poorer], degraded=True,
                                                        complete=False), started_at=later, now=later)
    assert report.changes == []
    assert store.get_call(full.id).record == full


def test_calls_show_gives_the_call_total_in_its_own_field(
        tmp_path: Path, database_url: str, store: Store) -> None:
    call = normalize(cbe_row(*CSA_01))
    store.record_run("ft_portal", ScrapeResult(records=[call]), started_at=NOW, now=NOW)
    shown = run("--db", database_url, "calls", "show", call.id, "--format", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (data["budget_eur"], data["call_budget_eur"], data["call_budget_topics"]) == (
        1_200_000, CBE_TOTAL, 2)
    listed = run("--db", database_url, "calls", "list", "--status", "all", cwd=tmp_path)
    assert "EUR 1.2 M" in listed.stdout and "170.8" not in listed.stdout


# -- point 3: the bulk file gives the search API's record wherever it has the data ----------

#: What the bulk file does not carry (shared/sources/ft_portal.md §3.1: no budgets, no
#: description, no places), and what the fallback leaves out on purpose (bulk_to_result:
#: ``updates``, whose dates the file writes otherwise, and ``documents``, which would lack
#: the publicationDocuments). A degraded run keeps the stored values of all of them.
NOT_IN_THE_BULK_FILE = frozenset({
    "summary", "budget_eur", "budget_min_eur", "budget_max_eur", "expected_grants",
    "call_budget_eur", "call_budget_topics", "countries", "regions", "audience", "updates",
    "documents",
})


def assert_same_record_where_the_file_has_the_data(
        from_bulk: CallRecord, from_search: CallRecord, also_missing: frozenset[str] = frozenset(),
) -> None:
    """Every field of the model, so that a new field must be placed on one side or the other."""
    skipped = NOT_IN_THE_BULK_FILE | also_missing
    assert skipped <= set(CallRecord.model_fields)
    for name in CallRecord.model_fields:
        if name not in skipped:
            assert getattr(from_bulk, name) == getattr(from_search, name), name


def test_the_recorded_bulk_file_gives_the_search_apis_record() -> None:
    """The real ESC-HUMAID-2021-QUAL-LABEL-FP object; its ``deadlineModel`` is ``{}`` (the
    file has no deadline model for it), so that field is not compared."""
    item = next(i for i in bulk_items(BULK_SLICE) if i["identifier"] == "ESC-HUMAID-2021-QUAL-LABEL-FP")
    result = bulk_to_result(item)
    assert result is not None
    from_bulk = normalize(result)
    from_search = normalize(load_results([ESC_SEARCH])[0])
    assert from_bulk.action_type == from_search.action_type == "CERT"
    assert from_bulk.deadlines[-1] == datetime(2026, 9, 22, 15, 0, tzinfo=UTC)  # 17:00 CEST
    assert_same_record_where_the_file_has_the_data(
        from_bulk, from_search, also_missing=frozenset({"deadline_model"}))


def test_the_bulk_file_gives_the_type_of_action_and_deadline_model_of_the_search_api() -> None:
    """The real CL6 search row against its bulk object (written in the shape of the recorded
    slice): the deadline model comes from the action's ``submissionProcedure``, as the
    file's own ``deadlineModel`` is ``{}``."""
    from_search = normalize(by_identifier(load_results([SAMPLE_2026]), "HORIZON-CL6-2026-04-GOVERNANCE-01"))
    result = bulk_to_result(bulk_items(CL6_BULK)[0])
    assert result is not None
    from_bulk = normalize(result)
    assert (from_bulk.action_type, from_bulk.deadline_model) == ("COFUND", "single-stage")
    assert_same_record_where_the_file_has_the_data(from_bulk, from_search)


def test_the_degraded_fallback_reads_the_recorded_bulk_file() -> None:
    """The search API fails; the replay server serves the recorded slice as the bulk file."""
    with PortalReplayServer(bulk=BULK_SLICE.read_bytes()) as server:
        server.fail_next(100, 500)
        settings = FtPortalSettings(
            search_url=server.search_url, bulk_url=server.bulk_url,
            programmes=("Erasmus+", "European Solidarity Corps"))
        scraped = scrape(lambda http: FtPortalSource("ft_portal", settings, http),
                         datetime(2026, 3, 1, tzinfo=UTC))
    assert scraped.degraded
    kinds = {r.native_id: r.action_type for r in scraped.records}
    assert kinds == {"ERASMUS-EDU-2022-ECHE-CERT-FP": "CERT", "ESC-HUMAID-2021-QUAL-LABEL-FP": "CERT"}


# -- point 5: the language of the text kept ---------------------------------------------------

def test_untranslated_bulgarian_copies_are_english() -> None:
    """The 2025 sample holds ``bg`` copies only, whose titles and texts are English."""
    for row in load_results([SAMPLE_2025]):
        assert row["language"] == "bg"
        assert normalize(row).language == "en", row["metadata"]["identifier"]


def copy_labelled(row: dict[str, Any], language: str) -> dict[str, Any]:
    """A language copy of ``row``: the fields that name the copy changed, the text kept."""
    labelled = copy.deepcopy(row)
    labelled["language"] = language
    labelled["reference"] = labelled["reference"][:-2] + language
    fields = labelled["metadata"]
    fields["language"] = [language]
    fields["REFERENCE"] = [labelled["reference"]]
    return labelled


def test_spanish_and_romanian_copies_of_an_english_text_are_english() -> None:
    english = by_identifier(load_results([SAMPLE_2026]), "HORIZON-CL6-2026-04-GOVERNANCE-01")
    copies = [copy_labelled(english, "es"), copy_labelled(english, "ro")]
    records, invalid = normalize_all(copies, source="ft_portal", portal_url=PORTAL, now=NOW)
    assert invalid == 0
    [record] = records
    assert record.language == "en"


def test_a_translated_copy_keeps_its_language() -> None:
    translated = copy_labelled(
        by_identifier(load_results([SAMPLE_2026]), "HORIZON-CL6-2026-04-GOVERNANCE-01"), "es")
    translated["metadata"]["title"] = [
        "Actividades adicionales para la Asociación Europea de Agricultura de Datos"]
    translated["metadata"]["descriptionByte"] = [
        "<p>Se espera que la propuesta seleccionada contribuya a los resultados previstos del "
        "tema, para la continuación de las actividades de la asociación europea, de acuerdo "
        "con los resultados ya acordados y con el plan estratégico de Horizonte Europa.</p>"]
    assert normalize(translated).language == "es"


@pytest.mark.parametrize(("text", "english"), [
    ("Staff exchanges", False),  # too short to tell: the copy's label is kept
    ("The project is expected to contribute to all of the following expected outcomes", True),
    ("Projekt ma przyczynić się do wszystkich poniższych oczekiwanych rezultatów to on", False),
    ("Het project zal bijdragen aan de resultaten, of het nu in de regio is of niet", False),
])
def test_reads_as_english(text: str, english: bool) -> None:
    assert reads_as_english(text) is english


@pytest.mark.parametrize(("text", "label", "language"), [
    ("Het project zal bijdragen aan de resultaten", "en", "en"),  # labelled en: not read
    ("The project is expected to contribute to all of the following outcomes", "bg", "en"),
    ("Het project zal bijdragen aan de resultaten, of het nu in de regio is of niet", "nl", "nl"),
    ("Staff exchanges", "", None),
])
def test_text_language(text: str, label: str, language: str | None,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy labelled en is en without its text being read (the test could only say en)."""
    read: list[str] = []
    monkeypatch.setattr(ft_portal, "reads_as_english",
                        lambda t: read.append(t) or reads_as_english(t))
    assert ft_portal.text_language(text, label) == language
    assert bool(read) is (label != "en")
