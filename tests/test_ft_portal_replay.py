"""The real portal scraper against the local replay server (tracker/demo/fakes/portal.py)."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scrapers._http import PoliteClient
from scrapers.ft_portal import FtPortalSettings, FtPortalSource
from tests.test_cli import CALLWATCH
from tracker.config import HttpSettings, load_config
from tracker.demo.fakes.portal import RECORDED_SEARCHES, RECORDINGS, PortalReplayServer, load_results
from tracker.exports.rows import call_as_json
from tracker.models import ChangeKind, RunOutcome, ScrapeResult
from tracker.pipeline import scrape_sources
from tracker.store.calls import Store

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FAST = HttpSettings(delay=0, backoff=0.01, max_backoff=0.05, retries=2, timeout=5)
#: type-2 external-action calls and a topic with links, written in the real shape
EXTERNAL = Path(__file__).parent / "fixtures" / "ft_portal" / "search_external_actions_and_links_2026.json"


@pytest.fixture
def server() -> Iterator[PortalReplayServer]:
    with PortalReplayServer() as running:
        yield running


@pytest.fixture
def external_server() -> Iterator[PortalReplayServer]:
    """The recorded results plus the external-action calls and the topic with links."""
    with PortalReplayServer(results=load_results([*RECORDED_SEARCHES, EXTERNAL])) as running:
        yield running


def scrape(server: PortalReplayServer, http: HttpSettings = FAST, **overrides: Any):
    settings = FtPortalSettings(search_url=server.search_url, bulk_url=server.bulk_url,
                                **overrides)

    async def go():
        async with PoliteClient(http) as client:
            return await FtPortalSource("ft_portal", settings, client).scrape(NOW)

    return asyncio.run(go())


def test_the_server_enforces_the_real_api_rules(server: PortalReplayServer) -> None:
    assert httpx.get(server.search_url).status_code == 405
    plain_fields = httpx.post(server.search_url, params={"pageNumber": 1},
                              data={"query": '{"bool":{}}'}, files={"x": ("f", b"{}", "text/plain")})
    assert plain_fields.status_code == 500
    octet = httpx.post(server.search_url, files={"query": ("blob", b"{}",
                                                           "application/octet-stream")})
    assert octet.status_code == 500 and "not supported" in octet.text
    # a query in the URL is ignored: every record comes back
    unfiltered = httpx.post(server.search_url, params={"query": '{"terms":{"type":["9"]}}',
                                                       "pageSize": 1000})
    assert unfiltered.json()["totalResults"] == len(server.results)
    assert unfiltered.json()["pageSize"] == 100  # capped


def test_a_full_scrape_satisfies_the_api_and_stores_every_valid_call(
    server: PortalReplayServer,
) -> None:
    result = scrape(server)
    assert result.outcome is RunOutcome.OK
    assert result.invalid == 1  # the recorded unparseable deadline
    ids = {r.native_id for r in result.records}
    assert {"HORIZON-CL5-2027-D3-01-05", "SMP-COSME-2026-CLUSTER-01", "cascade-4102",
            "cascade-4107", "cascade-11143", "HORIZON-MISS-2027-05-SOIL-01-two-stage"} <= ids
    search = server.searches[0]
    assert search["query_string"]["apiKey"] == ["SEDIA"]
    assert search["query_string"]["text"] == ["***"]
    assert search["sort"] == {"field": "identifier", "order": "ASC"}
    assert search["languages"] == ["en"]
    assert all(r.programme for r in result.records)


def test_multi_page_walk_until_a_short_page(server: PortalReplayServer) -> None:
    whole = scrape(server)
    paged = scrape(server, page_size=4)
    pages = [s["page"] for s in server.searches[1:]]
    assert pages == list(range(1, len(pages) + 1)) and len(pages) >= 5
    assert {r.id for r in paged.records} == {r.id for r in whole.records}
    assert paged.outcome is RunOutcome.OK


def test_an_exact_multiple_ends_on_an_empty_page() -> None:
    rows = load_results([RECORDINGS / "sedia_search_type8_cascade_response.json"])
    with PortalReplayServer(results=rows) as server:
        result = scrape(server, page_size=2)
        assert [s["page"] for s in server.searches] == [1, 2, 3]
        assert len(result.records) == 4 and result.outcome is RunOutcome.OK


def test_a_500_then_success_is_retried(server: PortalReplayServer) -> None:
    server.fail_next(1, 500)
    result = scrape(server)
    assert result.outcome is RunOutcome.OK and len(result.records) > 10


def test_429_with_retry_after_is_honoured(server: PortalReplayServer) -> None:
    """Each 429 says "Retry-After: 7": the client waits those 7 seconds (not its own 0.01 s
    backoff) before each retry. The waits go through the client's ``sleep``, recorded here."""
    server.fail_next(2, 429)
    server.retry_after = "7"
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    patient = FAST.model_copy(update={"max_backoff": 60})
    settings = FtPortalSettings(search_url=server.search_url, bulk_url=server.bulk_url)

    async def go() -> ScrapeResult:
        async with PoliteClient(patient, sleep=record) as client:
            return await FtPortalSource("ft_portal", settings, client).scrape(NOW)

    assert asyncio.run(go()).outcome is RunOutcome.OK
    assert waits == [7.0, 7.0]
    assert server.searches[0]["page"] == 1  # the search that finally answered


