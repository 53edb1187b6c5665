"""Plain-data views of stored calls for JSON and CSV output (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tracker.dates import isoformat_utc
from tracker.dedupe import group_duplicates
from tracker.models import CallRecord
from tracker.store import StoredCall

CSV_COLUMNS = (
    "id", "source", "programme", "call_identifier", "topic_identifier", "title", "status",
    "opening_date", "next_deadline", "deadlines", "budget_eur", "url",
)


def call_as_json(call: StoredCall, now: datetime) -> dict[str, Any]:
    """The object `calls list --format json` prints for one call."""
    record = call.record
    return {
        "id": record.id,
        "source": record.source,
        "programme": record.programme,
        "sub_programme": record.sub_programme,
        "call_identifier": record.call_identifier,
        "topic_identifier": record.topic_identifier,
        "title": record.title,
        "status": record.status.value,
        "opening_date": isoformat_utc(record.opening_date),
        "deadlines": [isoformat_utc(d) for d in record.deadlines],
        "next_deadline": isoformat_utc(record.next_deadline(now)),
        "deadline_model": record.deadline_model,
        "budget_eur": record.budget_eur,
        "budget_min_eur": record.budget_min_eur,
        "budget_max_eur": record.budget_max_eur,
        "expected_grants": record.expected_grants,
        "call_budget_eur": record.call_budget_eur,
        "call_budget_topics": record.call_budget_topics,
        "action_type": record.action_type,
        "url": record.url,
        "keywords": list(record.keywords),
        "tags": list(record.tags),
        "countries": list(record.countries),
        "regions": list(record.regions),
        "language": record.language,
        "summary": record.summary,
        "documents": None if record.documents is None else [
            d.model_dump() for d in record.documents],
        "first_seen": isoformat_utc(call.first_seen),
        "last_seen": isoformat_utc(call.last_seen),
        "last_changed": isoformat_utc(call.last_changed),
        "still_listed": call.still_listed,
    }


def deduplicated(calls: Sequence[StoredCall]) -> list[tuple[StoredCall, ...]]:
    """``calls`` with one entry per call seen at several sources (``tracker.dedupe``), in
    listing order; each entry's first call is the one listed first."""
    by_id = {call.id: call for call in calls}
    return [tuple(by_id[i] for i in group.ids)
            for group in group_duplicates([call.record for call in calls])]


def listed_call_as_json(calls: Sequence[StoredCall], now: datetime) -> dict[str, Any]:
    """One call of a deduplicated listing: the first record's fields, with every source that
    lists it (``sources``) and the ids it has there (``ids``)."""
    data = call_as_json(calls[0], now)
    data["sources"] = list(dict.fromkeys(c.record.source for c in calls))
    data["ids"] = [c.id for c in calls]
    return data


def call_as_row(call: StoredCall, now: datetime) -> dict[str, Any]:
    """One CSV row: lists joined with " | " so a spreadsheet shows them in one cell."""
    data = call_as_json(call, now)
    row = {column: data[column] for column in CSV_COLUMNS}
    row["deadlines"] = " | ".join(data["deadlines"])
    return row


def call_total_text(record: CallRecord) -> str:
    """"call total EUR 170.8 M (shared by 16 topics)", or "" when the source gives none: the
    budget several topics share, named so that it is never read as the topic's own."""
    if record.call_budget_eur is None:
        return ""
    shared = f" (shared by {record.call_budget_topics} topics)" if record.call_budget_topics else ""
    return f"call total {format_eur(record.call_budget_eur)}{shared}"


def format_eur(amount: int | None) -> str:
    """EUR 4.0 M, EUR 250 k, EUR 900, or an empty string when unknown."""
    if amount is None:
        return ""
    if amount >= 1_000_000:
        return f"EUR {amount / 1_000_000:.1f} M"
    if amount >= 10_000:
        return f"EUR {amount / 1_000:.0f} k"
    return f"EUR {amount}"
