"""Exports of stored calls as iCalendar, CSV, JSON and Atom (pure: data and ``now`` in, text out).

Nothing here reads the database or the clock; ``tracker.exports.reading`` gathers a profile's matched
calls with their reasons and deadline-change counts, and the CLI and the health server write
what these functions return.

**iCalendar** (RFC 5545, the icalendar library): one VEVENT per cut-off of each call.

- ``UID`` is ``<call id>/<cut-off index>@callwatch``: the same event on every export, so a
  calendar that subscribes updates its entries instead of duplicating them.
- ``SEQUENCE`` is the number of ``deadline_changed`` events in the call's history: it rises
  each time a deadline moves, which is what tells a client that the event it holds is stale.
- ``DTSTAMP`` and ``LAST-MODIFIED`` are when callwatch last saw the call change. Without a
  ``METHOD``, RFC 5545 defines ``DTSTAMP`` as the time the information was last revised, and
  it also keeps two exports of unchanged data byte-identical.
- ``DTSTART`` is the cut-off in UTC; the event lasts one hour (``DTEND`` one hour later: a
  zero-length event, ``DTEND`` equal to ``DTSTART``, is dropped or mis-drawn by some clients).
- A display alarm 7 days before (``TRIGGER:-P7D``).

**Statuses** are the ones calls have at ``now`` (``StoredCall.as_of``, the rule of
``tracker.status.status_for``): a call stored forthcoming whose opening date has passed is
exported as open, whether or not the cycle's refresh step has stored that yet.

**CSV and JSON** reuse ``tracker.exports.rows`` (the shapes of ``calls list --format csv|json``);
the JSON of a profile adds each call's match ``reasons``.

**Atom** (RFC 4287), built with the standard library's ElementTree: one entry per call,
``updated`` is when the call last changed, the link is the call's page, the content is
what last changed, its summary and why it matched. What last changed is also carried as
data, one ``<cw:change kind field before after>text</cw:change>`` element per change
(namespace ``https://github.com/callwatch/callwatch/ns/feed/1``; the same notes as the
webhook body's ``changes``, ``tracker.delivery.changes``), so a reader need not parse the
text. No feed library is used: feedgen would bring lxml and python-dateutil and has no
type information, for a document of a dozen elements. Characters that XML 1.0 forbids
(scraped text sometimes has them) are removed, since ElementTree would write them and
produce a feed no reader can parse.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from tracker import __version__
from tracker.dates import isoformat_utc
from tracker.delivery.changes import ChangeNote, what_changed
from tracker.exports.rows import CSV_COLUMNS, call_as_json, call_as_row
from tracker.models import Change
from tracker.money import format_eur
from tracker.store.calls import StoredCall

ATOM_NS = "http://www.w3.org/2005/Atom"
#: callwatch's own Atom elements (``cw:change``)
CALLWATCH_NS = "https://github.com/callwatch/callwatch/ns/feed/1"
#: How long each deadline event lasts in the calendar.
EVENT_LENGTH = timedelta(hours=1)
#: When the reminder alarm fires, relative to the cut-off.
ALARM_BEFORE = timedelta(days=7)
PRODID = f"-//callwatch//callwatch {__version__}//EN"
#: A namespace for the stable Atom ids (urn:uuid:…) derived from profile names and call ids.
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/callwatch/callwatch")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class FeedItem:
    """One call as an export shows it: the stored call, why it matched, how often it moved."""

    call: StoredCall
    reasons: tuple[str, ...] = ()
    #: ``deadline_changed`` events in the call's history: the iCalendar SEQUENCE
    deadline_changes: int = 0
    #: the call's latest changes (one run's events): what the Atom entry says changed
    changes: tuple[Change, ...] = ()


def as_of(items: Sequence[FeedItem], now: datetime | None) -> list[FeedItem]:
    """``items`` with each call's status at ``now`` (unchanged when ``now`` is None)."""
    if now is None:
        return list(items)
    return [item if (call := item.call.as_of(now)) is item.call else replace(item, call=call)
            for item in items]


# -- iCalendar ----------------------------------------------------------------------------

def event_uid(call_id: str, index: int) -> str:
    """The stable UID of the ``index``-th cut-off (from 0) of ``call_id``."""
    return f"{call_id}/{index}@callwatch"


def _description(item: FeedItem, index: int) -> str:
    record = item.call.record
    count = len(record.deadlines)
    lines = [f"Deadline: {record.deadlines[index]:%d %b %Y %H:%M} UTC"
             + (f" (cut-off {index + 1} of {count})" if count > 1 else "")]
    if record.programme:
        lines.append(f"Programme: {record.programme}")
    identifier = record.topic_identifier or record.call_identifier
    if identifier:
        lines.append(f"Identifier: {identifier}")
    if record.budget_eur is not None:
        lines.append(f"Budget: {format_eur(record.budget_eur)}")
    lines.append(f"Status: {record.status.value}")
    if record.url:
        lines.append(record.url)
    if item.reasons:
        lines.append("Why it matches: " + "; ".join(item.reasons))
    return "\n".join(lines)