def test_persistent_500s_fall_back_to_the_bulk_file(server: PortalReplayServer) -> None:
    server.fail_next(100, 500)
    result = scrape(server)
    assert result.degraded
    assert result.outcome is RunOutcome.PARTIAL  # degraded runs never mark calls removed
    assert "search API failed" in (result.error or "")
    ids = {r.native_id for r in result.records}
    assert "HORIZON-CL5-2027-D3-01-05" in ids
    assert "EC-TENDER-2026-001" not in ids  # type 0 (tender) is not wanted
    assert not any(i.startswith("cascade-") for i in ids)  # the bulk file has no type 8


def test_search_and_bulk_both_down_fails_the_run(server: PortalReplayServer) -> None:
    server.fail_next(100, 503)
    server.bulk_status = 500
    result = scrape(server)
    assert result.outcome is RunOutcome.FAILED
    assert "bulk file failed too" in (result.error or "")


def test_a_page_failing_mid_walk_makes_the_run_partial(server: PortalReplayServer) -> None:
    server.fail_pages = {3}
    result = scrape(server, page_size=4)
    assert result.outcome is RunOutcome.PARTIAL
    assert "page 3" in (result.error or "")
    assert len(result.records) >= 6


def test_a_truncated_page_makes_the_run_partial(server: PortalReplayServer) -> None:
    server.truncate_pages = {2}
    result = scrape(server, page_size=4)
    assert result.outcome is RunOutcome.PARTIAL
    assert "not JSON" in (result.error or "")


def test_a_slow_server_times_out_and_is_reported() -> None:
    with PortalReplayServer() as server:
        server.slow = 2.0
        slow_http = HttpSettings(delay=0, backoff=0.01, retries=0, timeout=0.3)
        server.bulk_status = 404
        result = scrape(server, http=slow_http)
        assert result.outcome is RunOutcome.FAILED
        assert "timeout" in (result.error or "")
        server.slow = 0.0


def test_partial_runs_remove_nothing_and_a_moved_deadline_is_one_change(
    server: PortalReplayServer, store: Store,
) -> None:
    first = scrape(server)
    store.record_run("ft_portal", first, started_at=NOW, now=NOW)
    server.fail_pages = {2}
    for hours in (6, 12):
        partial = scrape(server, page_size=4)
        report = store.record_run("ft_portal", partial, started_at=NOW,
                                  now=NOW + timedelta(hours=hours))
        assert report.outcome is RunOutcome.PARTIAL
        assert not [c for c in report.changes if c.kind is ChangeKind.REMOVED_FROM_SOURCE]
    assert all(c.still_listed for c in store.list_calls(statuses=None))

    server.fail_pages = set()
    moved = copy.deepcopy(server.results)
    row = next(r for r in moved if r.get("reference") == "50201101TOPICSen")
    row["metadata"]["deadlineDate"] = ["2027-02-03T00:00:00.000+0000"]
    server.results = moved
    report = store.record_run("ft_portal", scrape(server), started_at=NOW,
                              now=NOW + timedelta(hours=18))
    assert [(c.call_id, c.kind) for c in report.changes] == [
        ("ft_portal:HORIZON-CL5-2027-D3-01-05", ChangeKind.DEADLINE_CHANGED)]
    assert report.changes[0].old == ["2027-01-20T16:00:00Z"]
    assert report.changes[0].new == ["2027-02-03T16:00:00Z"]


