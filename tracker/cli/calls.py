"""``callwatch calls list|show|history``: browse stored calls and their history."""

from __future__ import annotations

import csv
import json
import sys
from typing import TYPE_CHECKING, Any

import click

from tracker.cli.app import App, console, echo_json, pass_app, utc_minute

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
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@pass_app
def calls_list(app: App, statuses: tuple[str, ...], programme: str | None, source: str | None,
               search: str | None, fmt: str) -> None:
    """List calls, soonest final deadline first; a call seen at several sources is listed once.

    Each call's status is the one it has now by its dates, even before the cycle stores it.
    """
    from rich.table import Table

    from tracker.exports.rows import (
        CSV_COLUMNS,
        call_as_row,
        call_total_text,
        deduplicated,
        listed_call_as_json,
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
    listed = deduplicated(calls)  # the store keeps one record per source; show each call once
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
    table = Table(title=f"{len(listed)} calls", show_lines=False)
    for column in ("id", "sources", "programme", "status", "next deadline (UTC)", "budget",
                   "title"):
        table.add_column(column, overflow="fold")
    for group in listed:
        r = group[0].record
        sources = ", ".join(dict.fromkeys(c.record.source for c in group))
        budget = format_eur(r.budget_eur) or call_total_text(r)  # the topic's, else the call's
        table.add_row(r.id, sources, r.programme or "", r.status.value,
                      utc_minute(r.next_deadline(now)), budget, r.title)
    console().print(table)


@calls_group.command("show")
@click.argument("call_id")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_app
def calls_show(app: App, call_id: str, fmt: str) -> None:
    """Show every field of one call; its news items as a dated list, newest first."""
    from rich.table import Table

    from tracker.exports.rows import call_as_json, news_items

    now = app.now()
    call = app.store().get_call(call_id, now=now)
    data = call_as_json(call, now)
    if fmt == "json":
        echo_json(data)
        return
    news = news_items(call.record.updates)
    table = Table(show_header=False, title=data["id"])
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        if key == "updates":
            shown = f"{len(news)}, listed below (newest first)" if news else ""
        else:
            shown = _cell(value)
        table.add_row(key, shown)
    out = console()
    out.print(table)
    if news:
        listing = Table(title=f"news and notices of {data['id']}, newest first")
        listing.add_column("date", no_wrap=True)
        listing.add_column("news", overflow="fold")
        for item in news:
            listing.add_row(item.day.isoformat() if item.day else "", item.text)
        out.print(listing)


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
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_app
def calls_history(app: App, call_id: str, fmt: str) -> None:
    """The change history of one call, oldest first."""
    from rich.table import Table

    changes = app.store().history(call_id)
    if fmt == "json":
        echo_json([c.as_json() for c in changes])
        return
    table = Table(title=f"history of {call_id}")
    for column in ("at (UTC)", "kind", "field", "old", "new"):
        table.add_column(column, overflow="fold")
    for change in changes:
        table.add_row(utc_minute(change.at), change.kind.value, change.field or "",
                      _short(change.old), _short(change.new))
    console().print(table)


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:199] + "…"
