"""``callwatch calls list|show|history``: browse stored calls and their history."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from tracker.cli.app import App, Column, echo_json, format_option, pass_app, print_table, utc_day, utc_minute

if TYPE_CHECKING:
    from tracker.models import CallStatus

STATUS_CHOICES = ("open", "forthcoming", "closed", "all")


@click.group("calls")
def calls_group() -> None:
    """Browse stored calls and their history."""


@calls_group.command("list")
@click.option("--status", "statuses", type=click.Choice(STATUS_CHOICES), multiple=True,
              help="repeatable; default: open and forthcoming")
@click.option("--programme", help="canonical programme name, e.g. 'Horizon Europe'")
@click.option("--source", help="configured source name")
@click.option("--search", help="text in title, summary, id or keywords")
@format_option("json", "csv")
@pass_app
def calls_list(app: App, statuses: tuple[str, ...], programme: str | None, source: str | None,
               search: str | None, fmt: str | None) -> None:
    """List calls, soonest next deadline first; a call seen at several sources is listed once.

    Each call's status is the one it has now by its dates, even before the cycle stores it.
    """

    from tracker.exports.rows import (
        CSV_COLUMNS,
        call_as_row,
        call_total_text,
        deduplicated,
        listed_call_as_json,
        soonest_next_first,
    )
    from tracker.models import CallStatus
    from tracker.money import format_eur

    wanted: list[CallStatus] | None
    if "all" in statuses:
        wanted = None
    else:
        wanted = [CallStatus(s) for s in statuses] or [CallStatus.OPEN, CallStatus.FORTHCOMING]
    now = app.now()
    calls = app.store().list_calls(statuses=wanted, programme=programme, source=source,
                                   search=search, now=now)
    # the store keeps one record per source: show each call once, by the deadline shown
    listed = soonest_next_first(deduplicated(calls), now)
    if fmt == "json":
        echo_json([listed_call_as_json(group, now) for group in listed])
        return
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for group in listed:
            row = call_as_row(group[0], now)
            row["source"] = " | ".join(dict.fromkeys(c.record.source for c in group))
            writer.writerow(row)
        return
    rows = []
    for group in listed:
        r = group[0].record
        deadline = r.next_deadline(now)
        rows.append({
            "id": r.id, "sources": ", ".join(dict.fromkeys(c.record.source for c in group)),
            "programme": r.programme or "", "status": r.status.value,
            "deadline": utc_minute(deadline), "day": utc_day(deadline),
            "budget": format_eur(r.budget_eur) or call_total_text(r),  # the topic's, else the call's
            "title": r.title,
        })
    print_table(CALL_COLUMNS, rows, fmt=fmt,
                title=f"{len(listed)} calls, soonest next deadline first (times in UTC)")


#: `calls list`: at 80 columns the id, the next deadline's day and the title
CALL_COLUMNS = (
    Column("id", "id"),
    Column("sources", "sources", priority=7),
    Column("programme", "programme", priority=5),
    Column("status", "status", priority=4),
    Column("deadline", "next deadline", priority=1, short=Column("day", "deadline")),
    Column("budget", "budget", priority=6, wraps=True, min_width=12),
    Column("title", "title", wraps=True),
)


@calls_group.command("show")
@click.argument("call_id")
@format_option("json")
@pass_app
def calls_show(app: App, call_id: str, fmt: str | None) -> None:
    """Show every field of one call; its news items as a dated list, newest first."""

    from tracker.exports.rows import call_as_json, news_items

    now = app.now()
    call = app.store().get_call(call_id, now=now)
    data = call_as_json(call, now)
    if fmt == "json":
        echo_json(data)
        return
    news = news_items(call.record.updates)
    rows = []
    for key, value in data.items():
        if key == "updates":
            shown = f"{len(news)}, listed below (newest first)" if news else ""
        else:  # a time as every table shows one, not as JSON writes it
            raw = (call.record.next_deadline(now) if key == "next_deadline"
                   else getattr(call.record, key, getattr(call, key, None)))
            shown = _times(raw) or _cell(value)
        rows.append({"field": key, "value": shown})
    print_table(FIELD_COLUMNS, rows, fmt=fmt, titled=bool(news),
                title=f"{data['id']} (times in UTC)")
    if news:
        print_table(NEWS_COLUMNS, [{"date": item.day.isoformat() if item.day else "",
                                    "news": item.text} for item in news],
                    fmt=fmt, titled=True, title=f"news and notices of {data['id']}, newest first")


FIELD_COLUMNS = (Column("field", "field"), Column("value", "value", wraps=True, min_width=30))
NEWS_COLUMNS = (Column("date", "date"), Column("news", "news", wraps=True))


def _times(value: Any) -> str:
    """A time, or a list of times, in the form of every table; "" for anything else."""
    if isinstance(value, datetime):
        return utc_minute(value)
    if isinstance(value, tuple | list) and value and all(isinstance(v, datetime) for v in value):
        return "\n".join(utc_minute(v) for v in value)
    return ""


def _cell(value: Any) -> str:
    """One field's value in the `calls show` table: a list one item a line, a document as
    ``title <url>``, nothing for an empty value."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(_cell(item) for item in value)
    if isinstance(value, dict):
        if set(value) >= {"title", "url"}:
            return f"{value['title']} <{value['url']}>"
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@calls_group.command("history")
@click.argument("call_id")
@format_option("json")
@pass_app
def calls_history(app: App, call_id: str, fmt: str | None) -> None:
    """The change history of one call, oldest first."""

    changes = app.store().history(call_id)
    if fmt == "json":
        echo_json([c.as_json() for c in changes])
        return
    print_table(HISTORY_COLUMNS, [
        {"at": utc_minute(change.at), "kind": change.kind.value, "field": change.field or "",
         "old": _short(change.old), "new": _short(change.new)} for change in changes
    ], fmt=fmt, title=f"history of {call_id} (times in UTC)")


HISTORY_COLUMNS = (
    Column("at", "at"), Column("kind", "kind"), Column("field", "field", priority=1),
    Column("old", "old", priority=2, wraps=True, min_width=16),
    Column("new", "new", wraps=True, min_width=16),
)


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:199] + "…"