def test_budget_forthcoming_to_open_and_new_update_flow_into_history(
    server: PortalReplayServer, store: Store,
) -> None:
    store.record_run("ft_portal", scrape(server), started_at=NOW, now=NOW)
    changed = copy.deepcopy(server.results)
    valleys = next(r for r in changed if r.get("reference") == "50201140TOPICSen")
    valleys["metadata"]["status"] = ["31094502"]
    # the flag alone does not open it (the dates decide): the opening was brought forward
    valleys["metadata"]["startDate"] = ["2026-11-25T00:00:00.000+0000"]
    overview = json.loads(valleys["metadata"]["budgetOverview"][0])
    next(iter(overview["budgetTopicActionMap"].values()))[0]["budgetYearMap"] = {"2027": "12000000"}
    valleys["metadata"]["budgetOverview"] = [json.dumps(overview)]
    valleys["metadata"]["latestInfos"] = [json.dumps([{
        "approvalDate": "Dec 1, 2026 9:00:00 AM", "content": "<p>Budget increased to EUR 12 M.</p>"}])]
    server.results = changed
    report = store.record_run("ft_portal", scrape(server), started_at=NOW,
                              now=NOW + timedelta(hours=6))
    kinds = sorted(c.kind.value for c in report.changes)
    assert kinds == ["budget_changed", "details_changed", "documents_changed", "opened"]
    update = next(c for c in report.changes if c.kind is ChangeKind.DOCUMENTS_CHANGED)
    assert update.new == "Dec 1, 2026 9:00:00 AM: Budget increased to EUR 12 M."


def test_degraded_fallback_keeps_stored_budgets(server: PortalReplayServer, store: Store) -> None:
    store.record_run("ft_portal", scrape(server), started_at=NOW, now=NOW)
    server.fail_next(100, 500)
    report = store.record_run("ft_portal", scrape(server), started_at=NOW,
                              now=NOW + timedelta(hours=6))
    assert report.changes == []  # no false budget_changed from the poorer bulk data
    assert store.get_call("ft_portal:HORIZON-CL5-2027-D3-01-05").record.budget_eur == 15_000_000