def to_ical(items: Sequence[FeedItem], *, name: str, now: datetime | None = None) -> bytes:
    """An RFC 5545 calendar with one event per cut-off of each item, named ``name``; with
    ``now``, each description gives the status at ``now``."""
    items = as_of(items, now)
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    for item in items:
        record = item.call.record
        revised = item.call.last_changed.astimezone(UTC)
        for index, deadline in enumerate(record.deadlines):
            start = deadline.astimezone(UTC)
            event = icalendar.Event()
            event.add("uid", event_uid(record.id, index))
            event.add("sequence", item.deadline_changes)
            event.add("dtstamp", revised)
            event.add("last-modified", revised)
            event.add("dtstart", start)
            event.add("dtend", start + EVENT_LENGTH)
            event.add("summary", f"Deadline: {' '.join(record.title.split())}")  # one line
            event.add("description", _description(item, index))
            if record.url:
                event.add("url", record.url)
            if record.programme:
                event.add("categories", [record.programme])
            event.add("transp", "TRANSPARENT")  # a deadline does not make anyone busy
            alarm = icalendar.Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", f"In 7 days: {record.title}")
            alarm.add("trigger", -ALARM_BEFORE)
            event.add_component(alarm)
            calendar.add_component(event)
    return bytes(calendar.to_ical())


# -- CSV and JSON -------------------------------------------------------------------------

def to_csv(calls: Sequence[StoredCall], now: datetime) -> str:
    """The CSV of ``calls list --format csv``: a header, then one row per call."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for call in calls:
        writer.writerow(call_as_row(call.as_of(now), now))
    return buffer.getvalue()


def to_json(items: Sequence[FeedItem], now: datetime, *, with_reasons: bool) -> str:
    """A JSON array of ``call_as_json`` objects; ``reasons`` added for a profile's export."""
    values = []
    for item in as_of(items, now):
        value = call_as_json(item.call, now)
        if with_reasons:
            value["reasons"] = list(item.reasons)
        values.append(value)
    return json.dumps(values, ensure_ascii=False, indent=2) + "\n"


# -- Atom ---------------------------------------------------------------------------------

def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _xml_text(v) for k, v in attributes.items()})
    if text is not None:
        element.text = _xml_text(text)
    return element


def _attribute(value: object) -> str:
    """A change's value as an XML attribute: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def atom_id(kind: str, name: str) -> str:
    """A stable ``urn:uuid:`` id for a profile's feed or a call's entry."""
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, f'{kind}:{name}')}"


def _entry_content(item: FeedItem, now: datetime, notes: Sequence[ChangeNote]) -> str:
    record = item.call.record
    lines = [f"* {note.text}" for note in notes]
    deadline = record.next_deadline(now)
    facts = [record.programme or "", record.topic_identifier or record.call_identifier or "",
             f"deadline {deadline:%d %b %Y %H:%M} UTC" if deadline else "",
             format_eur(record.budget_eur), record.status.value]
    lines.append(" · ".join(f for f in facts if f))
    if record.summary:
        lines += ["", record.summary]
    if item.reasons:
        lines += ["", "Why it matches:", *(f"- {reason}" for reason in item.reasons)]
    return "\n".join(lines)


def to_atom(items: Sequence[FeedItem], now: datetime, *, profile: str,
            self_url: str | None = None) -> bytes:
    """An Atom feed of ``profile``'s calls, newest change first.

    The feed's ``updated`` is the latest change among its entries (``now`` when it has none),
    so the feed only looks new to a reader when something in it is.
    """
    ordered = sorted(as_of(items, now), key=lambda i: (i.call.last_changed, i.call.id),
                     reverse=True)
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xmlns:cw": CALLWATCH_NS})
    _sub(feed, "id", atom_id("profile", profile))
    _sub(feed, "title", f"callwatch: {profile}")
    updated = ordered[0].call.last_changed if ordered else now
    _sub(feed, "updated", isoformat_utc(updated))
    author = _sub(feed, "author")
    _sub(author, "name", "callwatch")
    _sub(feed, "generator", "callwatch", version=__version__)
    if self_url:
        _sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    for item in ordered:
        record = item.call.record
        entry = _sub(feed, "entry")
        _sub(entry, "id", atom_id("call", record.id))
        _sub(entry, "title", record.title)
        _sub(entry, "updated", isoformat_utc(item.call.last_changed))
        _sub(entry, "published", isoformat_utc(item.call.first_seen))
        if record.url:
            _sub(entry, "link", rel="alternate", href=record.url)
        if record.programme:
            _sub(entry, "category", term=record.programme)
        notes = what_changed(item.changes, ZoneInfo("UTC"))
        _sub(entry, "content", _entry_content(item, now, notes), type="text")
        for note in notes:
            _sub(entry, "cw:change", note.text, kind=note.kind, field=note.field or "",
                 **{name: _attribute(value) for name, value in
                    (("before", note.before), ("after", note.after)) if value is not None})
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True)) + b"\n"
