"""What changed about a call, as data and in words (pure: typed changes and a zone in).

``what_changed`` turns the typed change events of a call (``tracker.store.diff``) into
``ChangeNote``s, one per thing a reader cares about: each moved cut-off ("deadline 12 Mar
→ 26 Mar 2027"), each budget figure ("budget EUR 10.0 M → 12.0 M"), the status ("now
open"), the new documents ("new documents: Work programme, FAQ"). Every form of a message
shows the notes' ``text``; the webhook body and the Atom feed also carry their fields
(``kind``, ``field``, ``before``, ``after``), so a receiver need not parse the text. The
words come from ``tracker.delivery.wording``.

A ``new`` event is not a change: a first-time match is a new call, not a changed one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tracker.dates import isoformat_utc, to_utc
from tracker.delivery.wording import (
    EN,
    PHRASES,
    count,
    day_range,
    format_amount,
    format_day,
    format_deadline,
    join_list,
    say,
)
from tracker.models import Change, ChangeKind

#: clip lengths for scraped text in a note, in characters
TEXT_MAX = 300
VALUE_MAX = 80

#: the budget figures of ``CallRecord.budget()``, in the order a reader weighs them
_BUDGET_KEYS = ("total", "max_grant", "min_grant", "expected_grants", "call_total")
_BUDGET_FIELD = {"total": "budget.total", "max_grant": "budget.max_grant",
                 "min_grant": "budget.min_grant", "expected_grants": "budget.expected_grants",
                 "call_total": "budget.call_total"}
#: how a kind of change is counted in a digest's subject ("1 deadline moved")
_COUNTED = {ChangeKind.DEADLINE_CHANGED: "count.deadline", ChangeKind.OPENED: "count.opened",
            ChangeKind.REOPENED: "count.opened", ChangeKind.CLOSED: "count.closed",
            ChangeKind.BUDGET_CHANGED: "count.budget", ChangeKind.DOCUMENTS_CHANGED: "count.documents"}


@dataclass(frozen=True)
class ChangeNote:
    """One thing that changed about a call: as data and as a phrase.

    ``before`` and ``after`` are JSON values (ISO UTC for moments, numbers for money);
    ``old`` and ``new`` are the typed change's own values (whole lists and budget objects),
    kept for receivers of ``callwatch.message/1`` that read them.
    """

    kind: str
    field: str | None
    before: Any
    after: Any
    text: str
    old: Any = None
    new: Any = None

    @property
    def counted_as(self) -> str:
        """The ``wording.PLURALS`` key this change counts under in a subject."""
        return _COUNTED.get(ChangeKind(self.kind), "count.changed")

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "field": self.field, "before": self.before,
                "after": self.after, "text": self.text, "old": self.old, "new": self.new}


def clip(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters, with an ellipsis when cut."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return to_utc(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return to_utc(parsed) if parsed.tzinfo is not None else None
    return None


def _moments(value: Any) -> list[datetime] | None:
    """A list of cut-offs, or None when any of them is not a moment."""
    items = value if isinstance(value, list | tuple) else [] if value is None else [value]
    found = [_moment(item) for item in items]
    return None if any(m is None for m in found) else [m for m in found if m is not None]


def _pair_text(before: datetime, after: datetime, zone: ZoneInfo, lang: str) -> tuple[str, str]:
    """Two moments as a reader compares them: days ("12 Mar", "26 Mar 2027"), or with the
    hour when only the hour moved."""
    old_day, new_day = before.astimezone(zone).date(), after.astimezone(zone).date()
    if old_day == new_day:
        return format_deadline(before, zone, lang), format_deadline(after, zone, lang)
    return day_range(old_day, new_day, lang)


def _deadline_notes(change: Change, zone: ZoneInfo, lang: str) -> list[ChangeNote]:
    old, new = _moments(change.old), _moments(change.new)
    kind, field = change.kind.value, change.field or "deadlines"

    def note(key: str, moments: tuple[datetime | None, datetime | None],
             **text: str) -> ChangeNote:
        return ChangeNote(kind, field, isoformat_utc(moments[0]), isoformat_utc(moments[1]),
                          say(key, lang, **text), change.old, change.new)

    if old is None or new is None:
        return [ChangeNote(kind, field, change.old, change.new,
                           say("change.deadline", lang, before=clip(str(change.old), VALUE_MAX),
                               after=clip(str(change.new), VALUE_MAX)), change.old, change.new)]
    removed = [m for m in old if m not in new]
    added = [m for m in new if m not in old]
    notes: list[ChangeNote] = []
    # cut-offs that moved: paired in order, as many as both sides have
    for before, after in zip(removed, added, strict=False):
        shown_before, shown_after = _pair_text(before, after, zone, lang)
        notes.append(note("change.deadline", (before, after), before=shown_before, after=shown_after))
    for after in added[len(removed):]:
        notes.append(note("change.cutoff_added", (None, after),
                          after=format_day(after.astimezone(zone).date(), lang)))
    for before in removed[len(added):]:
        notes.append(note("change.cutoff_removed", (before, None),
                          before=format_day(before.astimezone(zone).date(), lang)))
    return notes


def _money(key: str, value: Any, lang: str) -> str:
    if value is None:
        return say("value.unknown", lang)
    if key == "expected_grants":
        return str(value)
    return format_amount(int(value), lang) or say("value.unknown", lang)


def _budget_notes(change: Change, lang: str) -> list[ChangeNote]:
    kind = change.kind.value
    old, new = change.old, change.new
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [ChangeNote(kind, change.field, old, new, say("change.budget", lang), old, new)]
    notes = []
    for key in _BUDGET_KEYS:
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        shown_before, shown_after = _money(key, before, lang), _money(key, after, lang)
        if shown_before.startswith("EUR ") and shown_after.startswith("EUR "):
            shown_after = shown_after[4:]  # "EUR 10.0 M → 12.0 M"
        notes.append(ChangeNote(kind, _BUDGET_FIELD[key], before, after,
                                say(f"change.{_BUDGET_FIELD[key]}", lang, before=shown_before,
                                    after=shown_after), old, new))
    return notes or [ChangeNote(kind, change.field, old, new, say("change.budget", lang), old, new)]


def _day_or_none(value: Any, zone: ZoneInfo, lang: str) -> str:
    moment = _moment(value)
    if moment is None:
        return clip(str(value), VALUE_MAX) if value else say("value.none", lang)
    return format_day(moment.astimezone(zone).date(), lang)


def _details_note(change: Change, zone: ZoneInfo, lang: str) -> ChangeNote:
    field = change.field or "details"
    kind = change.kind.value
    if field == "url":
        return ChangeNote(kind, field, change.old, change.new, say("change.url", lang),
                          change.old, change.new)
    if field == "opening_date":
        before, after = _moment(change.old), _moment(change.new)
        if before is not None and after is not None:
            shown_before, shown_after = day_range(before.astimezone(zone).date(),
                                                  after.astimezone(zone).date(), lang)
        else:
            shown_before, shown_after = (_day_or_none(change.old, zone, lang),
                                          _day_or_none(change.new, zone, lang))
        return ChangeNote(kind, field, isoformat_utc(before) if before else change.old,
                          isoformat_utc(after) if after else change.new,
                          say("change.opening_date", lang, before=shown_before, after=shown_after),
                          change.old, change.new)
    old_text = clip(str(change.old), VALUE_MAX) if change.old else say("value.none", lang)
    new_text = clip(str(change.new), VALUE_MAX) if change.new else say("value.none", lang)
    key = f"change.{field}" if f"change.{field}" in _DETAIL_KEYS else "change.details"
    return ChangeNote(kind, field, change.old, change.new,
                      say(key, lang, before=old_text, after=new_text, field=field.replace("_", " ")),
                      change.old, change.new)


_DETAIL_KEYS = frozenset({"change.deadline_model", "change.action_type",
                          "change.call_identifier", "change.topic_identifier"})
_STATUS_KEYS = {ChangeKind.OPENED: "change.opened", ChangeKind.CLOSED: "change.closed",
                ChangeKind.REOPENED: "change.reopened"}


def _status(value: Any, lang: str) -> str:
    """A status in a sentence: a known one in the reader's words ("open", "offen"), another
    as the source wrote it."""
    text = clip(str(value), 30)
    known = f"status.{text.lower()}"
    return say(known, lang).lower() if known in PHRASES else text


def describe(change: Change, zone: ZoneInfo, lang: str = EN) -> list[ChangeNote]:
    """The notes of one typed change (none for ``new``), in ``lang``."""
    kind = change.kind
    if kind is ChangeKind.NEW:
        return []
    if kind in _STATUS_KEYS:
        return [ChangeNote(kind.value, "status", change.old, change.new, say(_STATUS_KEYS[kind], lang),
                           change.old, change.new)]
    if kind is ChangeKind.STATUS_CHANGED:
        return [ChangeNote(kind.value, "status", change.old, change.new, say(
            "change.status", lang, before=_status(change.old, lang), after=_status(change.new, lang)),
            change.old, change.new)]
    if kind is ChangeKind.DEADLINE_CHANGED:
        return _deadline_notes(change, zone, lang)
    if kind is ChangeKind.BUDGET_CHANGED:
        return _budget_notes(change, lang)
    if kind is ChangeKind.TITLE_CHANGED:
        return [ChangeNote(kind.value, "title", change.old, change.new, say(
            "change.title", lang, before=clip(str(change.old), TEXT_MAX)), change.old, change.new)]
    if kind is ChangeKind.DOCUMENTS_CHANGED:
        key = "change.documents" if change.field == "documents" else "change.updates"
        return [ChangeNote(kind.value, change.field or "updates", None, change.new,
                           say(key, lang, after=clip(str(change.new), TEXT_MAX)), change.old, change.new)]
    if kind is ChangeKind.REMOVED_FROM_SOURCE:
        return [ChangeNote(kind.value, change.field, change.old, change.new, say("change.removed", lang),
                           change.old, change.new)]
    return [_details_note(change, zone, lang)]


def what_changed(changes: Iterable[Change], zone: ZoneInfo,
                 lang: str = EN) -> tuple[ChangeNote, ...]:
    """The notes of ``changes``, in order, each said once; new documents in one note
    ("new documents: Work programme, FAQ"), however many events listed them."""
    notes: list[ChangeNote] = []
    documents: list[str] = []
    first_document: int | None = None
    for change in changes:
        if change.kind is ChangeKind.DOCUMENTS_CHANGED and change.field == "documents":
            text = clip(str(change.new), TEXT_MAX)
            if text not in documents:
                documents.append(text)
            if first_document is None:
                first_document = len(notes)
                notes.append(ChangeNote(change.kind.value, "documents", None, None, ""))
            continue
        for note in describe(change, zone, lang):
            if all(n.text != note.text for n in notes):
                notes.append(note)
    if first_document is not None:
        notes[first_document] = ChangeNote(
            ChangeKind.DOCUMENTS_CHANGED.value, "documents", None, documents,
            say("change.documents", lang, after=clip(join_list(documents), TEXT_MAX)), None, documents)
    return tuple(notes)


def subject_counts(counted: Iterable[str]) -> dict[str, int]:
    """How many items count under each ``wording.PLURALS`` key, in first-seen order."""
    found: dict[str, int] = {}
    for key in counted:
        found[key] = found.get(key, 0) + 1
    return found


def counts_text(counted: dict[str, int], lang: str = EN) -> str:
    """"3 new, 1 deadline moved, 2 closing soon"."""
    return join_list([count(key, n, lang) for key, n in counted.items()])