def test_callwatch_scrape_ft_portal_end_to_end(server: PortalReplayServer, tmp_path: Path,
                                                database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
    env.update({
        "CALLWATCH_SOURCES__FT_PORTAL__SEARCH_URL": server.search_url,
        "CALLWATCH_SOURCES__FT_PORTAL__BULK_URL": server.bulk_url,
        "CALLWATCH_HTTP__DELAY": "0",
        "CALLWATCH_HTTP__BACKOFF": "0.01",
        "CALLWATCH_HTTP__MAX_BACKOFF": "0.05",
        "CALLWATCH_DATABASE__URL": database_url,
    })

    def callwatch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CALLWATCH, *args], env=env, cwd=tmp_path, capture_output=True,  # noqa: S603
                              text=True, timeout=120, check=False)

    callwatch("db", "upgrade")
    result = callwatch("scrape", "ft_portal")
    assert result.returncode == 0, result.stderr
    assert "ft_portal" in result.stdout and "ok" in result.stdout
    calls = {c["id"]: c for c in json.loads(callwatch("calls", "list", "--status", "all",
                                                      "--format", "json").stdout)}
    assert set(calls) == {r.id for r in scrape(server).records}  # every valid call, once
    h2 = calls["ft_portal:HORIZON-CL5-2027-D3-01-05"]
    assert h2["programme"] == "Horizon Europe"
    assert h2["status"] == "open"
    assert h2["deadlines"] == ["2027-01-20T16:00:00Z"]
    assert h2["budget_eur"] == 15_000_000
    assert h2["url"].endswith("/topic-details/HORIZON-CL5-2027-D3-01-05")
    assert h2["url"].startswith("https://ec.europa.eu/")  # the public page, not the replay host
    euroclusters = calls["ft_portal:cascade-4102"]
    assert euroclusters["programme"] == "Single Market Programme"
    assert len(euroclusters["deadlines"]) == 3
    assert calls["ft_portal:DIGITAL-2026-SKILLS-09-SMEAI"]["status"] == "closed"

    server.fail_next(100, 500)
    server.bulk_status = 500
    failed = callwatch("scrape", "ft_portal")
    assert failed.returncode == 1
    assert "failed" in failed.stdout
    sources = json.loads(callwatch("sources", "--format", "json").stdout)
    portal = next(s for s in sources if s["name"] == "ft_portal")
    assert portal["outcome"] == "failed" and portal["consecutive_failures"] == 1
    # nothing already stored was lost
    assert len(json.loads(callwatch("calls", "list", "--status", "all", "--format",
                                    "json").stdout)) == len(calls)


def test_type_2_when_configured_stores_the_external_action_calls(
    external_server: PortalReplayServer, store: Store, tmp_path: Path,
) -> None:
    server = external_server
    config = tmp_path / "callwatch.toml"
    config.write_text(
        "[http]\ndelay = 0\nbackoff = 0.01\nmax_backoff = 0.05\n\n"
        "[sources.ft_portal]\ntypes = [1, 2, 8]\n"
        f'search_url = "{server.search_url}"\nbulk_url = "{server.bulk_url}"\n',
        encoding="utf-8")
    settings = load_config(config, environ={})
    [outcome] = asyncio.run(scrape_sources(settings, store, ["ft_portal"], clock=lambda: NOW))
    assert outcome.report.outcome is RunOutcome.OK

    query = server.searches[0]["query"]  # one should group per set of programme codes
    assert [g["bool"]["must"][0] for g in query["bool"]["must"][1]["bool"]["should"]] == [
        {"terms": {"type": ["1", "8"]}}, {"terms": {"type": ["2"]}}]
    stored = store.get_call("ft_portal:prospect-186930")
    record = stored.record
    assert record.programme == "EU External Action"
    assert record.status.value == "open"
    assert record.budget_eur == 1_500_000
    assert record.deadlines == (datetime(2027, 1, 14, 16, 0, tzinfo=UTC),)
    assert record.url == ("https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/"
                          "opportunities/prospect-details/186930PROSPECTSEN")
    assert [d["title"] for d in call_as_json(stored, NOW)["documents"]] == [
        "Guidelines", "Annexes A to H"]
    assert store.get_call("ft_portal:prospect-187202").record.programme == "NDICI - Global Europe"
    ids = {c.id for c in store.list_calls(statuses=None)}
    assert {"ft_portal:HORIZON-CL5-2027-D3-01-05", "ft_portal:cascade-4102"} <= ids
    assert "ft_portal:NDICI-2027-GEO-CSO-01" not in ids  # type 1 of a programme not configured

    # the default types (1 and 8) bring no external-action call
    assert not [r for r in scrape(server).records if r.native_id.startswith("prospect-")]


