"""Plain-data views of stored calls for JSON and CSV output (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel

from tracker.dates import isoformat_utc
from tracker.dedupe import group_duplicates
from tracker.models import CallRecord
from tracker.money import format_eur
from tracker.store.calls import StoredCall

CSV_COLUMNS = (
    "id", "source", "programme", "call_identifier", "topic_identifier", "title", "status",
    "opening_date", "next_deadline", "deadlines", "budget_eur", "url",
)


def _plain(value: Any) -> Any:
    """One stored value as JSON: datetimes in UTC with ``Z``, enums by value, documents as
    objects, tuples as lists; numbers, text, booleans and None as they are."""
    if isinstance(value, datetime):
        return isoformat_utc(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def record_fields(record: CallRecord) -> dict[str, Any]:
    """Every field of ``CallRecord``, in the model's order, as JSON values.

    The fields are walked, not listed, so a field added to the model is shown by `calls
    show`, `calls list --format json` and the JSON export as soon as it is stored.
    """
    return {name: _plain(getattr(record, name)) for name in type(record).model_fields}


def call_as_json(call: StoredCall, now: datetime) -> dict[str, Any]:
    """The object `calls show` and `calls list --format json` print for one call: its id,
    every stored field (``next_deadline`` after ``deadlines``), and what the store knows of
    its life (first and last seen, last changed, still listed)."""
    record = call.record
    next_deadline = isoformat_utc(record.next_deadline(now))
    data: dict[str, Any] = {"id": record.id}
    for name, value in record_fields(record).items():
        data[name] = value
        if name == "deadlines":
            data["next_deadline"] = next_deadline
    data.update({
        "first_seen": isoformat_utc(call.first_seen),
        "last_seen": isoformat_utc(call.last_seen),
        "last_changed": isoformat_utc(call.last_changed),
        "still_listed": call.still_listed,
    })
    return data


@dataclass(frozen=True)
class NewsItem:
    """One of a call's news items or document notices, with the day it carries (if any)."""

    day: date | None
    text: str


#: How sources date their news lines ("<when>: <text>"): the portal writes "Apr 27, 2023
#: 4:18:31 PM", callwatch's own lines an ISO date.
_NEWS_DATE_FORMATS = ("%b %d, %Y %I:%M:%S %p", "%b %d, %Y", "%d %B %Y", "%d/%m/%Y")


def _news_day(when: str) -> date | None:
    text = when.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    for fmt in _NEWS_DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 - only the day is kept
        except ValueError:
            continue
    return None


def news_items(updates: Sequence[str]) -> list[NewsItem]:
    """A call's ``updates`` as a dated list, newest first; lines without a readable date
    follow, in the source's order.

    Each line is "<when>: <text>" when the source dates it; "when" may hold colons of its
    own ("4:18:31 PM"), so every ": " is tried until the part before it reads as a date.
    """
    dated: list[NewsItem] = []
    undated: list[NewsItem] = []
    for line in updates:
        item = NewsItem(None, line)
        start = 0
        while (cut := line.find(": ", start)) != -1:
            day = _news_day(line[:cut])
            if day is not None:
                item = NewsItem(day, line[cut + 2:].strip())
                break
            start = cut + 2
        (dated if item.day else undated).append(item)
    dated.sort(key=lambda item: item.day or date.min, reverse=True)
    return dated + undated


def deduplicated(calls: Sequence[StoredCall]) -> list[tuple[StoredCall, ...]]:
    """``calls`` with one entry per call seen at several sources (``tracker.dedupe``), in
    listing order; each entry's first call is the one listed first."""
    by_id = {call.id: call for call in calls}
    return [tuple(by_id[i] for i in group.ids)
            for group in group_duplicates([call.record for call in calls])]


def soonest_next_first(groups: Sequence[tuple[StoredCall, ...]],
                       now: datetime) -> list[tuple[StoredCall, ...]]:
    """``groups`` by the next deadline listings show (none last), then as listed.

    The one order of `calls list` and the web's calls page (which says it in SQL,
    ``tracker.store.listing.listing_order``). The store sorts by the final deadline, so a
    call with an early cut-off and a late final one was listed after calls whose shown
    deadline came later.
    """
    def key(group: tuple[StoredCall, ...]) -> tuple[bool, datetime]:
        deadline = group[0].record.next_deadline(now)
        return deadline is None, deadline or now

    return sorted(groups, key=key)  # stable: equal deadlines keep the listing order


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
    topics = record.call_budget_topics
    shared = f" (shared by {topics} topic{'' if topics == 1 else 's'})" if topics else ""
    return f"call total {format_eur(record.call_budget_eur)}{shared}"
