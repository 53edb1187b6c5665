"""`callwatch calls show`: every stored field of a call, and its news items dated, newest first."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from tests.factories import make_call
from tests.test_cli import run
from tracker.exports.rows import NewsItem, news_items
from tracker.models import CallDocument, CallRecord, ScrapeResult
from tracker.store import db
from tracker.store.calls import Store

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
#: the portal's news lines as `updates_of` writes them from a recorded search response
#: (tests/fixtures/ft_portal/search_response_pageSize10_2025-05-05__…): oldest first here
PORTAL_NEWS = (
    "Mar 9, 2023 11:56:05 AM: The submission session is now available for: "
    "EUAF-2023-TRAI-02(EUAF-PJG), EUAF-2023-TRAI-01(EUAF-PJG)",
    "Apr 27, 2023 4:18:31 PM: The Call document was updated on 12 April 2023 for "
    "EUAF-2023-TRAI-01(EUAF-PJG), EUAF-2023-TRAI-02(EUAF-PJG).",
    "Deadline extension: see the updated work programme",
)


def every_field_set() -> CallRecord:
    """A record with a value in every field, so no field can hide behind its default."""
    return make_call(
        "HORIZON-CL4-2027-04-DIGITAL-EMERGING-10",
        sub_programme="HORIZON-CL4",
        budget_min_eur=1_000_000,
        budget_max_eur=3_000_000,
        expected_grants=2,
        action_type="RIA",
        tags=("Digital",),
        countries=("BE", "CZ"),
        regions=("CZ01",),
        audience=("SMEs", "Clusters"),
        language="en",
        updates=PORTAL_NEWS,
        documents=(CallDocument(title="Call document", url="https://example.invalid/call.pdf"),),
    )


def stored(database_url: str, record: CallRecord) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    Store(engine).record_run(record.source, ScrapeResult(records=[record]), started_at=NOW,
                             now=NOW)
    engine.dispose()


def test_show_json_carries_every_field_of_the_model(tmp_path: Path, database_url: str) -> None:
    record = every_field_set()
    stored(database_url, record)
    result = run("--db", database_url, "calls", "show", record.id, "--format", "json",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    expected = json.loads(record.model_dump_json())  # pydantic's own JSON of each field
    for name in CallRecord.model_fields:  # a field added to the model is checked here too
        assert name in shown, f"calls show --format json leaves out {name}"
        assert shown[name] == expected[name], name
    assert shown["audience"] == ["SMEs", "Clusters"]
    assert shown["updates"] == list(PORTAL_NEWS)
    assert shown["id"] == record.id and shown["still_listed"] is True


def test_show_table_has_a_row_per_field_and_the_news_newest_first(
    tmp_path: Path, database_url: str
) -> None:
    record = every_field_set()
    stored(database_url, record)
    result = run("--db", database_url, "calls", "show", record.id, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = result.stdout
    rows = {line.split("\t")[0] for line in table.splitlines()}  # piped: tab-separated
    for name in CallRecord.model_fields:
        assert name in rows, f"the calls show table has no row for {name}"
    assert "SMEs" in table and "Clusters" in table
    listing = table[table.index("newest first", table.index("news and notices")):]
    april = listing.index("2023-04-27")
    march = listing.index("2023-03-09")
    assert april < march < listing.index("Deadline extension")  # undated last
    assert "The Call document was updated" in listing[april:march]


def test_news_lines_are_dated_whatever_colons_their_time_holds() -> None:
    assert news_items([*PORTAL_NEWS, "2024-03-11: News article published"]) == [
        NewsItem(date(2024, 3, 11), "News article published"),
        NewsItem(date(2023, 4, 27), PORTAL_NEWS[1].split(" PM: ", 1)[1]),
        NewsItem(date(2023, 3, 9), PORTAL_NEWS[0].split(" AM: ", 1)[1]),
        NewsItem(None, "Deadline extension: see the updated work programme"),
    ]
    assert news_items([]) == []