def test_a_new_call_document_is_one_documents_changed(
    external_server: PortalReplayServer, store: Store,
) -> None:
    server = external_server
    store.record_run("ft_portal", scrape(server, types=("1", "2", "8")), started_at=NOW, now=NOW)
    changed = copy.deepcopy(server.results)
    row = next(r for r in changed if r.get("reference") == "186930PROSPECTSEN")
    documents = json.loads(row["metadata"]["publicationDocuments"][0])
    documents = [d for d in documents if d.get("nameDoc") != "Annexes A to H"]  # gone: no event
    corrigendum = "https://webgate.ec.europa.eu/prospect/external/files/186930/corrigendum_1_en.pdf"
    documents.append({"docUrl": corrigendum, "nameDoc": "Corrigendum 1", "typeDoc": "Corrigendum",
                      "languageDoc": "EN", "finalPublicDocDate": "2026-12-01"})
    row["metadata"]["publicationDocuments"] = [json.dumps(documents)]
    server.results = changed
    report = store.record_run("ft_portal", scrape(server, types=("1", "2", "8")), started_at=NOW,
                              now=NOW + timedelta(hours=6))
    assert [(c.call_id, c.kind, c.field, c.new) for c in report.changes] == [
        ("ft_portal:prospect-186930", ChangeKind.DOCUMENTS_CHANGED, "documents",
         f"Corrigendum 1: {corrigendum}")]
    stored = store.get_call("ft_portal:prospect-186930").record
    assert [d.title for d in stored.documents or ()] == ["Guidelines", "Corrigendum 1"]


def test_documents_read_for_the_first_time_are_a_baseline_not_a_burst(
    external_server: PortalReplayServer, store: Store,
) -> None:
    server = external_server
    first = scrape(server, types=("1", "2", "8"))
    # as stored by a version that did not read links and publicationDocuments
    before = ScrapeResult(records=[r.model_copy(update={"documents": None})
                                   for r in first.records])
    store.record_run("ft_portal", before, started_at=NOW, now=NOW)
    report = store.record_run("ft_portal", scrape(server, types=("1", "2", "8")),
                              started_at=NOW, now=NOW + timedelta(hours=6))
    assert report.changes == []
    assert store.get_call("ft_portal:HORIZON-CL4-2027-RESILIENCE-01-12").record.documents


#: the recorded results with one topic poisoned: budgetYearMap {"2027": 1e400} and
#: expectedGrants Infinity, as the JSON inside its budgetOverview string (fixture README)
POISONED = Path(__file__).parent / "fixtures" / "ft_portal" / "search_poisoned_numbers_2026-11.json"
POISONED_ID = "EU4H-2026-PJ-03"


def poison_deadline(row: dict[str, Any]) -> None:
    row["metadata"]["deadlineDate"] = [float("inf")]  # 1e400 on the wire


def poison_actions(row: dict[str, Any]) -> None:
    row["metadata"]["actions"] = [json.dumps([{"types": 5}])]  # trips a TypeError (a bug)


@pytest.mark.parametrize(("poison", "kept"), [(None, True), (poison_deadline, False),
                                              (poison_actions, False)])
def test_one_poisoned_record_costs_at_most_itself(store: Store, poison: Any, kept: bool) -> None:
    """Served by the replay server among 23 other results: a non-finite budget and grant
    count leave those figures unknown and keep the call; a non-finite cut-off, or a row that
    trips an unexpected error, makes that one record invalid. Every other call is stored."""
    clean_rows = load_results(RECORDED_SEARCHES)
    rows = load_results([POISONED, *RECORDED_SEARCHES[1:]])
    if poison is not None:
        poison(next(r for r in rows if r["metadata"].get("identifier") == [POISONED_ID]))
    with PortalReplayServer(results=clean_rows) as clean_server:
        clean = scrape(clean_server)
    with PortalReplayServer(results=rows) as server:
        result = scrape(server)
    assert result.outcome is RunOutcome.OK
    store.record_run("ft_portal", result, started_at=NOW, now=NOW)
    stored = {c.record.native_id: c.record for c in store.list_calls(statuses=None)}
    others = {r.native_id for r in clean.records} - {POISONED_ID}
    assert len(others) == 20 and others <= set(stored)
    assert all(stored[i] == r for r in clean.records if (i := r.native_id) != POISONED_ID)
    assert (POISONED_ID in stored) is kept
    assert result.invalid == clean.invalid + (0 if kept else 1)
    if kept:
        assert (stored[POISONED_ID].budget_eur, stored[POISONED_ID].expected_grants) == (None, None)
        assert stored[POISONED_ID].budget_max_eur == 3_000_000
